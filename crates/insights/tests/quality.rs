//! Detector quality on synthetic trails: every injected burst of the stated size is
//! found with its exact start and end minutes and its attributions, and quiet weeks
//! give nothing.

use trailhouse_insights::synth::{Burst, Scenario};
use trailhouse_insights::{
    Attributor, Counter, DAY_MINUTES, Insight, InsightType, MINUTE_MS, Params,
};

/// 2024-03-04T00:00:00Z in epoch minutes.
const START: i64 = 1_709_510_400 / 60;

fn run(s: &Scenario) -> Vec<Insight> {
    let params = Params::default();
    let mut c = Counter::new();
    s.for_each_event(|e| c.add(e));
    let windows = c.detect(i64::MIN / 4, i64::MAX / 4, &params);
    let mut a = Attributor::new(&c, windows, &params);
    s.for_each_event(|e| a.add(e));
    a.finish()
}

/// The stated size: a burst is guaranteed to be found when it adds at least
/// 8 × max(1, √peak rate) calls per minute for at least 3 minutes.
fn stated_size(peak_rate: f64) -> u32 {
    (8.0 * peak_rate.sqrt().max(1.0)).ceil() as u32
}

fn burst(
    s: &Scenario,
    api: &str,
    kind: InsightType,
    day: i64,
    hhmm: (i64, i64),
    minutes: i64,
    who: usize,
) -> Burst {
    let i = s
        .apis
        .iter()
        .position(|a| a.event_name == api)
        .expect("api in scenario");
    Burst {
        api: i,
        kind,
        start: START + day * DAY_MINUTES + hhmm.0 * 60 + hhmm.1,
        minutes,
        extra_per_minute: stated_size(s.apis[i].peak_rate),
        user_arn: format!("arn:aws:iam::111122223333:user/intruder-{who}"),
        user_agent: format!("python-requests/2.{who}"),
        error_code: if who.is_multiple_of(2) {
            "AccessDenied".into()
        } else {
            "UnauthorizedOperation".into()
        },
    }
}

#[test]
fn quiet_weeks_yield_no_insight() {
    for seed in [1, 2, 3] {
        let s = Scenario::typical(seed, START, 14);
        let found = run(&s);
        assert!(
            found.is_empty(),
            "seed {seed}: {:#?}",
            &found[..found.len().min(3)]
        );
    }
}

#[test]
fn every_burst_of_the_stated_size_is_found_exactly() {
    let mut s = Scenario::typical(7, START, 11);
    let call = InsightType::ApiCallRate;
    let err = InsightType::ApiErrorRate;
    s.bursts = vec![
        // Night and peak hours, rare and busy APIs, short and long.
        burst(&s, "RunInstances", call, 7, (3, 10), 5, 1),
        burst(
            &s,
            "UpdateInstanceAssociationStatus",
            call,
            7,
            (14, 30),
            12,
            2,
        ),
        burst(&s, "AssumeRole", call, 8, (9, 0), 45, 3),
        burst(&s, "CreateAccessKey", call, 8, (23, 57), 3, 4), // crosses midnight
        burst(&s, "PutBucketPolicy", call, 9, (0, 0), 90, 5),
        burst(&s, "DescribeInstances", err, 9, (16, 5), 20, 6),
        burst(&s, "Decrypt", err, 10, (4, 44), 4, 7),
        burst(&s, "DescribeInstances", err, 10, (13, 0), 3, 8),
    ];
    let found = run(&s);
    let summary: Vec<_> = found
        .iter()
        .map(|i| {
            (
                i.group.event_name.clone(),
                i.kind,
                i.start_ms / MINUTE_MS - START,
                i.end_ms.map(|e| e / MINUTE_MS - START),
            )
        })
        .collect();
    assert_eq!(found.len(), s.bursts.len(), "{summary:#?}");
    for b in &s.bursts {
        let api = &s.apis[b.api];
        let i = found
            .iter()
            .find(|i| {
                i.group.event_name == api.event_name
                    && i.kind == b.kind
                    && i.start_ms == b.start * MINUTE_MS
            })
            .unwrap_or_else(|| panic!("burst {b:?} not found in {summary:#?}"));
        assert_eq!(i.end_ms, Some((b.start + b.minutes) * MINUTE_MS), "{b:?}");
        assert_eq!(i.insight_duration, b.minutes);
        assert_eq!(i.baseline_duration, 7 * DAY_MINUTES);
        assert_eq!(i.group.event_source, api.event_source);
        let top = |attr: &str| -> String {
            i.attributions
                .iter()
                .find(|a| a.attribute == attr)
                .and_then(|a| a.insight.first())
                .map(|v| v.0.clone())
                .unwrap_or_default()
        };
        assert_eq!(top("userIdentityArn"), b.user_arn);
        assert_eq!(top("userAgent"), b.user_agent);
        if b.kind == InsightType::ApiErrorRate {
            assert_eq!(top("errorCode"), b.error_code);
        } else {
            assert_eq!(top("errorCode"), "null");
        }
        // The burst's own calls are in the insight average; the baseline is far below.
        assert!(i.insight_average >= f64::from(b.extra_per_minute), "{i:?}");
        assert!(i.baseline_average * 3.0 < i.insight_average, "{i:?}");
        let base_users = &i.attributions[0].baseline;
        assert!(
            base_users.iter().all(|(v, _)| v != &b.user_arn),
            "the baseline predates the burst"
        );
    }
}

#[test]
fn a_burst_running_at_the_end_of_the_data_stays_open() {
    let mut s = Scenario::typical(11, START, 8);
    let mut b = burst(
        &s,
        "AssumeRole",
        InsightType::ApiCallRate,
        7,
        (23, 50),
        10,
        1,
    );
    b.minutes = 10; // runs past the last minute of data (23:59)
    s.bursts = vec![b.clone()];
    let found = run(&s);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].start_ms, b.start * MINUTE_MS);
    assert_eq!(found[0].end_ms, None);
    let recs = trailhouse_insights::records::records(&found[0]);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["insightDetails"]["state"], "Start");
}
