//! Structure-aware fuzzing of one CloudTrail record. A custom mutator parses the input
//! as JSON and edits it as a tree with CloudTrail's own vocabulary (keys, services,
//! event names, identity shapes, times, ARNs); libFuzzer's byte mutations (with
//! `dict/cloudtrail.dict`) still run on a share of the inputs, and on anything that
//! is not JSON.
//!
//! Invariants: everything the `record` target checks, plus, when the record is
//! mapped: the row says what the record says (time, eventID, eventName, eventSource,
//! request/response data as the same JSON, class/type/activity coherent, status,
//! observables typed by name); and the same record inside a log file, plain or
//! gzip, through `ObjectProcessor` gives the same row (or the same refusal).
#![no_main]

use std::io::{Cursor, Write};

use arrow_array::RecordBatch;
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};
use serde_json::{Map, Value, json};
use trailhouse_cloudtrail::record::text;
use trailhouse_cloudtrail::{Field, Record};
use trailhouse_cloudtrail::time::parse_rfc3339_ms;
use trailhouse_pipeline::{ObjectEvent, ObjectOutcome, ObjectProcessor};

const LOG_KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/x.json.gz";

fuzz_target!(|data: &[u8]| {
    let (batch, rows) = trailhouse_fuzz::map_and_check(data);
    if batch.num_rows() > 0 {
        check_semantics(data, &batch);
    }
    if Record::parse(data).is_ok() {
        check_same_through_processor(data, &batch, rows[1]);
    }
});

/// What the row says against what the record says.
fn check_semantics(data: &[u8], batch: &RecordBatch) {
    let out: Value = serde_json::from_slice(
        &trailhouse_ocsf::json::to_json_array(batch).expect("rows render as JSON"),
    )
    .expect("rendered rows are JSON");
    // The record's own region and error code win over any fallback, whatever their
    // escapes (`Value` below refuses lone surrogates; this reads the record as the
    // mapper does).
    let r = Record::parse(data).expect("a mapped record parses");
    for row in out.as_array().expect("an array of rows") {
        if let Some(raw) = r.raw(Field::AwsRegion).filter(|v| v.get() != "null") {
            assert_eq!(
                row["cloud"]["region"].as_str(),
                text(raw).as_deref(),
                "cloud.region is not the record's awsRegion {}",
                raw.get()
            );
        }
        let coded = r.raw(Field::ErrorCode).is_some_and(|v| v.get() != "null");
        if row["class_uid"] != 3002 && coded {
            assert_eq!(
                row["status"].as_str(),
                Some("Failure"),
                "errorCode {:?}",
                r.raw(Field::ErrorCode)
            );
        }
    }
    let Ok(Value::Object(rec)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for row in out.as_array().expect("an array of rows") {
        let s = |v: &Value| v.as_str().map(str::to_string);
        if let Some(t) = rec.get("eventTime").and_then(Value::as_str) {
            assert_eq!(row["time"].as_i64(), parse_rfc3339_ms(t), "time of {t:?}");
        }
        if let Some(id) = rec.get("eventID").and_then(Value::as_str) {
            assert_eq!(s(&row["metadata"]["uid"]).as_deref(), Some(id));
        }
        if let Some(n) = rec.get("eventName").and_then(Value::as_str) {
            assert_eq!(s(&row["api"]["operation"]).as_deref(), Some(n));
        }
        if let Some(n) = rec.get("eventSource").and_then(Value::as_str) {
            assert_eq!(s(&row["api"]["service"]["name"]).as_deref(), Some(n));
        }
        for (field, col) in [("requestParameters", "request"), ("responseElements", "response")] {
            let got = row["api"][col]["data"].as_str();
            match rec.get(field).filter(|v| !v.is_null()) {
                Some(v) => {
                    let got = got.unwrap_or_else(|| panic!("{field} missing from api.{col}.data"));
                    let parsed: Value = serde_json::from_str(got)
                        .unwrap_or_else(|e| panic!("api.{col}.data {got:?} is not JSON: {e}"));
                    assert_eq!(&parsed, v, "api.{col}.data differs from {field}");
                }
                None => assert!(got.is_none(), "api.{col}.data without {field}"),
            }
        }
        let class = row["class_uid"].as_i64().expect("class_uid");
        let activity = row["activity_id"].as_i64().expect("activity_id");
        assert!([3001, 3002, 6003].contains(&class));
        assert_eq!(row["type_uid"].as_i64(), Some(class * 100 + activity));
        assert_eq!(row["category_uid"].as_i64(), Some(class / 1000));
        let type_name = format!(
            "{}: {}",
            row["class_name"].as_str().unwrap(),
            row["activity_name"].as_str().unwrap()
        );
        assert_eq!(row["type_name"].as_str(), Some(type_name.as_str()));
        let status = row["status"].as_str().expect("status");
        let console = rec
            .get("responseElements")
            .and_then(|r| r.get("ConsoleLogin"))
            .filter(|v| !v.is_null());
        if class != 3002 || console.is_none() {
            assert!(["Success", "Failure", "Other"].contains(&status), "{status}");
            let failed = rec.get("errorCode").is_some_and(|v| !v.is_null());
            assert_eq!(status == "Failure", failed, "status {status}");
        }
        for o in row["observables"].as_array().into_iter().flatten() {
            let want = match o["name"].as_str().unwrap() {
                "src_endpoint.ip" => (2, "IP Address"),
                "src_endpoint.domain" => (1, "Hostname"),
                "actor.user.name" | "user.name" => (4, "User Name"),
                "resources[].uid" => (10, "Resource UID"),
                other => panic!("unknown observable {other}"),
            };
            assert_eq!((o["type_id"].as_i64(), o["type"].as_str()), (Some(want.0), Some(want.1)));
            assert!(o["value"].is_string());
        }
        for f in ["metadata", "time_dt", "cloud", "api", "actor"] {
            assert!(row.get(f).is_some(), "row has no {f}");
        }
    }
}

/// The record alone in a log file (plain and gzip) maps as it does by itself.
fn check_same_through_processor(data: &[u8], batch: &RecordBatch, row: Option<usize>) {
    let mut doc = b"{\"Records\":[".to_vec();
    doc.extend_from_slice(data);
    doc.extend_from_slice(b"]}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&doc).unwrap();
    let gz = gz.finish().unwrap();
    for body in [doc, gz] {
        let mut p = ObjectProcessor::default();
        let mut got: Vec<RecordBatch> = Vec::new();
        let mut bad = 0;
        let outcome = p.process(LOG_KEY, Cursor::new(body), &mut |ev| match ev {
            ObjectEvent::Rows(parts) => got.extend(parts.into_iter().map(|(_, b)| b)),
            ObjectEvent::BadRecord { index, bytes, .. } => {
                assert_eq!(index, 0);
                assert_eq!(bytes, data.trim_ascii());
                bad += 1;
            }
        });
        assert!(
            matches!(outcome, ObjectOutcome::Complete { records: 1, .. }),
            "{outcome:?}"
        );
        match row {
            Some(r) => {
                assert_eq!(got.len(), 1);
                assert_eq!(got[0], batch.slice(r, 1), "the processor's row differs");
            }
            None => {
                assert!(got.is_empty());
                assert_eq!(bad, 1);
            }
        }
    }
}

// --- the mutator -----------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const KEYS: &[&str] = &[
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "requestParameters", "responseElements",
    "additionalEventData", "requestID", "eventID", "eventType", "apiVersion", "errorCode",
    "errorMessage", "vpcEndpointId", "resources", "eventCategory", "recipientAccountId",
    "managementEvent", "readOnly", "sharedEventID", "tlsDetails", "type", "principalId",
    "arn", "accountId", "accessKeyId", "userName", "invokedBy", "sessionContext",
    "sessionIssuer", "attributes", "creationDate", "mfaAuthenticated", "webIdFederationData",
    "federatedProvider", "onBehalfOf", "userId", "identityStoreArn", "credentialId",
    "identityProvider", "sourceIdentity", "ARN", "ARNPrefix", "LoginTo", "MFAUsed",
    "UserName", "ConsoleLogin", "roleArn", "roleSessionName", "assumedRoleUser",
    "assumedRoleId", "credentials", "user", "role", "roleName", "accessKey", "status",
    "policyArn", "", "a.b", "userIdentity.arn",
];

const STRINGS: &[&str] = &[
    "2024-01-01T00:00:00Z", "2023-09-21T22:22:52.123Z", "1970-01-01T00:00:00Z",
    "1970-01-01T00:30:00+01:00", "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59-01:00",
    "2024-02-29T23:59:60+01:00", "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
    "2024-01-01 00:00:00z", "AWS Internal", "iam.amazonaws.com", "sts.amazonaws.com",
    "signin.amazonaws.com", "s3.amazonaws.com", "lambda.amazonaws.com", "sso.amazonaws.com",
    "account.amazonaws.com", "ec2.amazonaws.com", "ConsoleLogin", "CheckMfa", "AssumeRole",
    "AssumeRoleWithSAML", "CreateUser", "UpdateAccessKey", "AttachRolePolicy",
    "PutUserPolicy", "DeleteRolePolicy", "GetObject", "Invoke", "ListBuckets", "Active",
    "Inactive", "Management", "Data", "NetworkActivity", "Insight", "AwsApiCall",
    "AwsConsoleSignIn", "AwsServiceEvent", "AwsCloudTrailInsight", "AWS::S3::Object",
    "AWS::S3::Bucket", "us-east-1", "eu-west-3", "US-EAST-1", "123456789012", "1",
    "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:role/Deploy",
    "arn:aws:sts::123456789012:assumed-role/Deploy/ci", "arn:aws:s3:::bkt/key.txt",
    "198.51.100.7", "2001:db8::1", "::ffff:1.2.3.4", "host.example.com", "Yes", "No",
    "true", "False", "", " ", "../../etc", "a.b.c", "IAMUser", "AssumedRole", "AWSService",
    "Root", "FederatedUser", "IdentityCenterUser", "Unknown", "Success", "Failure",
    "AccessDenied", "\u{0}", "\u{e9}\u{1F600}", "\"", "\\", "{}", "[1]", "null",
    "https://console.aws.amazon.com/", "HIDDEN_DUE_TO_SECURITY_REASONS",
];

fn random_scalar(r: &mut Rng) -> Value {
    match r.below(10) {
        0 => json!(null),
        1 => json!(r.below(2) == 0),
        2 => json!(*r.pick(&[0i64, -1, 1, i64::MAX, i64::MIN, 33120])),
        3 => json!(*r.pick(&[1.5f64, -0.0, 1e300, 2.5e-308])),
        4 => json!(u64::MAX),
        _ => json!(*r.pick(STRINGS)),
    }
}

fn template(r: &mut Rng) -> Value {
    match r.below(8) {
        0 => json!({"type": "AssumedRole", "principalId": "AROA:bob",
            "arn": "arn:aws:sts::123456789012:assumed-role/Dev/bob", "accountId": "123456789012",
            "accessKeyId": "ASIA1", "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROA",
                    "arn": "arn:aws:iam::123456789012:role/Dev", "accountId": "123456789012", "userName": "Dev"},
                "webIdFederationData": {"federatedProvider": "arn:aws:iam::123456789012:oidc-provider/x",
                    "attributes": {"sub": "repo:x"}},
                "attributes": {"creationDate": "2024-03-09T11:00:00Z", "mfaAuthenticated": "true"},
                "sourceIdentity": "bob@example.com"}}),
        1 => json!({"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}),
        2 => json!({"type": "IdentityCenterUser", "accountId": "123456789012",
            "onBehalfOf": {"userId": "u-123", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"},
            "credentialId": "cred-9"}),
        3 => json!([{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bkt/key.txt"},
            {"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bkt"},
            {"type": "AWS::S3::Object", "ARNPrefix": "arn:aws:s3:::bkt/logs/"}, null, 7, []]),
        4 => json!({"credentials": {"accessKeyId": "ASIAEXAMPLE", "sessionToken": "tok"},
            "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:ci-42",
                "arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci-42"}}),
        5 => json!({"roleArn": "arn:aws:iam::123456789012:role/Deploy", "roleSessionName": "ci-42",
            "status": "Inactive", "userName": "bob", "policyArn": "arn:aws:iam::aws:policy/Admin"}),
        6 => json!({"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No",
            "MFAUsed": "Yes", "UserName": "carol"}),
        _ => json!({"user": {"arn": "arn:aws:iam::1:user/u", "userId": "AIDA", "userName": "u"},
            "role": {"arn": "arn:aws:iam::1:role/r", "roleId": "AROA", "roleName": "r"},
            "accessKey": {"userName": "k"}, "ConsoleLogin": "Success"}),
    }
}

fn random_value(r: &mut Rng) -> Value {
    match r.below(6) {
        0 => template(r),
        1 => json!({}),
        2 => json!([]),
        _ => random_scalar(r),
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Object(m) => m.values().map(count).sum(),
        Value::Array(a) => a.iter().map(count).sum(),
        _ => 0,
    }
}

fn nth_mut<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Object(m) => m.values_mut().find_map(|c| nth_mut(c, n)),
        Value::Array(a) => a.iter_mut().find_map(|c| nth_mut(c, n)),
        _ => None,
    }
}

/// A record with what the mapper requires, so mutations explore mapped rows.
fn base(r: &mut Rng) -> Map<String, Value> {
    let (src, name) = *r.pick(&[
        ("iam.amazonaws.com", "CreateUser"),
        ("iam.amazonaws.com", "UpdateAccessKey"),
        ("sts.amazonaws.com", "AssumeRole"),
        ("signin.amazonaws.com", "ConsoleLogin"),
        ("s3.amazonaws.com", "GetObject"),
        ("lambda.amazonaws.com", "Invoke"),
        ("ec2.amazonaws.com", "DescribeInstances"),
    ]);
    let Value::Object(m) = json!({"eventVersion": "1.09", "eventTime": "2024-03-09T12:00:00Z",
        "eventSource": src, "eventName": name, "awsRegion": "eu-west-1", "eventID": "evt-1",
        "recipientAccountId": "123456789012", "sourceIPAddress": "198.51.100.7"})
    else {
        unreachable!()
    };
    m
}

fn mutate(v: &mut Value, r: &mut Rng) {
    if !v.is_object() || r.below(50) == 0 {
        *v = Value::Object(base(r));
        return;
    }
    let total = count(v);
    let mut n = r.below(total);
    let Some(node) = nth_mut(v, &mut n) else {
        return;
    };
    match r.below(9) {
        // Set a CloudTrail key on an object (or make the node one).
        0 | 1 => {
            let key = r.pick(KEYS).to_string();
            let val = random_value(r);
            match node {
                Value::Object(m) => {
                    m.insert(key, val);
                }
                other => *other = json!({ key: val }),
            }
        }
        // Drop a member or element.
        2 => match node {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(r.below(m.len())).cloned().unwrap();
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(r.below(a.len()));
            }
            _ => *node = Value::Null,
        },
        // Replace with a scalar, a container or a template.
        3 | 4 => *node = random_value(r),
        // Change the type: wrap in an array, stringify, or nest deeply.
        5 => *node = json!([node.take()]),
        6 => *node = Value::String(node.to_string()),
        7 => {
            let mut x = node.take();
            for _ in 0..r.below(200) {
                x = if r.below(2) == 0 { json!([x]) } else { json!({"n": x}) };
            }
            *node = x;
        }
        // Fill in what the mapper requires, keeping the rest.
        _ => {
            if let Value::Object(m) = v {
                for (k, val) in base(r) {
                    if r.below(3) != 0 {
                        m.insert(k, val);
                    }
                }
            }
        }
    }
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let mut r = Rng(u64::from(seed) << 1 | 1);
    if r.below(3) != 0
        && let Ok(mut v) = serde_json::from_slice::<Value>(&data[..size])
    {
        for _ in 0..=r.below(3) {
            mutate(&mut v, &mut r);
        }
        let out = if r.below(4) == 0 {
            serde_json::to_vec_pretty(&v)
        } else {
            serde_json::to_vec(&v)
        }
        .unwrap();
        if out.len() <= max_size {
            data[..out.len()].copy_from_slice(&out);
            return out.len();
        }
    }
    fuzzer_mutate(data, size, max_size)
});
