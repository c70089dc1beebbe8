//! The plan of a corpus (which files, which records where) and how each file's
//! records are produced. Every record is drawn from its own random stream,
//! derived from (seed, file, index), so any record can be produced again on its
//! own: that is how duplicates are byte-identical and how [`crate::records`]
//! yields exactly what [`crate::generate`] writes without touching the disk.

use crate::engine::{Generator, lag};
use crate::json::Json;
use crate::record::TimeMode;
use crate::rng::{ALNUM, HEX, Rng};
use crate::time::{
    DAY, days_from_civil, event_time, is_valid_date, key_folders, key_minute, key_second,
};
use crate::world::World;
use crate::{CorpusSpec, GeneratedRecord};

/// How a log file is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// `.json.gz`.
    Gzip,
    /// Uncompressed `.json` (valid extra).
    Plain,
    /// `.json.gz` cut to half its compressed size (hostile).
    Truncated,
}

/// A record inserted into a file besides its own.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    /// A byte-identical copy of record `k` of file `file`.
    Dup { file: usize, k: usize },
    /// A record that must be quarantined.
    Bad(Bad),
    /// A valid record with a fractional-second `eventTime`.
    Fractional,
}

/// The kinds of records that must be quarantined.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bad {
    MissingTime,
    MissingId,
    TimeText,
    RegionPath,
    AccountPath,
    AccountNul,
    Number,
    Empty,
}

const BADS: [Bad; 8] = [
    Bad::MissingTime,
    Bad::MissingId,
    Bad::TimeText,
    Bad::RegionPath,
    Bad::AccountPath,
    Bad::AccountNul,
    Bad::Number,
    Bad::Empty,
];

/// One log file of the plan.
pub(crate) struct FilePlan {
    pub account: usize,
    pub region: usize,
    /// Delivery time (key date and stamp), epoch seconds.
    pub delivery: i64,
    /// The file's own records.
    pub records: usize,
    pub form: Form,
    /// Inserted records, by position (0..=records), in insertion order.
    pub extras: Vec<(usize, Slot)>,
    /// The 16-character unique part of the file name.
    pub unique: String,
}

/// Objects that are not log files (or not readable ones), written on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OtherKind {
    RandomBytes,
    NotJson,
    NoRecords,
    RecordsNotArray,
    Digest,
    Insight,
}

pub(crate) struct Other {
    pub kind: OtherKind,
    pub account: usize,
    pub region: usize,
    pub time: i64,
    pub unique: String,
}

/// A produced record: valid (with its labels) or one to be quarantined.
pub(crate) enum Item {
    Valid { rec: GeneratedRecord, dup: bool },
    Bad(String),
}

/// A planned corpus.
pub(crate) struct Corpus {
    pub spec: CorpusSpec,
    pub engine: Generator,
    pub files: Vec<FilePlan>,
    pub others: Vec<Other>,
    /// Key prefix up to and including `AWSLogs/[o-org/]`.
    pub base: String,
}

/// Records in the truncated hostile object.
pub(crate) const TRUNCATED_RECORDS: usize = 40;

const RECORD_STREAMS: u64 = 0x7265_636f_7264_7321;

impl Corpus {
    pub(crate) fn new(spec: &CorpusSpec) -> Self {
        let mut world_rng = Rng::derive(spec.seed, u64::MAX);
        let world = World::new(&mut world_rng, spec.accounts, &spec.regions);
        let mut rng = Rng::derive(spec.seed, u64::MAX - 1);
        let (y, m, d) = spec.start_day;
        let (y, m, d) = if is_valid_date(y, m, d) {
            (y, m, d)
        } else {
            (2024, 3, 9)
        };
        let start = days_from_civil(y, m, d) * DAY;
        let days = spec.days.max(1) as u64;
        let accounts = world.accounts.len();
        let regions = world.regions.len();
        let combos = accounts * regions;

        let delivery = |rng: &mut Rng| -> i64 {
            let day = start + rng.below(days) as i64 * DAY;
            // Some deliveries just after midnight carry the previous day's records.
            if rng.chance(0.15) {
                day + rng.range(60, 900) as i64
            } else {
                day + rng.below(DAY as u64) as i64
            }
        };
        let unique = |rng: &mut Rng| rng.chars(16, ALNUM);

        let mut files = Vec::with_capacity(spec.files + 3);
        for i in 0..spec.files {
            let combo = i % combos;
            files.push(FilePlan {
                account: combo % accounts,
                region: combo / accounts % regions,
                delivery: delivery(&mut rng),
                records: spec.records_per_file,
                form: Form::Gzip,
                extras: Vec::new(),
                unique: unique(&mut rng),
            });
        }
        // Duplicate deliveries: a later file of the same account and region repeats
        // records of an earlier one.
        if spec.records_per_file > 0 {
            for i in combos..spec.files {
                if i == combos || rng.chance(0.35) {
                    let src = i - combos;
                    for _ in 0..rng.range(1, 2) {
                        let k = rng.index(spec.records_per_file);
                        let pos = rng.index(files[i].records + 1);
                        files[i].extras.push((pos, Slot::Dup { file: src, k }));
                    }
                }
            }
        }
        let mut others = Vec::new();
        if spec.hostile {
            if spec.files > 0 {
                for (b, bad) in BADS.iter().enumerate() {
                    let f = (b * 5 + 1) % spec.files;
                    let pos = rng.index(files[f].records + 1);
                    files[f].extras.push((pos, Slot::Bad(*bad)));
                }
                let f = spec.files - 1;
                let pos = rng.index(files[f].records + 1);
                files[f].extras.push((pos, Slot::Fractional));
            }
            for (form, records) in [
                (Form::Plain, spec.records_per_file.clamp(3, 20)),
                (Form::Gzip, 0),
                (Form::Truncated, TRUNCATED_RECORDS),
            ] {
                files.push(FilePlan {
                    account: rng.index(accounts),
                    region: rng.index(regions),
                    delivery: delivery(&mut rng),
                    records,
                    form,
                    extras: Vec::new(),
                    unique: unique(&mut rng),
                });
            }
            for kind in [
                OtherKind::RandomBytes,
                OtherKind::NotJson,
                OtherKind::NoRecords,
                OtherKind::RecordsNotArray,
                OtherKind::Digest,
                OtherKind::Insight,
            ] {
                others.push(Other {
                    kind,
                    account: rng.index(accounts),
                    region: rng.index(regions),
                    time: delivery(&mut rng),
                    unique: unique(&mut rng),
                });
            }
        }

        let mut base = String::new();
        if let Some(p) = spec.key_prefix.as_deref() {
            let p = p.trim_matches('/');
            if !p.is_empty() {
                base.push_str(p);
                base.push('/');
            }
        }
        base.push_str("AWSLogs/");
        if let Some(org) = spec.org_id.as_deref() {
            if !org.starts_with("o-") {
                base.push_str("o-");
            }
            base.push_str(org);
            base.push('/');
        }
        Corpus {
            spec: spec.clone(),
            engine: Generator::new(world, spec.large_payloads),
            files,
            others,
            base,
        }
    }

    /// The key of log file `i`, relative to the output directory.
    pub(crate) fn key(&self, i: usize) -> String {
        let f = &self.files[i];
        let acct = &self.engine.world.accounts[f.account].id;
        let region = &self.engine.world.regions[f.region];
        let ext = if f.form == Form::Plain {
            "json"
        } else {
            "json.gz"
        };
        format!(
            "{}{acct}/CloudTrail/{region}/{}/{acct}_CloudTrail_{region}_{}_{}.{ext}",
            self.base,
            key_folders(f.delivery),
            key_minute(f.delivery),
            f.unique
        )
    }

    /// Record `k` of file `file`, drawn from its own stream.
    fn normal(&mut self, file: usize, k: usize, mode: TimeMode) -> GeneratedRecord {
        let f = &self.files[file];
        let (account, region, delivery) = (f.account, f.region, f.delivery);
        let mut rng = Rng::derive(
            self.spec.seed ^ RECORD_STREAMS,
            ((file as u64) << 32) | k as u64,
        );
        let time = delivery - lag(&mut rng);
        let t = self.engine.build(&mut rng, account, region, time);
        self.engine.rec.time_mode = mode;
        let mut json = String::with_capacity(1536);
        self.engine.rec.emit(&mut json);
        let expect = self
            .engine
            .expect(t, &self.engine.world.accounts[account].id);
        GeneratedRecord {
            json,
            class_uid: expect.class_uid,
            expect,
            event_id: self.engine.rec.event_id.clone(),
        }
    }

    /// A record of file `file` that must be quarantined.
    fn bad(&mut self, file: usize, n: usize, bad: Bad) -> String {
        match bad {
            Bad::Number => return "42".to_string(),
            Bad::Empty => return "{}".to_string(),
            _ => {}
        }
        let f = &self.files[file];
        let (account, region, delivery) = (f.account, f.region, f.delivery);
        let mut rng = Rng::derive(
            self.spec.seed ^ RECORD_STREAMS,
            ((file as u64) << 32) | (1 << 31) | n as u64,
        );
        let time = delivery - lag(&mut rng);
        self.engine.build(&mut rng, account, region, time);
        let r = &mut self.engine.rec;
        match bad {
            Bad::MissingTime => r.time_mode = TimeMode::Missing,
            Bad::MissingId => r.omit_event_id = true,
            Bad::TimeText => r.time_mode = TimeMode::Text("not-a-time"),
            Bad::RegionPath => {
                r.region.clear();
                r.region.push_str("../../etc");
            }
            Bad::AccountPath => r.recipient.set("12/../34"),
            Bad::AccountNul => r.recipient.set("123456789012\u{0}"),
            Bad::Number | Bad::Empty => unreachable!(),
        }
        let mut json = String::with_capacity(1536);
        r.emit(&mut json);
        json
    }

    /// Every record of file `i`, in file order.
    pub(crate) fn items(&mut self, i: usize) -> Vec<Item> {
        let n = self.files[i].records;
        let mut extras = self.files[i].extras.clone();
        extras.sort_by_key(|&(pos, _)| pos);
        let mut out = Vec::with_capacity(n + extras.len());
        let mut e = 0;
        for k in 0..=n {
            while e < extras.len() && extras[e].0 == k {
                let item = match extras[e].1 {
                    Slot::Dup { file, k } => Item::Valid {
                        rec: self.normal(file, k, TimeMode::Normal),
                        dup: true,
                    },
                    Slot::Bad(b) => Item::Bad(self.bad(i, e, b)),
                    Slot::Fractional => Item::Valid {
                        rec: self.normal(i, (1 << 30) | e, TimeMode::Millis(123)),
                        dup: false,
                    },
                };
                out.push(item);
                e += 1;
            }
            if k < n {
                out.push(Item::Valid {
                    rec: self.normal(i, k, TimeMode::Normal),
                    dup: false,
                });
            }
        }
        out
    }

    /// The key and content of a non-log object.
    pub(crate) fn other(&self, o: &Other) -> (String, Vec<u8>) {
        let world = &self.engine.world;
        let acct = &world.accounts[o.account].id;
        let region = &world.regions[o.region];
        let home = &world.regions[world.global_region.unwrap_or(0)];
        let folders = key_folders(o.time);
        let mut rng = Rng::derive(self.spec.seed, 0xD1_6E57 + o.kind as u64);
        let log_key = |kind: &str| {
            format!(
                "{}{acct}/CloudTrail/{region}/{folders}/{acct}_CloudTrail_{region}_{}_{}.{kind}",
                self.base,
                key_minute(o.time),
                o.unique
            )
        };
        match o.kind {
            OtherKind::RandomBytes => {
                let mut bytes: Vec<u8> = (0..2048).map(|_| rng.next_u64() as u8).collect();
                bytes[0] = 0x7b ^ 0x55; // never the gzip magic
                (log_key("json.gz"), bytes)
            }
            OtherKind::NotJson => (
                log_key("json.gz"),
                b"<html><body><h1>503 Service Unavailable</h1></body></html>\nthis is not JSON {{{\n".to_vec(),
            ),
            OtherKind::NoRecords => (log_key("json.gz"), b"{\"foo\":[1,2]}".to_vec()),
            OtherKind::RecordsNotArray => (log_key("json.gz"), b"{\"Records\": 5}".to_vec()),
            OtherKind::Digest => {
                let end = o.time.div_euclid(3600) * 3600;
                let key = format!(
                    "{}{acct}/CloudTrail-Digest/{region}/{}/{acct}_CloudTrail-Digest_{region}_org-trail_{home}_{}.json.gz",
                    self.base,
                    key_folders(end),
                    key_second(end + 31)
                );
                (key.clone(), self.digest_json(&mut rng, o, end, &key).into_bytes())
            }
            OtherKind::Insight => {
                let key = format!(
                    "{}{acct}/CloudTrail-Insight/{region}/{folders}/{acct}_CloudTrail-Insight_{region}_{}_{}.json.gz",
                    self.base,
                    key_minute(o.time),
                    o.unique
                );
                (key, insight_json(&mut rng, acct, region, o.time).into_bytes())
            }
        }
    }

    /// A digest file in CloudTrail's shape, listing this account and region's log
    /// files delivered in the hour before `end` (hashes are random hex).
    fn digest_json(&self, rng: &mut Rng, o: &Other, end: i64, key: &str) -> String {
        let world = &self.engine.world;
        let acct = &world.accounts[o.account].id;
        let bucket = format!("org-cloudtrail-{}", world.accounts[0].id);
        let mut s = String::with_capacity(4096);
        let mut j = Json::new(&mut s);
        j.open();
        j.str("awsAccountId", acct);
        j.str("digestStartTime", &event_time(end - 3600));
        j.str("digestEndTime", &event_time(end));
        j.str("digestS3Bucket", &bucket);
        j.str("digestS3Object", key);
        j.str("digestPublicKeyFingerprint", &rng.chars(32, HEX));
        j.str("digestSignatureAlgorithm", "SHA256withRSA");
        j.str("newestEventTime", &event_time(end - 75));
        j.str("oldestEventTime", &event_time(end - 3540));
        j.str("previousDigestS3Bucket", &bucket);
        let prev = key.replace(&key_second(end + 31), &key_second(end - 3600 + 29));
        j.str("previousDigestS3Object", &prev);
        j.str("previousDigestHashValue", &rng.chars(64, HEX));
        j.str("previousDigestHashAlgorithm", "SHA-256");
        j.str("previousDigestSignature", &rng.chars(512, HEX));
        j.arr("logFiles");
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if f.account == o.account
                && f.region == o.region
                && f.delivery < end
                && f.delivery >= end - 3600
            {
                j.open();
                j.str("s3Bucket", &bucket);
                j.str("s3Object", &self.key(i));
                j.str("hashValue", &rng.chars(64, HEX));
                j.str("hashAlgorithm", "SHA-256");
                j.str("newestEventTime", &event_time(f.delivery - 20));
                j.str("oldestEventTime", &event_time(f.delivery - 900));
                j.close();
            }
        }
        j.close_arr();
        j.close();
        s
    }
}

/// An Insights file: a Start and an End event of one API-call-rate insight.
fn insight_json(rng: &mut Rng, acct: &str, region: &str, time: i64) -> String {
    let shared = rng.uuid();
    let mut s = String::with_capacity(4096);
    let mut j = Json::new(&mut s);
    j.open();
    j.arr("Records");
    for (state, t) in [("Start", time - 1800), ("End", time - 600)] {
        j.open();
        j.str("eventVersion", "1.08");
        j.str("eventTime", &event_time(t));
        j.str("awsRegion", region);
        j.str("eventID", &rng.uuid());
        j.str("eventType", "AwsCloudTrailInsight");
        j.str("recipientAccountId", acct);
        j.str("sharedEventID", &shared);
        j.obj("insightDetails");
        j.str("state", state);
        j.str("eventSource", "ec2.amazonaws.com");
        j.str("eventName", "DescribeInstances");
        j.str("insightType", "ApiCallRateInsight");
        j.obj("insightContext");
        j.obj("statistics");
        j.obj("baseline");
        j.raw("average", "0.0735");
        j.close();
        j.obj("insight");
        j.raw("average", "3.5");
        j.close();
        if state == "End" {
            j.int("insightDuration", 20);
            j.int("baselineDuration", 10_080);
        }
        j.close();
        j.arr("attributions");
        for (attr, value) in [
            (
                "userIdentityArn",
                format!("arn:aws:sts::{acct}:assumed-role/eks-node-group-role/i-0abc123def4567890"),
            ),
            (
                "userAgent",
                "aws-sdk-go/1.50.10 (go1.21.6; linux; amd64)".to_string(),
            ),
            ("errorCode", "null".to_string()),
        ] {
            j.open();
            j.str("attribute", attr);
            j.arr("insight");
            j.open();
            j.str("value", &value);
            j.raw("average", "3.5");
            j.close();
            j.close_arr();
            j.arr("baseline");
            j.open();
            j.str("value", &value);
            j.raw("average", "0.0735");
            j.close();
            j.close_arr();
            j.close();
        }
        j.close_arr();
        j.close();
        j.close();
        j.str("eventCategory", "Insight");
        j.close();
    }
    j.close_arr();
    j.close();
    s
}
