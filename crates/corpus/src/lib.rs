#![warn(missing_docs)]
//! Deterministic generator of realistic (and, on request, hostile) AWS CloudTrail
//! log corpora for tests and benchmarks.
//!
//! A [`CorpusSpec`] and its seed fully decide the corpus: [`generate`] writes the
//! same bytes every time. Alongside the files it returns a [`Manifest`] of what a
//! correct CloudTrail → OCSF 1.1.0 → Security Lake pipeline must produce. The
//! manifest is computed from the generator's own labels (each event template
//! declares its OCSF class and Security Lake source), never by running a mapper.
//!
//! What the records cover, weighted roughly like a real organisation trail (mostly
//! role sessions and AWS services reading):
//! - identity types IAMUser, AssumedRole (session issuer, MFA flag, web-identity
//!   data, `sourceIdentity`, `ec2RoleDelivery`, `inScopeOf`), Root, AWSService,
//!   type-less service identities, FederatedUser, SAMLUser, WebIdentityUser,
//!   AWSAccount (incl. anonymous), IdentityCenterUser, Unknown; the calls of one
//!   session in one hour share access key, `creationDate`, address and user agent;
//! - `eventVersion` 1.02 … 1.11 with the fields each version had;
//! - management reads and writes (EC2, S3 buckets, KMS, STS, CloudTrail, Lambda,
//!   SSM, Secrets Manager, …) with AccessDenied, `Client.UnauthorizedOperation`,
//!   throttling and other errors; console sign-ins (success, failure, MFA), CheckMfa,
//!   Identity Center sign-in events, AssumeRole / WithSAML / WithWebIdentity; IAM
//!   account changes; S3, Lambda and DynamoDB data events (and a pre-1.06 S3 one);
//!   service events, console actions and network-activity (VPC endpoint) events;
//! - IPv4, IPv6, service-principal, "AWS Internal" and absent source addresses;
//!   strings needing JSON escapes, `\u` escapes, non-ASCII text; null and absent
//!   request parameters; optionally payloads of tens of kilobytes; records out of
//!   time order, from the previous day, and delivered twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::Path;

use serde::Serialize;

mod actor;
mod corpus;
mod engine;
mod json;
mod large;
mod record;
mod rng;
mod templates;
mod time;
mod world;

#[cfg(test)]
mod tests;

use corpus::{Corpus, Form, Item, OtherKind};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs;
use std::io::Write;

/// What corpus to generate. Everything is decided by these fields; the same spec
/// gives a byte-identical tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of AWS accounts (12-digit ids drawn from the seed); at least one is used.
    pub accounts: usize,
    /// Regions log files are delivered for (`us-east-1` also receives the global
    /// IAM events; without it they are spread over all regions).
    pub regions: Vec<String>,
    /// First delivery day (UTC) as (year, month, day).
    pub start_day: (i32, u32, u32),
    /// Number of delivery days. Records may be older than the first day.
    pub days: u32,
    /// Number of ordinary `.json.gz` log files (hostile and extra objects come on top).
    pub files: usize,
    /// Records in each ordinary log file (duplicates and hostile records come on top).
    pub records_per_file: usize,
    /// Organization id for an organization-trail layout (`AWSLogs/o-…/{account}/…`);
    /// an `o-` prefix is added when missing.
    pub org_id: Option<String>,
    /// Key prefix before `AWSLogs/` (slashes at either end are ignored).
    pub key_prefix: Option<String>,
    /// Adds hostile objects and records, digest and insight files, and the valid
    /// extras (an uncompressed `.json` log, an empty `Records` array, a fractional
    /// `eventTime`); see [`Manifest`] for how each is counted.
    pub hostile: bool,
    /// Makes some `requestParameters`/`responseElements` tens of kilobytes.
    pub large_payloads: bool,
}

impl Default for CorpusSpec {
    /// A small corpus: seed 1, 3 accounts, us-east-1 + eu-west-1 + ap-southeast-2,
    /// 2 days from 2024-03-09, 12 files of 50 records, not hostile, no large payloads.
    fn default() -> Self {
        CorpusSpec {
            seed: 1,
            accounts: 3,
            regions: vec![
                "us-east-1".into(),
                "eu-west-1".into(),
                "ap-southeast-2".into(),
            ],
            start_day: (2024, 3, 9),
            days: 2,
            files: 12,
            records_per_file: 50,
            org_id: None,
            key_prefix: None,
            hostile: false,
            large_payloads: false,
        }
    }
}

/// Where a valid record must land: one Security Lake partition of one OCSF class.
#[derive(Serialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionExpect {
    /// Security Lake source: `CLOUD_TRAIL_MGMT`, `S3_DATA`, `LAMBDA_EXECUTION` or
    /// `CLOUD_TRAIL_DATA` (other data events and network-activity events).
    pub source: String,
    /// OCSF class: 6003 API Activity, 3002 Authentication, 3001 Account Change.
    pub class_uid: u32,
    /// `awsRegion` of the record.
    pub region: String,
    /// `recipientAccountId`, or the account of the object key when the record has none.
    pub account: String,
    /// UTC day of `eventTime`, `YYYYMMDD`.
    pub event_day: String,
}

impl fmt::Display for PartitionExpect {
    /// `{source}/{class_uid}/{region}/{account}/{event_day}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}",
            self.source, self.class_uid, self.region, self.account, self.event_day
        )
    }
}

/// One valid generated record and what a correct pipeline makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRecord {
    /// The record as compact JSON, exactly as written into its log file.
    pub json: String,
    /// The partition (source, class, region, account, day) its row belongs to.
    pub expect: PartitionExpect,
    /// The OCSF class (same as `expect.class_uid`).
    pub class_uid: u32,
    /// `eventID`.
    pub event_id: String,
}

/// What a correct pipeline must produce for a generated corpus.
///
/// Counting rules:
/// - Every object is exactly one of: a good log object (`log_objects`), a
///   quarantined object (`objects_quarantined`), a skipped digest
///   (`objects_skipped_digest`) or a skipped insight file (`objects_skipped_insight`).
/// - `records_total = records_valid + records_quarantined + records in the
///   truncated object`. The records of the truncated object count in neither
///   `records_valid` nor `records_quarantined`: a streaming pipeline may ingest the
///   records before the cut (or none of them) before it fails the object.
/// - Duplicate deliveries are valid records: each extra copy counts in
///   `records_total`, `records_valid`, `rows_by_class` and `rows_by_partition`, and
///   once in `duplicate_event_ids`. A pipeline that deduplicates on `eventID`
///   writes `records_valid - duplicate_event_ids` rows.
/// - With `CorpusSpec::hostile` (and at least one file): `objects_quarantined` = 5,
///   `objects_skipped_digest` = 1, `objects_skipped_insight` = 1,
///   `records_quarantined` = 8, and the truncated object holds 40 records; the
///   uncompressed `.json` log, the `"Records":[]` log and the record with a
///   fractional-second `eventTime` are valid and counted like any other.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Objects written: log files, hostile files, digest and insight files.
    pub objects_total: u64,
    /// Objects that are good CloudTrail log files (including the uncompressed
    /// `.json` one and the one with `"Records":[]`).
    pub log_objects: u64,
    /// Records in all objects at `CloudTrail/` keys, valid or not (see the type docs).
    pub records_total: u64,
    /// Records that must become rows (duplicate copies included).
    pub records_valid: u64,
    /// Bad records inside otherwise good log files, which must be quarantined:
    /// missing `eventTime`, missing `eventID`, `eventTime` "not-a-time", `awsRegion`
    /// "../../etc", `recipientAccountId` "12/../34" and "123456789012\u0000", a
    /// number in `Records`, an empty object in `Records`.
    pub records_quarantined: u64,
    /// Objects at log keys that are not readable logs: random bytes, a truncated
    /// gzip, gzipped non-JSON text, gzipped `{"foo":[1,2]}`, gzipped `{"Records": 5}`.
    pub objects_quarantined: u64,
    /// CloudTrail-Digest objects, which must be skipped.
    pub objects_skipped_digest: u64,
    /// CloudTrail-Insight objects, which must be skipped.
    pub objects_skipped_insight: u64,
    /// Extra copies of records delivered twice (byte-identical, in another file).
    pub duplicate_event_ids: u64,
    /// Valid rows per OCSF class name: "API Activity", "Authentication", "Account Change".
    pub rows_by_class: BTreeMap<String, u64>,
    /// Valid rows per partition, keyed by [`PartitionExpect`]'s `Display` form.
    pub rows_by_partition: BTreeMap<String, u64>,
    /// Distinct `eventID`s of the valid records (empty for [`large_log_file`]).
    pub event_ids: BTreeSet<String>,
    /// Uncompressed bytes of the good log objects.
    pub uncompressed_bytes: u64,
}

/// Writes the corpus of `spec` under `out_dir` (created if needed) and returns its
/// manifest. Layout: `{out}/[prefix/]AWSLogs/[o-org/]{account}/CloudTrail/{region}/
/// YYYY/MM/DD/{account}_CloudTrail_{region}_{YYYYMMDDTHHmmZ}_{16 alnum}.json.gz`,
/// gzip level 6, compact JSON in CloudTrail's field order. With `hostile`, digest
/// and insight files are written at their own CloudTrail layouts.
pub fn generate(spec: &CorpusSpec, out_dir: &Path) -> io::Result<Manifest> {
    let mut c = Corpus::new(spec);
    let mut m = Manifest::default();
    let mut body = String::new();
    for i in 0..c.files.len() {
        let items = c.items(i);
        body.clear();
        body.push_str("{\"Records\":[");
        for (n, it) in items.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(match it {
                Item::Valid { rec, .. } => &rec.json,
                Item::Bad(s) => s,
            });
        }
        body.push_str("]}");
        let key = c.key(i);
        m.objects_total += 1;
        m.records_total += items.len() as u64;
        match c.files[i].form {
            Form::Truncated => {
                m.objects_quarantined += 1;
                let gz = gzip(body.as_bytes())?;
                write_object(out_dir, &key, &gz[..gz.len() / 2])?;
            }
            form => {
                m.log_objects += 1;
                m.uncompressed_bytes += body.len() as u64;
                for it in items {
                    match it {
                        Item::Valid { rec, dup } => {
                            m.count_valid(&rec.expect);
                            if dup {
                                m.duplicate_event_ids += 1;
                            }
                            m.event_ids.insert(rec.event_id);
                        }
                        Item::Bad(_) => m.records_quarantined += 1,
                    }
                }
                if form == Form::Plain {
                    write_object(out_dir, &key, body.as_bytes())?;
                } else {
                    write_object(out_dir, &key, &gzip(body.as_bytes())?)?;
                }
            }
        }
    }
    for o in &c.others {
        let (key, content) = c.other(o);
        m.objects_total += 1;
        match o.kind {
            OtherKind::RandomBytes => {
                m.objects_quarantined += 1;
                write_object(out_dir, &key, &content)?;
                continue;
            }
            OtherKind::NotJson | OtherKind::NoRecords | OtherKind::RecordsNotArray => {
                m.objects_quarantined += 1
            }
            OtherKind::Digest => m.objects_skipped_digest += 1,
            OtherKind::Insight => m.objects_skipped_insight += 1,
        }
        write_object(out_dir, &key, &gzip(&content)?)?;
    }
    Ok(m)
}

impl Manifest {
    fn count_valid(&mut self, e: &PartitionExpect) {
        self.records_valid += 1;
        let class = templates::class_name(e.class_uid);
        *self.rows_by_class.entry(class.to_string()).or_default() += 1;
        *self.rows_by_partition.entry(e.to_string()).or_default() += 1;
    }
}

fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 8 + 64), Compression::new(6));
    e.write_all(data)?;
    e.finish()
}

fn write_object(out_dir: &Path, key: &str, bytes: &[u8]) -> io::Result<()> {
    let path = out_dir.join(key);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}

/// The valid records [`generate`] writes for `spec`, in file order, without touching
/// the disk: duplicate copies included; hostile records and the records of the
/// truncated object left out. Its length equals `Manifest::records_valid`.
pub fn records(spec: &CorpusSpec) -> impl Iterator<Item = GeneratedRecord> {
    let mut corpus = Corpus::new(spec);
    let mut file = 0;
    let mut pending = std::collections::VecDeque::new();
    std::iter::from_fn(move || {
        loop {
            if let Some(r) = pending.pop_front() {
                return Some(r);
            }
            if file >= corpus.files.len() {
                return None;
            }
            let i = file;
            file += 1;
            if corpus.files[i].form == Form::Truncated {
                continue;
            }
            pending.extend(corpus.items(i).into_iter().filter_map(|it| match it {
                Item::Valid { rec, .. } => Some(rec),
                Item::Bad(_) => None,
            }));
        }
    })
}

/// Streams one `.json.gz` CloudTrail log file of about `uncompressed_bytes` of JSON
/// (never more, at least one record) to `path` without holding it in memory, and
/// returns its manifest (`event_ids` left empty).
///
/// When the file name follows CloudTrail's `{account}_CloudTrail_{region}_
/// {YYYYMMDDTHHmmZ}_…` pattern, records use that account, region and delivery
/// time; otherwise an account drawn from `seed`, `us-east-1` and 2024-03-09T12:00Z.
pub fn large_log_file(path: &Path, seed: u64, uncompressed_bytes: u64) -> io::Result<Manifest> {
    large::write(path, seed, uncompressed_bytes)
}
