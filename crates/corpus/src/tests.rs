//! Crate tests: determinism, manifest consistency against an independent re-read
//! of the written tree, label correctness against the spec's selection rules,
//! variety, and the large streamed file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::corpus::TRUNCATED_RECORDS;
use crate::engine::Generator;
use crate::rng::Rng;
use crate::templates::TEMPLATES;
use crate::world::World;
use crate::{CorpusSpec, Manifest, PartitionExpect, generate, large_log_file, records};

// ----- helpers -------------------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("trailhouse-corpus-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Relative path (with `/`) → bytes, for every file under `root`.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// Top-level keys of a JSON object, in text order.
fn top_keys(json: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let (mut depth, mut in_str, mut esc, mut want_key) = (0usize, false, false, false);
    let mut cur: Option<String> = None;
    for ch in json.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if ch == '\\' {
                esc = true;
            } else if ch == '"' {
                in_str = false;
                if let Some(k) = cur.take() {
                    keys.push(k);
                }
                continue;
            }
            if let Some(k) = cur.as_mut() {
                k.push(ch);
            }
            continue;
        }
        match ch {
            '"' => {
                in_str = true;
                if depth == 1 && want_key {
                    cur = Some(String::new());
                    want_key = false;
                }
            }
            '{' | '[' => {
                depth += 1;
                want_key = depth == 1 && ch == '{';
            }
            '}' | ']' => depth -= 1,
            ',' if depth == 1 => want_key = true,
            _ => {}
        }
    }
    keys
}

const ORDER: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "apiVersion",
    "managementEvent",
    "recipientAccountId",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "serviceEventDetails",
    "eventCategory",
    "tlsDetails",
    "sessionCredentialFromConsole",
];

const AUTH_SIGNIN: &[&str] = &[
    "ConsoleLogin",
    "ExternalIdPDirectoryLogin",
    "CheckMfa",
    "CredentialChallenge",
    "CredentialVerification",
    "UserAuthentication",
];
const AUTH_STS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
];
const ACCOUNT_CHANGE: &str = "UpdateRole, AttachUserPolicy, PutRolePermissionsBoundary, DeletePolicy, RemoveUserFromGroup, ChangePassword, CreateAccessKey, AttachGroupPolicy, ResyncMFADevice, DeleteRolePolicy, PutUserPermissionsBoundary, CreateUser, CreateServiceLinkedRole, PutRolePolicy, DetachGroupPolicy, UpdateAccessKey, CreateInstanceProfile, CreateRole, DeleteUserPermissionsBoundary, DeleteAccountAlias, PutGroupPolicy, CreateLoginProfile, DeleteGroupPolicy, DeleteLoginProfile, DeleteUserPolicy, DeactivateMFADevice, RemoveRoleFromInstanceProfile, UpdateUser, EnableMFADevice, DeleteUser, AddRoleToInstanceProfile, UpdateAccountEmailAddress, UpdateRoleDescription, DetachUserPolicy, UpdateAssumeRolePolicy, DeleteGroup, DeleteServiceLinkedRole, DeleteAccessKey, AddUserToGroup, DeleteVirtualMFADevice, FinalizeSmsMfaRegistration, DeleteRolePermissionsBoundary, DetachRolePolicy, DeleteInstanceProfile, UpdateGroup, UpdateLoginProfile, RequestSmsMfaRegistration, DeleteRole, PutUserPolicy, CreateVirtualMFADevice, AttachRolePolicy, EmailUpdated, AccountNameUpdated, PasswordUpdated, DeleteAccountPasswordPolicy, UpdateAccountPasswordPolicy, UpdateAccountName, TagInstanceProfile, TagRole, TagUser, UntagInstanceProfile, UntagRole, UntagUser, CreateAccountAlias";

/// The spec's selection rules (security-lake-spec.md §1.2, §2.2), applied to a
/// parsed record: an independent check of the templates' declared labels.
fn spec_labels(v: &Value) -> (&'static str, u32) {
    let src = v["eventSource"].as_str().unwrap();
    let name = v["eventName"].as_str().unwrap();
    let class = if (src == "signin.amazonaws.com" && AUTH_SIGNIN.contains(&name))
        || (src == "sts.amazonaws.com" && AUTH_STS.contains(&name))
    {
        3002
    } else if src == "iam.amazonaws.com" && ACCOUNT_CHANGE.split(", ").any(|n| n == name) {
        3001
    } else {
        6003
    };
    let category = v.get("eventCategory").and_then(Value::as_str);
    let s3_object = v["resources"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["type"] == "AWS::S3::Object"));
    let management = match category {
        Some(c) => c == "Management",
        None => v.get("managementEvent").and_then(Value::as_bool) != Some(false) && !s3_object,
    };
    let source = if management {
        "CLOUD_TRAIL_MGMT"
    } else if category == Some("NetworkActivity") {
        "CLOUD_TRAIL_DATA"
    } else if src == "s3.amazonaws.com" {
        "S3_DATA"
    } else if src == "lambda.amazonaws.com" {
        "LAMBDA_EXECUTION"
    } else {
        "CLOUD_TRAIL_DATA"
    };
    (source, class)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` → `YYYYMMDD`.
fn day_of(t: &str) -> Option<String> {
    let b = t.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && *b.last()? == b'Z'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    shape.then(|| format!("{}{}{}", &t[0..4], &t[5..7], &t[8..10]))
}

/// What a strict pipeline would make of one record: its partition, or None when it
/// must be quarantined.
fn reread(v: &Value, key_account: &str) -> Option<PartitionExpect> {
    let obj = v.as_object()?;
    let day = day_of(obj.get("eventTime")?.as_str()?)?;
    obj.get("eventID")?.as_str()?;
    let region = obj.get("awsRegion")?.as_str()?;
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return None;
    }
    let account = match obj.get("recipientAccountId") {
        Some(a) => {
            let a = a.as_str()?;
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            a.to_string()
        }
        None => key_account.to_string(),
    };
    let (source, class_uid) = spec_labels(v);
    Some(PartitionExpect {
        source: source.into(),
        class_uid,
        region: region.into(),
        account,
        event_day: day,
    })
}

fn hostile_spec() -> CorpusSpec {
    CorpusSpec {
        seed: 7,
        hostile: true,
        org_id: Some("o-a1b2c3d4e5".into()),
        key_prefix: Some("/cloudtrail/logs/".into()),
        ..CorpusSpec::default()
    }
}

fn check_sums(m: &Manifest) {
    assert_eq!(m.rows_by_class.values().sum::<u64>(), m.records_valid);
    assert_eq!(m.rows_by_partition.values().sum::<u64>(), m.records_valid);
    assert_eq!(
        m.records_valid - m.duplicate_event_ids,
        m.event_ids.len() as u64
    );
}

// ----- tests ---------------------------------------------------------------------------

#[test]
fn partition_display() {
    let p = PartitionExpect {
        source: "S3_DATA".into(),
        class_uid: 6003,
        region: "eu-west-1".into(),
        account: "012345678901".into(),
        event_day: "20240309".into(),
    };
    assert_eq!(
        p.to_string(),
        "S3_DATA/6003/eu-west-1/012345678901/20240309"
    );
}

#[test]
fn same_seed_gives_a_byte_identical_tree() {
    let spec = hostile_spec();
    let (a, b) = (TempDir::new("det-a"), TempDir::new("det-b"));
    let ma = generate(&spec, &a.0).unwrap();
    let mb = generate(&spec, &b.0).unwrap();
    assert_eq!(ma, mb);
    let (ta, tb) = (tree(&a.0), tree(&b.0));
    assert_eq!(ta.len() as u64, ma.objects_total);
    assert_eq!(ta, tb);

    let c = TempDir::new("det-c");
    generate(&CorpusSpec { seed: 8, ..spec }, &c.0).unwrap();
    assert_ne!(tree(&c.0), ta);
}

#[test]
fn manifest_matches_an_independent_reread_of_the_tree() {
    let spec = hostile_spec();
    let dir = TempDir::new("reread");
    let m = generate(&spec, &dir.0).unwrap();
    check_sums(&m);
    assert_eq!(
        m.records_total,
        m.records_valid + m.records_quarantined + TRUNCATED_RECORDS as u64
    );
    assert_eq!(
        m.objects_total,
        m.log_objects
            + m.objects_quarantined
            + m.objects_skipped_digest
            + m.objects_skipped_insight
    );
    assert_eq!(
        (
            m.objects_quarantined,
            m.objects_skipped_digest,
            m.objects_skipped_insight
        ),
        (5, 1, 1)
    );
    assert_eq!(m.records_quarantined, 8);
    assert!(m.duplicate_event_ids >= 1);
    assert_eq!(m.log_objects, spec.files as u64 + 2);

    let prefix = "cloudtrail/logs/AWSLogs/o-a1b2c3d4e5/";
    let (mut logs, mut broken, mut digests, mut insights) = (0u64, 0u64, 0u64, 0u64);
    let (mut valid, mut bad, mut bytes) = (0u64, 0u64, 0u64);
    let mut parts: BTreeMap<String, u64> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    let mut plain = 0;
    let mut empty = 0;
    let mut fractional = 0;
    let mut reread_json = Vec::new();
    for (key, data) in tree(&dir.0) {
        let rest = key
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("key outside the layout: {key}"));
        let segs: Vec<&str> = rest.split('/').collect();
        assert_eq!(segs.len(), 7, "{key}");
        let (acct, service, region) = (segs[0], segs[1], segs[2]);
        assert!(
            acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()),
            "{key}"
        );
        let file = segs[6];
        let date = format!("{}{}{}", segs[3], segs[4], segs[5]);
        match service {
            "CloudTrail-Digest" => {
                assert!(
                    file.starts_with(&format!("{acct}_CloudTrail-Digest_{region}_org-trail_")),
                    "{file}"
                );
                let stamp = &file[file.len() - 24..file.len() - 8];
                assert_eq!(&stamp[..8], date);
                let v: Value = serde_json::from_slice(&gunzip(&data).unwrap()).unwrap();
                assert_eq!(v["digestSignatureAlgorithm"], "SHA256withRSA");
                assert_eq!(v["digestS3Object"], key.as_str());
                assert!(v["logFiles"].is_array());
                digests += 1;
                continue;
            }
            "CloudTrail-Insight" => {
                assert!(
                    file.starts_with(&format!("{acct}_CloudTrail-Insight_{region}_")),
                    "{file}"
                );
                let v: Value = serde_json::from_slice(&gunzip(&data).unwrap()).unwrap();
                let recs = v["Records"].as_array().unwrap();
                assert_eq!(recs.len(), 2);
                assert!(
                    recs.iter().all(|r| r["eventType"] == "AwsCloudTrailInsight"
                        && r["eventCategory"] == "Insight")
                );
                insights += 1;
                continue;
            }
            "CloudTrail" => {}
            other => panic!("unexpected service folder {other}"),
        }
        let pre = format!("{acct}_CloudTrail_{region}_{date}T");
        assert!(file.starts_with(&pre), "{file}");
        let tail = &file[pre.len()..];
        assert_eq!(&tail[4..6], "Z_");
        let unique = tail[6..]
            .trim_end_matches(".json.gz")
            .trim_end_matches(".json");
        assert!(
            unique.len() == 16 && unique.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{file}"
        );

        let text = if file.ends_with(".json.gz") {
            match gunzip(&data) {
                Ok(t) => t,
                Err(_) => {
                    broken += 1;
                    continue;
                }
            }
        } else {
            assert!(file.ends_with(".json"));
            plain += 1;
            data
        };
        let doc: Value = match serde_json::from_slice(&text) {
            Ok(v) => v,
            Err(_) => {
                broken += 1;
                continue;
            }
        };
        let Some(recs) = doc.get("Records").and_then(Value::as_array) else {
            broken += 1;
            continue;
        };
        logs += 1;
        bytes += text.len() as u64;
        if recs.is_empty() {
            empty += 1;
        }
        // Compact JSON: re-serialising each element must give back the text in the file.
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("{\"Records\":[") && text.ends_with("]}"));
        for r in recs {
            match reread(r, acct) {
                Some(p) => {
                    valid += 1;
                    *parts.entry(p.to_string()).or_default() += 1;
                    ids.insert(r["eventID"].as_str().unwrap().to_string());
                    if r["eventTime"].as_str().unwrap().contains('.') {
                        fractional += 1;
                    }
                }
                None => bad += 1,
            }
        }
        reread_json.push(text);
    }
    assert_eq!(
        (logs, broken, digests, insights),
        (m.log_objects, m.objects_quarantined, 1, 1)
    );
    assert_eq!((plain, empty, fractional), (1, 1, 1));
    assert_eq!((valid, bad), (m.records_valid, m.records_quarantined));
    assert_eq!(bytes, m.uncompressed_bytes);
    assert_eq!(
        parts, m.rows_by_partition,
        "template labels disagree with the spec's rules"
    );
    assert_eq!(ids, m.event_ids);

    // records() yields exactly the valid records of the files.
    let all: Vec<_> = records(&spec).collect();
    assert_eq!(all.len() as u64, m.records_valid);
    let mut from_iter: Vec<&str> = all.iter().map(|r| r.json.as_str()).collect();
    let mut from_files = Vec::new();
    for text in &reread_json {
        let doc: Value = serde_json::from_str(text).unwrap();
        for r in doc["Records"].as_array().unwrap() {
            if reread(r, "000000000000").is_some() {
                from_files.push(r.clone());
            }
        }
    }
    assert_eq!(from_files.len(), from_iter.len());
    // Byte-level: every generated record's text occurs in some file.
    for r in &all {
        assert!(reread_json.iter().any(|t| t.contains(&r.json)));
        assert_eq!(r.class_uid, r.expect.class_uid);
    }
    from_iter.sort_unstable();
    let dups = from_iter.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    assert_eq!(dups, m.duplicate_event_ids);
}

#[test]
fn plain_corpus_counts() {
    let spec = CorpusSpec::default();
    let dir = TempDir::new("plain");
    let m = generate(&spec, &dir.0).unwrap();
    check_sums(&m);
    assert_eq!(m.objects_total, 12);
    assert_eq!(m.log_objects, 12);
    assert_eq!(m.records_total, m.records_valid);
    assert_eq!(m.records_valid, 600 + m.duplicate_event_ids);
    assert_eq!(
        m.records_quarantined
            + m.objects_quarantined
            + m.objects_skipped_digest
            + m.objects_skipped_insight,
        0
    );
    for class in ["API Activity", "Authentication", "Account Change"] {
        assert!(
            m.rows_by_class.get(class).copied().unwrap_or(0) > 0,
            "{class}"
        );
    }
    // Mostly API Activity, as in real trails.
    assert!(m.rows_by_class["API Activity"] * 10 > m.records_valid * 7);
    assert_eq!(records(&spec).count() as u64, m.records_valid);
}

#[test]
fn every_template_matches_the_spec_rules_and_field_order() {
    let regions = vec!["us-east-1".to_string(), "eu-west-1".to_string()];
    let mut rng = Rng::new(99);
    let world = World::new(&mut rng, 2, &regions);
    let mut engine = Generator::new(world, true);
    for (ti, t) in TEMPLATES.iter().enumerate() {
        for n in 0..300u64 {
            let mut rng = Rng::derive(ti as u64, n);
            engine.rec.reset();
            let world = &engine.world;
            let mut ctx = crate::actor::Ctx {
                rng: &mut rng,
                world,
                acct: &world.accounts[(n % 2) as usize],
                region: &world.regions[(n % 2) as usize],
                time: 1_710_000_000,
            };
            (t.build)(&mut ctx, &mut engine.rec);
            let mut json = String::new();
            engine.rec.emit(&mut json);
            let v: Value =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}: {json}", t.id));
            let (source, class) = spec_labels(&v);
            assert_eq!(
                (source, class),
                (t.src.name(), t.class.uid()),
                "{}: {json}",
                t.id
            );
            let keys = top_keys(&json);
            let pos: Vec<usize> = keys
                .iter()
                .map(|k| {
                    ORDER
                        .iter()
                        .position(|o| o == k)
                        .unwrap_or_else(|| panic!("{}: unknown key {k}", t.id))
                })
                .collect();
            assert!(
                pos.windows(2).all(|w| w[0] < w[1]),
                "{}: order {keys:?}",
                t.id
            );
            let minor: u32 = v["eventVersion"].as_str().unwrap()[2..].parse().unwrap();
            assert!((2..=11).contains(&minor));
            if minor < 6 {
                assert!(v.get("managementEvent").is_none() && v.get("eventCategory").is_none());
            }
            assert!(v["eventID"].is_string() && v["eventTime"].is_string());
        }
    }
}

#[test]
fn variety_like_a_real_trail() {
    let spec = CorpusSpec {
        seed: 3,
        files: 40,
        records_per_file: 100,
        large_payloads: true,
        ..CorpusSpec::default()
    };
    let mut types = BTreeSet::new();
    let mut versions = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut errors = BTreeSet::new();
    let mut event_types = BTreeSet::new();
    let mut categories = BTreeSet::new();
    let (mut v4, mut v6, mut principal, mut internal, mut no_ip) = (0, 0, 0, 0, 0);
    let (
        mut req_null,
        mut req_absent,
        mut no_recipient,
        mut escaped_unicode,
        mut quotes,
        mut backslashes,
    ) = (0, 0, 0, 0, 0, 0);
    let (mut big, mut legacy_s3, mut vpce, mut mfa_login, mut failed_login, mut prev_day) =
        (0, 0, 0, 0, 0, 0);
    let (mut session_ctx, mut web_id, mut source_identity, mut ec2_delivery, mut typeless) =
        (0, 0, 0, 0, 0);
    let mut total = 0;
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in records(&spec) {
        total += 1;
        let v: Value = serde_json::from_str(&r.json).unwrap();
        let ui = &v["userIdentity"];
        let ty = ui
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("(none)")
            .to_string();
        if ty == "(none)" {
            typeless += 1;
        }
        *by_type.entry(ty.clone()).or_default() += 1;
        types.insert(ty);
        if let Some(sc) = ui.get("sessionContext") {
            session_ctx += 1;
            web_id += sc.get("webIdFederationData").is_some() as u32;
            source_identity += sc.get("sourceIdentity").is_some() as u32;
            ec2_delivery += sc.get("ec2RoleDelivery").is_some() as u32;
        }
        versions.insert(v["eventVersion"].as_str().unwrap().to_string());
        names.insert(format!(
            "{}:{}",
            v["eventSource"].as_str().unwrap(),
            v["eventName"].as_str().unwrap()
        ));
        if let Some(e) = v.get("errorCode") {
            errors.insert(e.as_str().unwrap().to_string());
        }
        event_types.insert(v["eventType"].as_str().unwrap().to_string());
        if let Some(c) = v.get("eventCategory") {
            categories.insert(c.as_str().unwrap().to_string());
        }
        match v.get("sourceIPAddress").and_then(Value::as_str) {
            None => no_ip += 1,
            Some("AWS Internal") => internal += 1,
            Some(ip) if ip.parse::<std::net::Ipv4Addr>().is_ok() => v4 += 1,
            Some(ip) if ip.parse::<std::net::Ipv6Addr>().is_ok() => v6 += 1,
            Some(ip) if ip.ends_with(".amazonaws.com") => principal += 1,
            Some(ip) => panic!("odd sourceIPAddress {ip}"),
        }
        match v.get("requestParameters") {
            None => req_absent += 1,
            Some(Value::Null) => req_null += 1,
            _ => {}
        }
        if v.get("recipientAccountId").is_none() {
            no_recipient += 1;
        }
        escaped_unicode += r.json.contains("\\u00e9") as u32;
        quotes += r.json.contains("\\\"") as u32;
        backslashes += r.json.contains("\\\\") as u32;
        if v["requestParameters"].to_string().len() > 10_000 {
            big += 1;
        }
        if v["eventSource"] == "s3.amazonaws.com"
            && v["eventVersion"] == "1.05"
            && v.get("eventCategory").is_none()
            && v["resources"][0]["type"] == "AWS::S3::Object"
        {
            legacy_s3 += 1;
        }
        vpce += v.get("vpcEndpointId").is_some() as u32;
        if v["eventName"] == "ConsoleLogin" {
            if v["additionalEventData"]["MFAUsed"] == "Yes" {
                mfa_login += 1;
            }
            if v.get("errorMessage")
                .is_some_and(|m| m == "Failed authentication")
            {
                assert!(v.get("requestID").is_none());
                failed_login += 1;
            }
        }
        let key_day = r.expect.event_day.as_str();
        if key_day < "20240309" {
            prev_day += 1;
        }
    }
    for t in [
        "IAMUser",
        "AssumedRole",
        "Root",
        "AWSService",
        "FederatedUser",
        "SAMLUser",
        "WebIdentityUser",
        "AWSAccount",
        "IdentityCenterUser",
        "Unknown",
    ] {
        assert!(types.contains(t), "identity type {t} missing: {types:?}");
    }
    // Mostly role sessions and services.
    assert!(
        by_type["AssumedRole"] + by_type["AWSService"] > total / 2,
        "{by_type:?}"
    );
    for v in [
        "1.02", "1.03", "1.04", "1.05", "1.06", "1.07", "1.08", "1.09", "1.10", "1.11",
    ] {
        assert!(versions.contains(v), "eventVersion {v} missing");
    }
    for n in [
        "ec2.amazonaws.com:DescribeInstances",
        "ec2.amazonaws.com:RunInstances",
        "ec2.amazonaws.com:TerminateInstances",
        "s3.amazonaws.com:ListBuckets",
        "s3.amazonaws.com:PutBucketPolicy",
        "kms.amazonaws.com:Decrypt",
        "kms.amazonaws.com:GenerateDataKey",
        "sts.amazonaws.com:GetCallerIdentity",
        "cloudtrail.amazonaws.com:LookupEvents",
        "lambda.amazonaws.com:ListFunctions20150331",
        "signin.amazonaws.com:ConsoleLogin",
        "signin.amazonaws.com:CheckMfa",
        "sts.amazonaws.com:AssumeRole",
        "sts.amazonaws.com:AssumeRoleWithSAML",
        "sts.amazonaws.com:AssumeRoleWithWebIdentity",
        "iam.amazonaws.com:CreateUser",
        "iam.amazonaws.com:CreateRole",
        "iam.amazonaws.com:DeleteRole",
        "iam.amazonaws.com:AttachRolePolicy",
        "iam.amazonaws.com:AttachUserPolicy",
        "iam.amazonaws.com:CreateAccessKey",
        "iam.amazonaws.com:DeleteUser",
        "iam.amazonaws.com:UpdateLoginProfile",
        "iam.amazonaws.com:TagRole",
        "s3.amazonaws.com:GetObject",
        "s3.amazonaws.com:PutObject",
        "s3.amazonaws.com:HeadObject",
        "lambda.amazonaws.com:Invoke",
        "dynamodb.amazonaws.com:GetItem",
    ] {
        assert!(names.contains(n), "event {n} missing");
    }
    for e in [
        "AccessDenied",
        "Client.UnauthorizedOperation",
        "ThrottlingException",
        "VpceAccessDenied",
    ] {
        assert!(errors.contains(e), "errorCode {e} missing: {errors:?}");
    }
    for e in [
        "AwsApiCall",
        "AwsServiceEvent",
        "AwsConsoleSignIn",
        "AwsConsoleAction",
        "AwsVpceEvent",
    ] {
        assert!(event_types.contains(e), "eventType {e} missing");
    }
    for c in ["Management", "Data", "NetworkActivity"] {
        assert!(categories.contains(c), "eventCategory {c} missing");
    }
    assert!(names.contains("apigateway.amazonaws.com:GetVpcLinks"));
    assert!(v4 > 0 && v6 > 0 && principal > 0 && internal > 0 && no_ip > 0);
    assert!(req_null > 0 && req_absent > 0 && no_recipient > 0);
    assert!(escaped_unicode > 0 && quotes > 0 && backslashes > 0);
    assert!(
        big > 0 && legacy_s3 > 0 && vpce > 0 && mfa_login > 0 && failed_login > 0 && prev_day > 0
    );
    assert!(
        session_ctx > 0 && web_id > 0 && source_identity > 0 && ec2_delivery > 0 && typeless > 0
    );
}

/// Task definitions are re-registered like real ones: the same family in the same
/// account and region keeps nearly all its variables and values from one revision to
/// the next, so the large payloads are as repetitive as real configuration, not
/// random text.
#[test]
fn large_payloads_repeat_like_real_configuration() {
    let spec = CorpusSpec {
        seed: 11,
        accounts: 2,
        files: 30,
        records_per_file: 200,
        large_payloads: true,
        ..CorpusSpec::default()
    };
    // (account/region, family) -> each registration's environment, name -> value.
    let mut seen: BTreeMap<(String, String), Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for r in records(&spec) {
        let v: Value = serde_json::from_str(&r.json).unwrap();
        if v["eventName"] != "RegisterTaskDefinition" {
            continue;
        }
        let req = &v["requestParameters"];
        let family = req["family"].as_str().unwrap().to_string();
        let env: BTreeMap<String, String> = req["containerDefinitions"][0]["environment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let name = e["name"].as_str().unwrap().to_string();
                (name, e["value"].as_str().unwrap().to_string())
            })
            .collect();
        // The response echoes the registered definition.
        let echoed = &v["responseElements"]["taskDefinition"]["containerDefinitions"][0];
        assert_eq!(
            echoed["environment"],
            req["containerDefinitions"][0]["environment"]
        );
        let acct = v["recipientAccountId"].as_str().unwrap();
        let region = v["awsRegion"].as_str().unwrap();
        seen.entry((format!("{acct}/{region}"), family))
            .or_default()
            .push(env);
    }
    let (mut pairs, mut same, mut total) = (0, 0, 0);
    for regs in seen.values() {
        for w in regs.windows(2) {
            assert_eq!(
                w[0].keys().collect::<Vec<_>>(),
                w[1].keys().collect::<Vec<_>>()
            );
            pairs += 1;
            total += w[0].len();
            same += w[0].iter().filter(|(k, v)| w[1][*k] == **v).count();
        }
    }
    assert!(pairs >= 10, "only {pairs} re-registrations");
    // About 2 % of values change per revision (two revisions: about 4 % differ).
    let changed = 1.0 - same as f64 / total as f64;
    assert!(
        (0.01..0.10).contains(&changed),
        "{:.1} % of values changed between revisions",
        changed * 100.0
    );
    // Families differ from each other.
    let families: BTreeSet<&String> = seen.keys().map(|(_, f)| f).collect();
    assert!(families.len() >= 3, "{families:?}");
}

#[test]
fn large_log_file_streams_the_size_asked() {
    let dir = TempDir::new("large");
    let path = dir
        .0
        .join("123456789012_CloudTrail_eu-west-1_20240309T1205Z_abcdefghijklmnop.json.gz");
    let target = 30 * 1024 * 1024;
    let m = large_log_file(&path, 5, target).unwrap();
    assert!(
        m.uncompressed_bytes <= target && m.uncompressed_bytes * 10 >= target * 9,
        "{}",
        m.uncompressed_bytes
    );
    assert!(m.event_ids.is_empty());
    assert_eq!(m.rows_by_class.values().sum::<u64>(), m.records_valid);
    assert_eq!(m.rows_by_partition.values().sum::<u64>(), m.records_total);
    assert!(
        m.rows_by_partition
            .keys()
            .all(|k| k.contains("/eu-west-1/123456789012/"))
    );

    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(rename = "Records")]
        records: Vec<serde::de::IgnoredAny>,
    }
    let text = gunzip(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(text.len() as u64, m.uncompressed_bytes);
    let doc: Doc = serde_json::from_slice(&text).unwrap();
    assert_eq!(doc.records.len() as u64, m.records_total);

    // A name without CloudTrail's pattern still works; same seed, same bytes.
    let (a, b) = (dir.0.join("a.json.gz"), dir.0.join("b.json.gz"));
    let ma = large_log_file(&a, 9, 200_000).unwrap();
    assert_eq!(ma, large_log_file(&b, 9, 200_000).unwrap());
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    // Even a tiny target gets one record.
    assert_eq!(large_log_file(&a, 9, 10).unwrap().records_total, 1);
}

/// JSON generation alone (no gzip, no disk), as `large_log_file` produces it.
#[test]
#[ignore = "benchmark: cargo test --release -p trailhouse-corpus -- --ignored --nocapture"]
fn bench_generation_only() {
    let regions = vec!["us-east-1".to_string()];
    let mut rng = Rng::new(1);
    let world = World::new(&mut rng, 1, &regions);
    let mut engine = Generator::new(world, false);
    let mut out = String::with_capacity(4 << 20);
    let (mut bytes, mut n) = (0u64, 0u64);
    let start = std::time::Instant::now();
    while bytes < 1 << 30 {
        out.clear();
        while out.len() < 2 << 20 {
            let time = 1_710_000_000 - crate::engine::lag(&mut rng);
            engine.build(&mut rng, 0, 0, time);
            engine.rec.emit(&mut out);
            out.push(',');
            n += 1;
        }
        bytes += out.len() as u64;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "generation only: {n} records, {:.0} MB in {s:.2}s = {:.0} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / s
    );
}
