//! CloudTrail-Insights-style anomaly detection over the lake's management events.
//!
//! Two passes over the events: [`Counter`] counts per-minute series and finds the
//! insight windows ([`detect`]); [`Attributor`] then tallies who and what drove each
//! window and its baseline (top user ARNs, user agents and error codes). The result,
//! [`Insight`], is written as CloudTrail's own Insights records ([`records`]) and as
//! OCSF Detection Finding rows ([`findings`]).
//!
//! Pure and synchronous like the other core crates: events in, records and Parquet
//! bytes out; reading the lake and storing files is the caller's job.

pub mod detect;
pub mod findings;
pub mod lake;
pub mod records;
pub mod synth;

use std::collections::HashMap;

pub use detect::{Counter, DAY_MINUTES, Event, Group, InsightType, MINUTE_MS, Params, Window};

/// Values listed per attribution (CloudTrail lists at most five).
pub const TOP_VALUES: usize = 5;

/// The attributes CloudTrail attributes an insight to, in its order.
pub const ATTRIBUTES: [&str; 3] = ["userIdentityArn", "userAgent", "errorCode"];

/// One insight: a window with its statistics and attributions.
#[derive(Debug, Clone, PartialEq)]
pub struct Insight {
    /// The API and trail.
    pub group: Group,
    /// Call rate or error rate.
    pub kind: InsightType,
    /// First minute of the insight, epoch ms.
    pub start_ms: i64,
    /// End (the minute after the last elevated one), epoch ms; `None` while open.
    pub end_ms: Option<i64>,
    /// Minutes from start to end (or to the end of the data while open).
    pub insight_duration: i64,
    /// Minutes of baseline (the `baseline_days` before the start).
    pub baseline_duration: i64,
    /// Events per minute in the insight window.
    pub insight_average: f64,
    /// Events per minute in the baseline window.
    pub baseline_average: f64,
    /// Per attribute of [`ATTRIBUTES`]: top values in the insight window and in the
    /// baseline, each with its events per minute.
    pub attributions: Vec<Attribution>,
}

/// Top contributors of one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// `userIdentityArn`, `userAgent` or `errorCode`.
    pub attribute: &'static str,
    /// (value, events per minute) in the insight window, largest first.
    pub insight: Vec<(String, f64)>,
    /// (value, events per minute) in the baseline, largest first.
    pub baseline: Vec<(String, f64)>,
}

/// Second pass: tallies the attributes of the events inside each window and its
/// baseline.
pub struct Attributor<'c> {
    counter: &'c Counter,
    windows: Vec<Window>,
    baseline_minutes: i64,
    /// (group, kind) → windows of that series.
    by_series: HashMap<(usize, InsightType), Vec<usize>>,
    /// Per window, per attribute: (insight, baseline) value counts.
    tallies: Vec<[[HashMap<String, u64>; 2]; 3]>,
    key: String,
}

impl<'c> Attributor<'c> {
    /// Prepares the second pass for `windows` found by `counter`.
    pub fn new(counter: &'c Counter, windows: Vec<Window>, params: &Params) -> Self {
        let mut by_series: HashMap<(usize, InsightType), Vec<usize>> = HashMap::new();
        for (i, w) in windows.iter().enumerate() {
            by_series.entry((w.group, w.kind)).or_default().push(i);
        }
        let tallies = windows.iter().map(|_| Default::default()).collect();
        Attributor {
            counter,
            windows,
            baseline_minutes: params.baseline_days * DAY_MINUTES,
            by_series,
            tallies,
            key: String::new(),
        }
    }

    /// Whether any window needs events of this (account, region) between these
    /// days: lets the caller skip whole partitions.
    pub fn wants(&self, account: &str, region: &str, from_ms: i64, to_ms: i64) -> bool {
        self.windows.iter().any(|w| {
            let g = self.counter.group(w);
            let (lo, hi) = self.span(w);
            g.account == account
                && g.region == region
                && lo * MINUTE_MS < to_ms
                && hi * MINUTE_MS > from_ms
        })
    }

    /// Minutes `[baseline start, window end)` of a window.
    fn span(&self, w: &Window) -> (i64, i64) {
        (w.start - self.baseline_minutes, w.last + 1)
    }

    /// Tallies one event.
    pub fn add(&mut self, e: &Event<'_>) {
        if self.windows.is_empty() {
            return;
        }
        let Some(g) = self.counter.find_group(e, &mut self.key) else {
            return;
        };
        let minute = e.time_ms.div_euclid(MINUTE_MS);
        for kind in InsightType::ALL {
            if !e.counts_for(kind) {
                continue;
            }
            let Some(list) = self.by_series.get(&(g, kind)) else {
                continue;
            };
            for &i in list {
                let w = &self.windows[i];
                let side = if minute >= w.start && minute <= w.last {
                    0
                } else if minute < w.start && minute >= w.start - self.baseline_minutes {
                    1
                } else {
                    continue;
                };
                let values = [e.user_arn, e.user_agent, e.error_code];
                for (a, v) in values.into_iter().enumerate() {
                    // CloudTrail writes a missing value (a call without errorCode)
                    // as the string "null".
                    let v = v.unwrap_or("null");
                    let t = &mut self.tallies[i][a][side];
                    match t.get_mut(v) {
                        Some(n) => *n += 1,
                        None => {
                            t.insert(v.to_string(), 1);
                        }
                    }
                }
            }
        }
    }

    /// The insights, in start order.
    pub fn finish(self) -> Vec<Insight> {
        let mut out = Vec::with_capacity(self.windows.len());
        for (w, tallies) in self.windows.iter().zip(self.tallies) {
            let insight_duration = (w.last + 1 - w.start).max(1);
            let in_window = self.counter.count(w, w.start, w.last + 1);
            let in_baseline = self
                .counter
                .count(w, w.start - self.baseline_minutes, w.start);
            let attributions = ATTRIBUTES
                .into_iter()
                .zip(tallies)
                .map(|(attribute, [ins, base])| Attribution {
                    attribute,
                    insight: top(ins, insight_duration),
                    baseline: top(base, self.baseline_minutes),
                })
                .collect();
            out.push(Insight {
                group: self.counter.group(w).clone(),
                kind: w.kind,
                start_ms: w.start * MINUTE_MS,
                end_ms: w.end.map(|e| e * MINUTE_MS),
                insight_duration,
                baseline_duration: self.baseline_minutes,
                insight_average: in_window as f64 / insight_duration as f64,
                baseline_average: in_baseline as f64 / self.baseline_minutes as f64,
                attributions,
            });
        }
        out
    }
}

fn top(counts: HashMap<String, u64>, minutes: i64) -> Vec<(String, f64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP_VALUES);
    v.into_iter()
        .map(|(value, n)| (value, n as f64 / minutes.max(1) as f64))
        .collect()
}
