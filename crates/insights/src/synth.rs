//! Synthetic management activity for measuring the detector: a steady background
//! with daily cycles, day-to-day drift and Poisson noise, into which bursts of calls
//! or of errors are injected at known minutes by known principals. Deterministic for
//! a seed. Also renders the activity as CloudTrail log files, so the whole chain
//! (replay → lake → insights) can be tested.

use std::f64::consts::TAU;

use serde_json::{Value, json};

use crate::detect::{DAY_MINUTES, Event, InsightType, MINUTE_MS};
use crate::records::stable_id;

/// One API of the background.
#[derive(Debug, Clone)]
pub struct Api {
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// Whether calls are read-only.
    pub read_only: bool,
    /// Mean calls per minute at the daily peak.
    pub peak_rate: f64,
    /// Share of background calls that fail (`ThrottlingException`).
    pub error_share: f64,
}

/// A burst injected into the background.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Index into [`Scenario::apis`].
    pub api: usize,
    /// What the burst should be found as: extra calls (call rate; use a write API)
    /// or extra failing calls (error rate; a read-only API keeps the call rate flat).
    pub kind: InsightType,
    /// First minute, epoch minutes.
    pub start: i64,
    /// Length in minutes.
    pub minutes: i64,
    /// Extra calls per minute.
    pub extra_per_minute: u32,
    /// Who makes the extra calls.
    pub user_arn: String,
    /// With which user agent.
    pub user_agent: String,
    /// The error code of an error burst.
    pub error_code: String,
}

/// A trail's activity over some days.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Seed of the noise.
    pub seed: u64,
    /// Account.
    pub account: String,
    /// Region.
    pub region: String,
    /// First minute, epoch minutes (a midnight UTC is natural).
    pub start: i64,
    /// Days of activity.
    pub days: i64,
    /// The APIs called.
    pub apis: Vec<Api>,
    /// Bursts.
    pub bursts: Vec<Burst>,
}

/// Background principals (ARN, user agent).
pub const BACKGROUND_USERS: [(&str, &str); 4] = [
    (
        "arn:aws:sts::111122223333:assumed-role/ci-deploy/build-7",
        "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5",
    ),
    (
        "arn:aws:iam::111122223333:user/alice",
        "aws-cli/2.17.20 Python/3.11.9 Linux/6.1 exe/x86_64.amzn.2023",
    ),
    (
        "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        "autoscaling.amazonaws.com",
    ),
    (
        "arn:aws:sts::111122223333:assumed-role/ops-admin/bob@example.com",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
    ),
];

impl Scenario {
    /// A typical trail: a handful of write and read APIs at different rates.
    pub fn typical(seed: u64, start: i64, days: i64) -> Self {
        let api = |src: &str, name: &str, ro: bool, rate: f64, err: f64| Api {
            event_source: src.into(),
            event_name: name.into(),
            read_only: ro,
            peak_rate: rate,
            error_share: err,
        };
        Scenario {
            seed,
            account: "111122223333".into(),
            region: "us-east-1".into(),
            start,
            days,
            apis: vec![
                api("ec2.amazonaws.com", "RunInstances", false, 0.6, 0.02),
                api("ec2.amazonaws.com", "DescribeInstances", true, 6.0, 0.01),
                api("s3.amazonaws.com", "PutBucketPolicy", false, 0.05, 0.0),
                api("iam.amazonaws.com", "CreateAccessKey", false, 0.02, 0.0),
                api(
                    "ssm.amazonaws.com",
                    "UpdateInstanceAssociationStatus",
                    false,
                    12.0,
                    0.005,
                ),
                api("sts.amazonaws.com", "AssumeRole", false, 4.0, 0.01),
                api("kms.amazonaws.com", "Decrypt", true, 20.0, 0.002),
            ],
            bursts: Vec::new(),
        }
    }

    /// The `generate --insights-demo` trail: [`Scenario::typical`] with four bursts in
    /// its last two days (three of calls, one of errors; two principals).
    pub fn demo(seed: u64, start: i64, days: i64) -> Self {
        // (API, kind, minutes after the start of the day before last, minutes,
        // extra calls per minute, user, user agent, error code)
        type Spec = (
            &'static str,
            InsightType,
            i64,
            i64,
            u32,
            &'static str,
            &'static str,
            &'static str,
        );
        const BURSTS: [Spec; 4] = [
            (
                "RunInstances",
                InsightType::ApiCallRate,
                DAY_MINUTES + 3 * 60 + 10,
                25,
                12,
                "mallory",
                "python-requests/2.32.3",
                "",
            ),
            (
                "AssumeRole",
                InsightType::ApiCallRate,
                14 * 60,
                40,
                30,
                "ci-runaway",
                "aws-sdk-java/2.25.0",
                "",
            ),
            (
                "DescribeInstances",
                InsightType::ApiErrorRate,
                DAY_MINUTES + 9 * 60 + 30,
                15,
                20,
                "mallory",
                "python-requests/2.32.3",
                "AccessDenied",
            ),
            (
                "CreateAccessKey",
                InsightType::ApiCallRate,
                2 * 60,
                5,
                9,
                "mallory",
                "aws-cli/2.17.20",
                "",
            ),
        ];
        let mut s = Scenario::typical(seed, start, days);
        let day_before_last = s.start + (days - 2) * DAY_MINUTES;
        for (name, kind, at, minutes, extra, who, agent, code) in BURSTS {
            let api = s
                .apis
                .iter()
                .position(|a| a.event_name == name)
                .unwrap_or(0);
            s.bursts.push(Burst {
                api,
                kind,
                start: day_before_last + at,
                minutes,
                extra_per_minute: extra,
                user_arn: format!("arn:aws:iam::111122223333:user/{who}"),
                user_agent: agent.to_string(),
                error_code: code.to_string(),
            });
        }
        s
    }

    /// Mean background calls per minute of an API at a minute: a daily cycle
    /// (quiet at night, busy in the afternoon UTC) and a slow day-to-day drift.
    pub fn rate(&self, api: &Api, minute: i64) -> f64 {
        let tod = minute.rem_euclid(DAY_MINUTES) as f64 / DAY_MINUTES as f64;
        let daily = 0.5 * (1.0 - (TAU * (tod - 0.1)).cos()); // 0 at 02:24, 1 at 14:24
        let day = (minute - self.start).div_euclid(DAY_MINUTES) as f64;
        let drift = 1.0 + 0.08 * (day * 1.7).sin();
        api.peak_rate * (0.25 + 0.75 * daily) * drift
    }

    /// Calls the given function with every event, in time order per minute.
    pub fn for_each_event(&self, mut f: impl FnMut(&Event<'_>)) {
        let mut rng = Rng(self.seed ^ 0x9e37_79b9_7f4a_7c15);
        for minute in self.start..self.start + self.days * DAY_MINUTES {
            for api in &self.apis {
                let n = rng.poisson(self.rate(api, minute));
                for _ in 0..n {
                    let (user, agent) =
                        BACKGROUND_USERS[rng.below(BACKGROUND_USERS.len() as u64) as usize];
                    let error = (rng.unit() < api.error_share).then_some("ThrottlingException");
                    f(&Event {
                        time_ms: minute * MINUTE_MS + rng.below(60_000) as i64,
                        account: &self.account,
                        region: &self.region,
                        event_source: &api.event_source,
                        event_name: &api.event_name,
                        read_only: api.read_only,
                        error_code: error,
                        user_arn: Some(user),
                        user_agent: Some(agent),
                    });
                }
            }
            for b in &self.bursts {
                if minute < b.start || minute >= b.start + b.minutes {
                    continue;
                }
                let Some(api) = self.apis.get(b.api) else {
                    continue;
                };
                for _ in 0..b.extra_per_minute {
                    f(&Event {
                        time_ms: minute * MINUTE_MS + rng.below(60_000) as i64,
                        account: &self.account,
                        region: &self.region,
                        event_source: &api.event_source,
                        event_name: &api.event_name,
                        read_only: api.read_only,
                        error_code: (b.kind == InsightType::ApiErrorRate)
                            .then_some(b.error_code.as_str()),
                        user_arn: Some(&b.user_arn),
                        user_agent: Some(&b.user_agent),
                    });
                }
            }
        }
    }

    /// Writes the activity as gzip'd CloudTrail log files, one per hour, under
    /// `dir/AWSLogs/{account}/CloudTrail/{region}/YYYY/MM/DD/`. Returns the number of
    /// records written.
    pub fn write_logs(&self, dir: &std::path::Path) -> std::io::Result<u64> {
        let mut hour: Option<i64> = None;
        let mut records: Vec<Value> = Vec::new();
        let mut written = 0u64;
        let mut result = Ok(());
        let mut seq = 0u64;
        self.for_each_event(|e| {
            if result.is_err() {
                return;
            }
            let h = e.time_ms.div_euclid(3_600_000);
            if hour.is_some_and(|cur| cur != h) && !records.is_empty() {
                result = self.write_file(dir, hour.unwrap_or(h), &records);
                written += records.len() as u64;
                records.clear();
            }
            hour = Some(h);
            seq += 1;
            records.push(self.record(e, seq));
        });
        result?;
        if let (Some(h), false) = (hour, records.is_empty()) {
            self.write_file(dir, h, &records)?;
            written += records.len() as u64;
        }
        Ok(written)
    }

    fn write_file(
        &self,
        dir: &std::path::Path,
        hour: i64,
        records: &[Value],
    ) -> std::io::Result<()> {
        let rel = crate::records::trail_key(
            "CloudTrail",
            &self.account,
            &self.region,
            hour * 3_600_000 + 5 * MINUTE_MS,
            &format!("synth{hour:x}"),
        );
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, crate::records::gzip_file(records)?)
    }

    fn record(&self, e: &Event<'_>, seq: u64) -> Value {
        let arn = e.user_arn.unwrap_or("");
        let identity = if arn.contains(":assumed-role/") {
            let role = arn.split('/').nth(1).unwrap_or("role");
            json!({"type": "AssumedRole", "principalId": format!("AROAEXAMPLE:{role}"), "arn": arn,
                   "accountId": self.account,
                   "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                      "arn": format!("arn:aws:iam::{}:role/{role}", self.account),
                      "accountId": self.account, "userName": role}}})
        } else {
            let name = arn.rsplit('/').next().unwrap_or("user");
            json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": arn,
                   "accountId": self.account, "userName": name, "accessKeyId": "AKIAEXAMPLE"})
        };
        let id = stable_id(&["synth", &self.seed.to_string(), &seq.to_string()]);
        let mut r = json!({
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": trailhouse_cloudtrail::time::format_rfc3339_s(e.time_ms),
            "eventSource": e.event_source,
            "eventName": e.event_name,
            "awsRegion": e.region,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": e.user_agent.unwrap_or(""),
            "requestParameters": null,
            "responseElements": null,
            "requestID": id,
            "eventID": id,
            "readOnly": e.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": self.account,
            "eventCategory": "Management",
        });
        if let Some(code) = e.error_code {
            r["errorCode"] = json!(code);
            r["errorMessage"] = json!(format!("{code} (synthetic)"));
        }
        r
    }
}

/// splitmix64: small, fast, good enough for noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    /// Poisson(λ): Knuth's product method in slices of λ ≤ 30.
    fn poisson(&mut self, lambda: f64) -> u32 {
        let mut left = lambda.max(0.0);
        let mut n = 0;
        while left > 0.0 {
            let l = left.min(30.0);
            left -= l;
            let limit = (-l).exp();
            let mut p = self.unit();
            while p > limit {
                n += 1;
                p *= self.unit();
            }
        }
        n
    }
}
