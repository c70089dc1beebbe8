//! Per-minute rates, seasonal baselines and insight windows.
//!
//! For each (account, region, eventSource, eventName) two series are counted per
//! minute: write management calls (API call rate) and management calls that
//! returned an `errorCode` (API error rate). A minute's baseline is learned from the
//! same time of day (± `half_window` minutes) on each of the preceding
//! `baseline_days` days, so daily cycles are part of "normal"; the highest `trim`
//! share of those samples is ignored so an earlier burst does not raise the bar for
//! the next one. A minute is *elevated* when its count exceeds the baseline mean by
//! more than `minute_z` spreads (spread = the larger of the baseline's standard
//! deviation, Poisson noise √mean, and 1). Elevated minutes at most `max_gap` minutes
//! apart form a window; a window is an insight when its summed excess is `run_z`
//! times its combined spread (a z-score of the whole window) and its rate is at
//! least `min_ratio` times the baseline's. It opens at its first elevated minute
//! and closes after its last; a window still elevated at the end of the data stays
//! open (Start without End).

use std::collections::HashMap;

/// Milliseconds per minute.
pub const MINUTE_MS: i64 = 60_000;
/// Minutes per day.
pub const DAY_MINUTES: i64 = 1440;

/// The two kinds of CloudTrail Insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InsightType {
    /// `ApiCallRateInsight`: write management calls per minute.
    ApiCallRate,
    /// `ApiErrorRateInsight`: management calls with an `errorCode` per minute.
    ApiErrorRate,
}

impl InsightType {
    /// Both kinds.
    pub const ALL: [InsightType; 2] = [InsightType::ApiCallRate, InsightType::ApiErrorRate];

    /// The `insightType` value of CloudTrail's records.
    pub fn name(self) -> &'static str {
        match self {
            InsightType::ApiCallRate => "ApiCallRateInsight",
            InsightType::ApiErrorRate => "ApiErrorRateInsight",
        }
    }

    /// Position in [`InsightType::ALL`] (the series index of a group).
    fn index(self) -> usize {
        self as usize
    }

    /// Parses an `insightType` value.
    pub fn parse(s: &str) -> Option<InsightType> {
        InsightType::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// What the analysis groups by: one CloudTrail Insights "API" of one trail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    /// Account of the events (the lake's `accountId` partition).
    pub account: String,
    /// Region (the lake's `region` partition).
    pub region: String,
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
}

/// One management event, as the analysis needs it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// `eventTime`, epoch milliseconds.
    pub time_ms: i64,
    /// Account.
    pub account: &'a str,
    /// Region.
    pub region: &'a str,
    /// `eventSource`.
    pub event_source: &'a str,
    /// `eventName`.
    pub event_name: &'a str,
    /// `readOnly` (read calls do not count for the call rate).
    pub read_only: bool,
    /// `errorCode`, if any.
    pub error_code: Option<&'a str>,
    /// `userIdentity.arn`, if any.
    pub user_arn: Option<&'a str>,
    /// `userAgent`, if any.
    pub user_agent: Option<&'a str>,
}

impl Event<'_> {
    /// Whether the event counts in the series of `kind`.
    pub fn counts_for(&self, kind: InsightType) -> bool {
        match kind {
            InsightType::ApiCallRate => !self.read_only,
            InsightType::ApiErrorRate => self.error_code.is_some(),
        }
    }

    fn minute(&self) -> i64 {
        self.time_ms.div_euclid(MINUTE_MS)
    }
}

/// Detection settings; the defaults are documented in the module header and README.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Days of history a baseline needs (CloudTrail Insights: 7).
    pub baseline_days: i64,
    /// Minutes either side of the same time of day sampled on each baseline day.
    pub half_window: i64,
    /// Share of the highest baseline samples ignored.
    pub trim: f64,
    /// A minute is elevated above mean + `minute_z` spreads …
    pub minute_z: f64,
    /// … and at least this many calls above the mean.
    pub min_excess: f64,
    /// A window's summed excess must be `run_z` times its combined spread.
    pub run_z: f64,
    /// A window's calls must be at least `min_ratio` times the baseline's.
    pub min_ratio: f64,
    /// Quiet minutes allowed inside one window.
    pub max_gap: i64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            baseline_days: 7,
            half_window: 30,
            trim: 0.05,
            minute_z: 4.0,
            min_excess: 3.0,
            run_z: 8.0,
            min_ratio: 1.5,
            max_gap: 2,
        }
    }
}

/// Minute counts of every series, and the span of data per (account, region).
#[derive(Debug, Default)]
pub struct Counter {
    index: HashMap<String, usize>,
    groups: Vec<Group>,
    /// Per group and kind: minute → count.
    series: Vec<[HashMap<i64, u32>; 2]>,
    /// Per `account\0region`: first and last minute with any event.
    spans: HashMap<String, (i64, i64)>,
    key: String,
    events: u64,
}

impl Counter {
    /// An empty counter.
    pub fn new() -> Self {
        Counter::default()
    }

    /// Counts one management event.
    pub fn add(&mut self, e: &Event<'_>) {
        self.events += 1;
        let minute = e.minute();
        self.key.clear();
        for part in [e.account, e.region] {
            self.key.push_str(part);
            self.key.push('\0');
        }
        match self.spans.get_mut(self.key.as_str()) {
            Some(span) => *span = (span.0.min(minute), span.1.max(minute)),
            None => {
                self.spans.insert(self.key.clone(), (minute, minute));
            }
        }
        if InsightType::ALL.iter().all(|&k| !e.counts_for(k)) {
            return;
        }
        let g = self.group_index(e);
        for kind in InsightType::ALL {
            if e.counts_for(kind) {
                *self.series[g][kind.index()].entry(minute).or_insert(0) += 1;
            }
        }
    }

    /// Events counted (all management events, read or write).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The index of the event's group, if it has one.
    pub(crate) fn find_group(&self, e: &Event<'_>, key: &mut String) -> Option<usize> {
        group_key(e, key);
        self.index.get(key.as_str()).copied()
    }

    fn group_index(&mut self, e: &Event<'_>) -> usize {
        group_key(e, &mut self.key);
        if let Some(&i) = self.index.get(self.key.as_str()) {
            return i;
        }
        let i = self.groups.len();
        self.groups.push(Group {
            account: e.account.to_string(),
            region: e.region.to_string(),
            event_source: e.event_source.to_string(),
            event_name: e.event_name.to_string(),
        });
        self.series.push([HashMap::new(), HashMap::new()]);
        self.index.insert(self.key.clone(), i);
        i
    }

    /// Finds the insight windows whose start lies in `[from_ms, to_ms)`. Minutes
    /// with less than `baseline_days` of history for their account and region are
    /// not judged.
    pub fn detect(&self, from_ms: i64, to_ms: i64, params: &Params) -> Vec<Window> {
        let mut out = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let Some(&(first, last)) = self
                .spans
                .get(&format!("{}\0{}\0", group.account, group.region))
            else {
                continue;
            };
            let eval_from = from_ms
                .div_euclid(MINUTE_MS)
                .max(first + params.baseline_days * DAY_MINUTES);
            let data_end = last + 1;
            let eval_to = to_ms.div_euclid(MINUTE_MS).min(data_end);
            if eval_from >= eval_to {
                continue;
            }
            for kind in InsightType::ALL {
                let mut minutes: Vec<(i64, u32)> = self.series[g][kind.index()]
                    .iter()
                    .map(|(&m, &c)| (m, c))
                    .collect();
                minutes.sort_unstable();
                for w in windows(&minutes, eval_from, eval_to, data_end, params) {
                    out.push(Window {
                        group: g,
                        kind,
                        ..w
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (a.start, &self.groups[a.group], a.kind).cmp(&(b.start, &self.groups[b.group], b.kind))
        });
        out
    }

    /// The group of a window.
    pub fn group(&self, w: &Window) -> &Group {
        &self.groups[w.group]
    }

    /// Events of `kind` for the window's group in minutes `[from, to)`.
    pub fn count(&self, w: &Window, from: i64, to: i64) -> u64 {
        self.series[w.group][w.kind.index()]
            .iter()
            .filter(|&(&m, _)| m >= from && m < to)
            .map(|(_, &c)| u64::from(c))
            .sum()
    }
}

fn group_key(e: &Event<'_>, key: &mut String) {
    key.clear();
    for part in [e.account, e.region, e.event_source, e.event_name] {
        key.push_str(part);
        key.push('\0');
    }
}

/// One detected insight window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub(crate) group: usize,
    /// Call rate or error rate.
    pub kind: InsightType,
    /// First elevated minute (epoch minutes).
    pub start: i64,
    /// The minute after the last elevated one; `None` while still open at the end
    /// of the data.
    pub end: Option<i64>,
    /// Last minute of the window that has data (for open windows, the end of data).
    pub last: i64,
    /// Summed baseline mean over the elevated minutes (calls).
    pub expected: f64,
    /// Calls in the elevated minutes.
    pub observed: u64,
    /// Summed excess / combined spread.
    pub score: f64,
}

struct Run {
    start: i64,
    last: i64,
    excess: f64,
    var: f64,
    expected: f64,
    observed: u64,
}

fn windows(
    minutes: &[(i64, u32)],
    eval_from: i64,
    eval_to: i64,
    data_end: i64,
    p: &Params,
) -> Vec<Window> {
    let mut out = Vec::new();
    let mut run: Option<Run> = None;
    let begin = minutes.partition_point(|&(m, _)| m < eval_from);
    let mut samples = Vec::new();
    let finish = |r: Run, out: &mut Vec<Window>| {
        let score = r.excess / r.var.sqrt().max(1e-9);
        let ratio = r.observed as f64 / r.expected.max(1e-9);
        if score >= p.run_z && ratio >= p.min_ratio {
            let open = r.last + 1 + p.max_gap >= data_end;
            out.push(Window {
                group: 0,
                kind: InsightType::ApiCallRate,
                start: r.start,
                end: (!open).then_some(r.last + 1),
                last: if open { data_end - 1 } else { r.last },
                expected: r.expected,
                observed: r.observed,
                score,
            });
        }
    };
    for &(t, c) in &minutes[begin..] {
        if t >= eval_to {
            break;
        }
        if f64::from(c) <= p.min_excess {
            continue; // cannot be elevated whatever the baseline
        }
        let (mean, spread) = baseline(minutes, t, p, &mut samples);
        let excess = f64::from(c) - mean;
        if excess <= (p.minute_z * spread).max(p.min_excess) {
            continue;
        }
        match &mut run {
            Some(r) if t - r.last - 1 <= p.max_gap => {
                r.last = t;
                r.excess += excess;
                r.var += spread * spread;
                r.expected += mean;
                r.observed += u64::from(c);
            }
            _ => {
                if let Some(r) = run.take() {
                    finish(r, &mut out);
                }
                run = Some(Run {
                    start: t,
                    last: t,
                    excess,
                    var: spread * spread,
                    expected: mean,
                    observed: u64::from(c),
                });
            }
        }
    }
    if let Some(r) = run {
        finish(r, &mut out);
    }
    out
}

/// Mean and spread of the seasonal baseline of minute `t`.
fn baseline(minutes: &[(i64, u32)], t: i64, p: &Params, samples: &mut Vec<u32>) -> (f64, f64) {
    samples.clear();
    for k in 1..=p.baseline_days {
        let center = t - k * DAY_MINUTES;
        let lo = minutes.partition_point(|&(m, _)| m < center - p.half_window);
        let hi = minutes.partition_point(|&(m, _)| m <= center + p.half_window);
        samples.extend(minutes[lo..hi].iter().map(|&(_, c)| c));
    }
    let n = (p.baseline_days * (2 * p.half_window + 1)) as usize;
    let drop = ((n as f64) * p.trim).ceil() as usize;
    samples.sort_unstable_by(|a, b| b.cmp(a));
    let kept = &samples[drop.min(samples.len())..];
    let count = n.saturating_sub(drop).max(1) as f64;
    let sum: f64 = kept.iter().map(|&c| f64::from(c)).sum();
    let sumsq: f64 = kept.iter().map(|&c| f64::from(c) * f64::from(c)).sum();
    let mean = sum / count;
    let var = (sumsq / count - mean * mean).max(0.0);
    (mean, var.max(mean).max(1.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(minute: i64, name: &str, error: Option<&'static str>) -> Event<'static> {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Event {
            time_ms: minute * MINUTE_MS + 1234,
            account: "111122223333",
            region: "us-east-1",
            event_source: "ec2.amazonaws.com",
            event_name: name,
            read_only: false,
            error_code: error,
            user_arn: None,
            user_agent: None,
        }
    }

    #[test]
    fn steady_rate_then_burst() {
        let mut c = Counter::new();
        let days = 8;
        for m in 0..days * DAY_MINUTES {
            for _ in 0..2 {
                c.add(&ev(m, "RunInstances", None));
            }
        }
        let start = 7 * DAY_MINUTES + 600;
        for m in start..start + 10 {
            for _ in 0..40 {
                c.add(&ev(m, "RunInstances", None));
            }
        }
        let w = c.detect(0, days * DAY_MINUTES * MINUTE_MS, &Params::default());
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].kind, InsightType::ApiCallRate);
        assert_eq!((w[0].start, w[0].end), (start, Some(start + 10)));
        assert_eq!(c.count(&w[0], start, start + 10), 420);
    }

    #[test]
    fn no_history_no_judgement_and_open_at_end() {
        let mut c = Counter::new();
        for m in 0..8 * DAY_MINUTES {
            c.add(&ev(m, "PutObjectAcl", None));
        }
        // A burst in the first week is not judged (no 7-day baseline yet) …
        for m in 100..110 {
            for _ in 0..50 {
                c.add(&ev(m, "PutObjectAcl", None));
            }
        }
        // … one that runs to the end of the data stays open.
        let end = 8 * DAY_MINUTES;
        for m in end - 5..end {
            for _ in 0..50 {
                c.add(&ev(m, "PutObjectAcl", Some("AccessDenied")));
            }
        }
        let w = c.detect(0, i64::MAX / 2, &Params::default());
        let kinds: Vec<_> = w.iter().map(|w| (w.kind, w.start, w.end)).collect();
        assert_eq!(
            kinds,
            [
                (InsightType::ApiCallRate, end - 5, None),
                (InsightType::ApiErrorRate, end - 5, None)
            ]
        );
    }

    #[test]
    fn read_calls_count_only_for_errors() {
        let mut e = ev(0, "DescribeInstances", None);
        e.read_only = true;
        assert!(!e.counts_for(InsightType::ApiCallRate));
        assert!(!e.counts_for(InsightType::ApiErrorRate));
        e.error_code = Some("Throttling");
        assert!(e.counts_for(InsightType::ApiErrorRate));
    }
}
