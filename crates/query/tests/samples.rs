//! The sample queries of `schemas/queries/`, run on a lake replayed from a generated
//! CloudTrail corpus, against answers computed independently from the corpus' raw
//! JSON with serde_json (never from the lake).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use datafusion::arrow::json::writer::WriterBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};
use trailhouse_cloudtrail::time::{parse_rfc3339_ms, utc_day};
use trailhouse_corpus::{CorpusSpec, generate};
use trailhouse_pipeline::{ReplayOptions, replay_local};
use trailhouse_query::{Lake, OpenOptions, TableKind};

fn queries_dir() -> PathBuf {
    Path::new("../../schemas/queries").to_path_buf()
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(queries_dir().join(name)).expect("sample query")
}

/// Milliseconds since the epoch of a timestamp as the JSON writer renders it
/// (`YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)`).
fn ts_ms(s: &str) -> i64 {
    parse_rfc3339_ms(s).unwrap_or_else(|| panic!("not an RFC 3339 timestamp: {s}"))
}

/// The test lake: a corpus of yesterday and today (UTC), so the samples' default
/// window (the last 30 days) holds it, replayed into `lake`.
struct Fixture {
    _dir: tempfile::TempDir,
    lake: PathBuf,
    /// Unique records, each with the account of its file.
    records: Vec<(Value, String)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("trail");
    let lake = dir.path().join("lake");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let spec = CorpusSpec {
        seed: 11,
        start_day: {
            let yesterday = utc_day((now / 86_400 - 1) * 86_400_000);
            (
                (yesterday / 10_000) as i32,
                yesterday / 100 % 100,
                yesterday % 100,
            )
        },
        days: 2,
        files: 24,
        records_per_file: 150,
        ..CorpusSpec::default()
    };
    generate(&spec, &input).expect("generate");
    let opts = ReplayOptions {
        threads: 2,
        ..ReplayOptions::default()
    };
    replay_local(std::slice::from_ref(&input), &lake, &opts).expect("replay");
    let records = read_records(&input);
    Fixture {
        _dir: dir,
        lake,
        records,
    }
}

/// Every record of the corpus once (by eventID), with the account of its file.
fn read_records(dir: &Path) -> Vec<(Value, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let name = f.to_string_lossy().to_string();
        let mut text = String::new();
        if name.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&f).expect("open"))
                .read_to_string(&mut text)
                .expect("gunzip");
        } else if name.ends_with(".json") {
            text = std::fs::read_to_string(&f).expect("read");
        } else {
            continue;
        }
        // AWSLogs/{account}/CloudTrail/…
        let parts: Vec<&str> = name.split('/').collect();
        let account = parts
            .iter()
            .position(|p| *p == "CloudTrail")
            .map(|i| parts[i - 1].to_string())
            .expect("AWSLogs layout");
        let doc: Value = serde_json::from_str(&text).expect("CloudTrail JSON");
        for r in doc["Records"].as_array().expect("Records").iter() {
            let id = r["eventID"].as_str().expect("eventID").to_string();
            if seen.insert(id) {
                out.push((r.clone(), account.clone()));
            }
        }
    }
    assert!(out.len() > 3000, "corpus too small: {}", out.len());
    out
}

/// What a record says, read the way CloudTrail documents its fields.
struct Rec<'a> {
    r: &'a Value,
    account: String,
}

impl<'a> Rec<'a> {
    fn new(r: &'a Value, file_account: &str) -> Rec<'a> {
        let account = r["recipientAccountId"]
            .as_str()
            .unwrap_or(file_account)
            .to_string();
        Rec { r, account }
    }
    fn s(&self, path: &[&str]) -> Option<String> {
        let mut v = self.r;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().map(str::to_string)
    }
    fn name(&self) -> String {
        self.s(&["eventName"]).unwrap_or_default()
    }
    fn source(&self) -> String {
        self.s(&["eventSource"]).unwrap_or_default()
    }
    fn user_type(&self) -> Option<String> {
        match self.r.get("userIdentity") {
            Some(Value::Object(o)) => o.get("type").and_then(Value::as_str).map(str::to_string),
            _ => Some("Unknown".into()),
        }
    }
    fn arn(&self) -> Option<String> {
        self.s(&["userIdentity", "arn"])
    }
    fn principal_id(&self) -> Option<String> {
        self.s(&["userIdentity", "principalId"])
            .or_else(|| self.s(&["userIdentity", "onBehalfOf", "userId"]))
    }
    /// The role for an AssumedRole session, else the caller's ARN.
    fn role_or_arn(&self) -> Option<String> {
        let issuer = self.s(&["userIdentity", "sessionContext", "sessionIssuer", "arn"]);
        match (self.user_type().as_deref(), issuer) {
            (Some("AssumedRole"), Some(i)) => Some(i),
            _ => self.arn(),
        }
    }
    fn error(&self) -> Option<String> {
        self.s(&["errorCode"])
    }
    /// The OCSF class, as CloudTrail's event sources and names define it.
    fn is_authentication(&self) -> bool {
        let n = self.name();
        match self.source().as_str() {
            "signin.amazonaws.com" | "sso.amazonaws.com" => [
                "ConsoleLogin",
                "ExternalIdPDirectoryLogin",
                "CheckMfa",
                "CredentialChallenge",
                "CredentialVerification",
                "UserAuthentication",
            ]
            .contains(&n.as_str()),
            "sts.amazonaws.com" => [
                "AssumeRole",
                "AssumeRoleWithSAML",
                "AssumeRoleWithWebIdentity",
            ]
            .contains(&n.as_str()),
            _ => false,
        }
    }
    /// Success / Failure (Authentication: the console's own verdict if it gives
    /// one; STS successes are "Other").
    fn status(&self) -> String {
        if self.is_authentication() {
            if let Some(s) = self.s(&["responseElements", "ConsoleLogin"]) {
                return s;
            }
            return if self.error().is_some() {
                "Failure"
            } else {
                "Other"
            }
            .into();
        }
        if self.error().is_some() {
            "Failure".into()
        } else {
            "Success".into()
        }
    }
    fn source_address(&self) -> Option<String> {
        self.s(&["sourceIPAddress"])
    }
    fn source_ip(&self) -> Option<String> {
        self.source_address()
            .filter(|s| s.parse::<IpAddr>().is_ok())
    }
    fn time(&self) -> i64 {
        ts_ms(&self.s(&["eventTime"]).expect("eventTime"))
    }
    fn id(&self) -> String {
        self.s(&["eventID"]).expect("eventID")
    }
    fn region(&self) -> String {
        self.s(&["awsRegion"]).expect("awsRegion")
    }
}

fn opt(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::String)
}

/// Result rows as JSON objects, every column present; timestamps as epoch ms.
fn rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    let mut buf = Vec::new();
    {
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        for b in batches {
            w.write(b).expect("json");
        }
        w.finish().expect("json");
    }
    if buf.is_empty() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&buf).expect("json rows");
    let time_cols = ["time_dt", "first_seen", "last_seen"];
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            let mut o = r.as_object().expect("object").clone();
            for c in time_cols {
                if let Some(Value::String(s)) = o.get(c) {
                    let ms = ts_ms(s);
                    o.insert(c.to_string(), json!(ms));
                }
            }
            o
        })
        .collect()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().expect("object").clone()
}

/// Compares row by row, with a readable message on the first difference.
fn assert_rows(name: &str, actual: &[Map<String, Value>], expected: &[Map<String, Value>]) {
    assert!(
        !expected.is_empty(),
        "{name}: the test lake gives no answer"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "{name}: row {i} differs");
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{name}: {} rows, expected {}",
        actual.len(),
        expected.len()
    );
}

/// Sort key for optional strings: values first, nulls last (SQL's ASC default).
fn nl(s: &Option<String>) -> (bool, String) {
    (s.is_none(), s.clone().unwrap_or_default())
}

async fn run(lake: &Lake, sql: &str) -> Vec<Map<String, Value>> {
    match lake.sql(sql).await {
        Ok(b) => rows(&b),
        Err(e) => panic!("query failed: {e}\n{sql}"),
    }
}

#[derive(Default)]
struct Agg {
    calls: i64,
    failures: i64,
    accounts: BTreeSet<String>,
    ops: BTreeSet<String>,
    errors: BTreeSet<String>,
    principals: BTreeSet<String>,
    first: i64,
    last: i64,
    reads: i64,
    deletes: i64,
    writes: i64,
}

impl Agg {
    fn add(&mut self, r: &Rec) {
        let t = r.time();
        if self.calls == 0 || t < self.first {
            self.first = t;
        }
        if self.calls == 0 || t > self.last {
            self.last = t;
        }
        self.calls += 1;
        self.failures += i64::from(r.status() == "Failure");
        self.accounts.insert(r.account.clone());
        self.ops.insert(r.name());
        if let Some(e) = r.error() {
            self.errors.insert(e);
        }
        if let Some(a) = r.arn() {
            self.principals.insert(a);
        }
        let n = r.name();
        if n.starts_with("Get") || n.starts_with("Head") || n.starts_with("List") {
            self.reads += 1;
        } else if n.starts_with("Delete") {
            self.deletes += 1;
        } else {
            self.writes += 1;
        }
    }
}

/// One event as the event-list samples show it.
fn event_row(r: &Rec, cols: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for c in cols {
        let v = match *c {
            "time_dt" => json!(r.time()),
            "accountid" => json!(r.account),
            "region" => json!(r.region()),
            "principal" => opt(r.arn()),
            "service" => json!(r.source()),
            "operation" => json!(r.name()),
            "status" => json!(r.status()),
            "error" => opt(r.error()),
            "source" => opt(r.source_address()),
            "user_agent" => opt(r.s(&["userAgent"])),
            "event_id" => json!(r.id()),
            other => panic!("no column {other}"),
        };
        m.insert(c.to_string(), v);
    }
    m
}

/// Newest first (or oldest first), then by event id.
fn sort_events(v: &mut [(i64, String, Map<String, Value>)], newest_first: bool) {
    v.sort_by(|a, b| {
        let t = if newest_first {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        };
        t.then(a.1.cmp(&b.1))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_match_answers_from_the_raw_json() {
    let fx = fixture();
    let lake = Lake::open(fx.lake.to_str().expect("utf-8"), &OpenOptions::default())
        .await
        .expect("open");
    let recs: Vec<Rec> = fx.records.iter().map(|(r, a)| Rec::new(r, a)).collect();

    // Every record is a row of `cloudtrail`.
    let n = run(&lake, "SELECT count(*) AS n FROM cloudtrail").await;
    assert_eq!(n[0]["n"], json!(recs.len()));

    // top_users_and_roles
    {
        let mut g: BTreeMap<(Option<String>, String), Agg> = BTreeMap::new();
        for r in &recs {
            if let Some(p) = r.role_or_arn() {
                g.entry((r.user_type(), p)).or_default().add(r);
            }
        }
        let mut v: Vec<_> = g.into_iter().collect();
        v.sort_by(|a, b| {
            b.1.calls
                .cmp(&a.1.calls)
                .then(a.0.1.cmp(&b.0.1))
                .then(nl(&a.0.0).cmp(&nl(&b.0.0)))
        });
        let expected: Vec<_> = v
            .iter()
            .take(25)
            .map(|((t, p), a)| {
                obj(json!({"user_type": t, "principal": p, "calls": a.calls,
                    "failures": a.failures, "accounts": a.accounts.len()}))
            })
            .collect();
        let actual = run(&lake, &sample("top_users_and_roles.sql")).await;
        assert_rows("top_users_and_roles", &actual, &expected);
    }

    // failed_console_logins
    {
        let mut v: Vec<_> = recs
            .iter()
            .filter(|r| {
                r.source() == "signin.amazonaws.com"
                    && r.name() == "ConsoleLogin"
                    && r.status() == "Failure"
            })
            .map(|r| {
                let user_name = r
                    .s(&["userIdentity", "userName"])
                    .or_else(|| r.s(&["additionalEventData", "UserName"]));
                let row = obj(json!({
                    "time_dt": r.time(), "accountid": r.account, "region": r.region(),
                    "user_type": r.user_type(), "user_name": user_name, "user_arn": r.arn(),
                    "source_ip": r.source_ip(), "user_agent": r.s(&["userAgent"]),
                    "reason": r.s(&["errorMessage"]), "event_id": r.id(),
                }));
                (r.time(), r.id(), row)
            })
            .collect();
        sort_events(&mut v, true);
        let expected: Vec<_> = v.into_iter().map(|x| x.2).collect();
        let actual = run(&lake, &sample("failed_console_logins.sql")).await;
        assert_rows("failed_console_logins", &actual, &expected);
    }

    let event_cols = [
        "time_dt",
        "accountid",
        "region",
        "service",
        "operation",
        "status",
        "error",
        "source",
        "user_agent",
        "event_id",
    ];

    // root_activity
    {
        let mut v: Vec<_> = recs
            .iter()
            .filter(|r| {
                r.user_type().as_deref() == Some("Root")
                    && r.s(&["userIdentity", "invokedBy"]).is_none()
                    && r.s(&["eventType"]).as_deref() != Some("AwsServiceEvent")
            })
            .map(|r| (r.time(), r.id(), event_row(r, &event_cols)))
            .collect();
        sort_events(&mut v, true);
        let expected: Vec<_> = v.into_iter().map(|x| x.2).collect();
        let actual = run(&lake, &sample("root_activity.sql")).await;
        assert_rows("root_activity", &actual, &expected);
    }

    // access_denied_by_principal
    {
        let mut g: BTreeMap<(Option<String>, Option<String>), Agg> = BTreeMap::new();
        for r in &recs {
            let Some(e) = r.error() else { continue };
            if !(e.contains("AccessDenied")
                || e.contains("Unauthorized")
                || e.contains("AuthorizationError"))
            {
                continue;
            }
            let p = r.role_or_arn().or_else(|| r.principal_id());
            g.entry((r.user_type(), p)).or_default().add(r);
        }
        let mut v: Vec<_> = g.into_iter().collect();
        v.sort_by(|a, b| {
            b.1.calls
                .cmp(&a.1.calls)
                .then(nl(&a.0.1).cmp(&nl(&b.0.1)))
                .then(nl(&a.0.0).cmp(&nl(&b.0.0)))
        });
        let expected: Vec<_> = v
            .iter()
            .take(50)
            .map(|((t, p), a)| {
                let errors: Vec<&str> = a.errors.iter().map(String::as_str).collect();
                obj(json!({"user_type": t, "principal": p, "denied": a.calls,
                    "apis": a.ops.len(), "accounts": a.accounts.len(),
                    "errors": errors.join(",")}))
            })
            .collect();
        let actual = run(&lake, &sample("access_denied_by_principal.sql")).await;
        assert_rows("access_denied_by_principal", &actual, &expected);
    }

    // access_key_activity: the corpus' busiest access key.
    {
        let credential = |r: &Rec| {
            r.s(&["userIdentity", "accessKeyId"])
                .or_else(|| r.s(&["userIdentity", "credentialId"]))
        };
        let mut uses: BTreeMap<String, usize> = BTreeMap::new();
        for r in &recs {
            if let Some(k) = r.s(&["userIdentity", "accessKeyId"]) {
                *uses.entry(k).or_default() += 1;
            }
        }
        let key = uses
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| k.clone())
            .expect("an access key");
        let cols = [
            "time_dt",
            "accountid",
            "region",
            "principal",
            "service",
            "operation",
            "status",
            "error",
            "source",
            "user_agent",
            "event_id",
        ];
        let mut v: Vec<_> = recs
            .iter()
            .filter(|r| credential(r).as_deref() == Some(key.as_str()))
            .map(|r| (r.time(), r.id(), event_row(r, &cols)))
            .collect();
        sort_events(&mut v, false);
        let expected: Vec<_> = v.into_iter().map(|x| x.2).collect();
        assert!(expected.len() > 1, "key {key} used once only");
        let sql = sample("access_key_activity.sql");
        assert!(sql.contains("'AKIAIOSFODNN7EXAMPLE'"));
        let sql = sql.replace("'AKIAIOSFODNN7EXAMPLE'", &format!("'{key}'"));
        let actual = run(&lake, &sql).await;
        assert_rows("access_key_activity", &actual, &expected);
    }

    // api_calls_by_source_ip
    {
        let mut g: BTreeMap<String, Agg> = BTreeMap::new();
        for r in &recs {
            if let Some(s) = r.source_address() {
                g.entry(s).or_default().add(r);
            }
        }
        let mut v: Vec<_> = g.into_iter().collect();
        v.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
        let expected: Vec<_> = v
            .iter()
            .take(50)
            .map(|(s, a)| {
                obj(
                    json!({"source": s, "calls": a.calls, "principals": a.principals.len(),
                    "accounts": a.accounts.len(), "failures": a.failures,
                    "first_seen": a.first, "last_seen": a.last}),
                )
            })
            .collect();
        let actual = run(&lake, &sample("api_calls_by_source_ip.sql")).await;
        assert_rows("api_calls_by_source_ip", &actual, &expected);
    }

    // iam_policy_changes
    {
        const OPS: [&str; 22] = [
            "CreatePolicy",
            "DeletePolicy",
            "CreatePolicyVersion",
            "DeletePolicyVersion",
            "SetDefaultPolicyVersion",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "AttachUserPolicy",
            "DetachUserPolicy",
            "AttachGroupPolicy",
            "DetachGroupPolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "PutUserPolicy",
            "DeleteUserPolicy",
            "PutGroupPolicy",
            "DeleteGroupPolicy",
            "UpdateAssumeRolePolicy",
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "PutUserPermissionsBoundary",
            "DeleteUserPermissionsBoundary",
        ];
        let mut v: Vec<_> = recs
            .iter()
            .filter(|r| r.source() == "iam.amazonaws.com" && OPS.contains(&r.name().as_str()))
            .map(|r| {
                let req = |k: &str| r.s(&["requestParameters", k]);
                let row = obj(json!({
                    "time_dt": r.time(), "accountid": r.account, "principal": r.arn(),
                    "operation": r.name(), "status": r.status(), "error": r.error(),
                    "target": req("roleName").or_else(|| req("userName")).or_else(|| req("groupName")),
                    "policy": req("policyArn").or_else(|| req("policyName")),
                    "event_id": r.id(),
                }));
                (r.time(), r.id(), row)
            })
            .collect();
        sort_events(&mut v, true);
        let expected: Vec<_> = v.into_iter().map(|x| x.2).collect();
        let actual = run(&lake, &sample("iam_policy_changes.sql")).await;
        assert_rows("iam_policy_changes", &actual, &expected);
    }

    // security_group_changes
    {
        const OPS: [&str; 9] = [
            "CreateSecurityGroup",
            "DeleteSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "RevokeSecurityGroupIngress",
            "RevokeSecurityGroupEgress",
            "ModifySecurityGroupRules",
            "UpdateSecurityGroupRuleDescriptionsIngress",
            "UpdateSecurityGroupRuleDescriptionsEgress",
        ];
        let mut v: Vec<_> = recs
            .iter()
            .filter(|r| r.source() == "ec2.amazonaws.com" && OPS.contains(&r.name().as_str()))
            .map(|r| {
                let group = r
                    .s(&["requestParameters", "groupId"])
                    .or_else(|| r.s(&["responseElements", "groupId"]))
                    .or_else(|| r.s(&["requestParameters", "groupName"]));
                let row = obj(json!({
                    "time_dt": r.time(), "accountid": r.account, "region": r.region(),
                    "principal": r.arn(), "operation": r.name(), "status": r.status(),
                    "error": r.error(), "security_group": group,
                    "source": r.source_address(), "event_id": r.id(),
                }));
                (r.time(), r.id(), row)
            })
            .collect();
        sort_events(&mut v, true);
        let expected: Vec<_> = v.into_iter().map(|x| x.2).collect();
        let actual = run(&lake, &sample("security_group_changes.sql")).await;
        assert_rows("security_group_changes", &actual, &expected);
    }

    // s3_data_access_by_principal
    {
        let mut g: BTreeMap<(Option<String>, Option<String>), Agg> = BTreeMap::new();
        for r in &recs {
            if r.source() != "s3.amazonaws.com"
                || r.s(&["eventCategory"]).as_deref() != Some("Data")
            {
                continue;
            }
            let p = r.role_or_arn().or_else(|| r.principal_id());
            let bucket = r.s(&["requestParameters", "bucketName"]);
            g.entry((p, bucket)).or_default().add(r);
        }
        let mut v: Vec<_> = g.into_iter().collect();
        v.sort_by(|a, b| {
            b.1.calls
                .cmp(&a.1.calls)
                .then(nl(&a.0.0).cmp(&nl(&b.0.0)))
                .then(nl(&a.0.1).cmp(&nl(&b.0.1)))
        });
        let expected: Vec<_> = v
            .iter()
            .take(50)
            .map(|((p, bkt), a)| {
                obj(json!({"principal": p, "bucket": bkt, "calls": a.calls,
                    "reads": a.reads, "deletes": a.deletes, "writes": a.writes,
                    "failures": a.failures}))
            })
            .collect();
        let actual = run(&lake, &sample("s3_data_access_by_principal.sql")).await;
        assert_rows("s3_data_access_by_principal", &actual, &expected);
    }

    // The native layout gives the views the same rows.
    let native = fx.lake.with_extension("native");
    let opts = ReplayOptions {
        threads: 2,
        layout: trailhouse_lake::Layout::Native,
        ..ReplayOptions::default()
    };
    let input = fx.lake.with_file_name("trail");
    replay_local(std::slice::from_ref(&input), &native, &opts).expect("native replay");
    let nlake = Lake::open(native.to_str().expect("utf-8"), &OpenOptions::default())
        .await
        .expect("open native");
    assert!(
        nlake
            .tables()
            .iter()
            .any(|t| t.name == "cloud_trail_mgmt" && t.kind == TableKind::Native)
    );
    let count = "SELECT (SELECT count(*) FROM api_activity) AS a, \
                 (SELECT count(*) FROM authentication) AS b, \
                 (SELECT count(*) FROM account_change) AS c, \
                 (SELECT count(*) FROM cloudtrail) AS d";
    assert_eq!(run(&lake, count).await, run(&nlake, count).await);
    for q in [
        "root_activity.sql",
        "iam_policy_changes.sql",
        "top_users_and_roles.sql",
    ] {
        assert_eq!(
            run(&lake, &sample(q)).await,
            run(&nlake, &sample(q)).await,
            "{q} differs between layouts"
        );
    }
}

/// Replays one CloudTrail Insights file (a Start and an End) into `lake`, so the
/// findings table that the dashboard samples query exists.
fn add_insights_file(lake: &Path) {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(
        "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/03/11/\
         111122223333_CloudTrail-Insight_us-east-1_20240311T0200Z_abc.json.gz",
    );
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let rec = |state: &str, time: &str| {
        json!({"eventVersion": "1.08", "eventTime": time, "awsRegion": "us-east-1",
          "eventID": format!("e-{state}"), "eventType": "AwsCloudTrailInsight",
          "recipientAccountId": "111122223333", "sharedEventID": "s-1", "eventCategory": "Insight",
          "insightDetails": {"state": state, "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey", "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.01},
              "insight": {"average": 9.0}, "insightDuration": 5, "baselineDuration": 10080},
              "attributions": []}}})
    };
    let body = json!({"Records": [rec("Start", "2024-03-11T02:00:00Z"), rec("End", "2024-03-11T02:05:00Z")]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.to_string().as_bytes()).expect("gzip");
    std::fs::write(&file, gz.finish().expect("gzip")).expect("write");
    let s =
        replay_local(&[dir.path().to_path_buf()], lake, &ReplayOptions::default()).expect("replay");
    assert_eq!(s.findings_written, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_parses_and_plans() {
    let fx = fixture();
    add_insights_file(&fx.lake);
    let lake = Lake::open(fx.lake.to_str().expect("utf-8"), &OpenOptions::default())
        .await
        .expect("open");
    let mut n = 0;
    for e in std::fs::read_dir(queries_dir()).expect("schemas/queries") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) != Some("sql") {
            continue;
        }
        let sql = std::fs::read_to_string(&p).expect("read");
        assert!(sql.starts_with("--"), "{}: no header comment", p.display());
        let df = match lake.dataframe(&sql).await {
            Ok(df) => df,
            Err(e) => panic!("{}: {e}", p.display()),
        };
        if let Err(e) = df.create_physical_plan().await {
            panic!("{}: {e}", p.display());
        }
        n += 1;
    }
    assert!(n >= 9, "only {n} samples");
}
