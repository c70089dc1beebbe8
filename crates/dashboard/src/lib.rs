//! The CloudTrail Insights dashboards as one self-contained HTML page: data in, HTML out.
//!
//! [`render`] is pure and deterministic (the same [`Dashboard`] gives the same bytes). The page
//! has no script at all, loads nothing (a Content-Security-Policy forbids every network load),
//! draws its charts as inline SVG, and escapes every string of the data (see [`text`]).
//!
//! Each panel is a `<section data-panel="…">` (`insight-types`, `insights-by-date`,
//! `call-rate-by-source`, `error-rate-by-source`, `top-users`, `insight-events`,
//! `activity-overview`), and every drawn datum carries `data-*` attributes with the exact
//! (clipped, see [`text::clip`]) values, so that a test can read back what is shown:
//! - count charts (`data-chart` = the panel name, or `top-principals`): one element per entry
//!   with `data-label` and `data-value` (the donut's legend items also `data-percent`);
//!   entries past a chart's cap are summed in one element with `data-other` = their number
//!   (donut) or a note with `data-hidden` and `data-hidden-value` (bar charts);
//! - per-day charts (`insights-by-date`, `events-by-day`, `errors-by-day`): one `<g data-day>`
//!   per axis day with `data-total`, holding one element per non-zero value with
//!   `data-series`, `data-day`, `data-value` (the errors line has one point per axis day);
//! - the events table: one `<tr data-row>` per event, one `<td data-field>` per field with
//!   `data-value` (absent for a missing optional field).
//!
//! An empty panel says so in an element with `data-empty`.

use serde::{Deserialize, Serialize};

mod charts;
mod days;
pub mod text;

pub use days::MAX_DAYS;

/// Most bars of one "by event source" or "top principals" chart; the rest are summed in a note.
pub const MAX_BARS: usize = 15;
/// Most users of the "top users" chart.
pub const MAX_TOP_USERS: usize = 10;
/// Most slices of the insight-types donut; past it the smallest are one "other" slice.
pub const MAX_SLICES: usize = 8;
/// Most series of one per-day chart (first ones given); the rest are left out with a note.
pub const MAX_SERIES: usize = 8;
/// Most rows of the insight events table (newest first); the rest are counted in a note.
pub const MAX_ROWS: usize = 500;

/// Everything the page shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dashboard {
    /// Page title, e.g. "trailhouse — CloudTrail Insights".
    pub title: String,
    /// Where the data came from (a lake path or `s3://` URL), shown in the header.
    pub lake: String,
    /// RFC 3339 time of generation, given by the caller (keeps the output deterministic).
    pub generated_at: String,
    /// First and last day shown (`YYYY-MM-DD`, or RFC 3339), if the data was filtered.
    pub range: Option<(String, String)>,
    /// Insight events per insight type (`ApiCallRateInsight`, `ApiErrorRateInsight`).
    pub insight_types: Vec<Count>,
    /// One series per insight type; points are (day `YYYY-MM-DD`, insight events).
    pub insights_by_date: Vec<Series>,
    /// API call rate insights per `eventSource`.
    pub call_rate_by_source: Vec<Count>,
    /// API error rate insights per `eventSource`.
    pub error_rate_by_source: Vec<Count>,
    /// Insights per user ARN (at most [`MAX_TOP_USERS`] are shown).
    pub top_users: Vec<Count>,
    /// The insight events list.
    pub insight_events: Vec<InsightEvent>,
    /// One series per OCSF class (API Activity, Authentication, Account Change); points are
    /// (day, events).
    pub events_by_day: Vec<Series>,
    /// (day, events with an error).
    pub errors_by_day: Vec<(String, u64)>,
    /// Events per principal.
    pub top_principals: Vec<Count>,
}

/// One labelled count. Entries with the same label are added up on the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub label: String,
    pub count: u64,
}

/// A named series of (day `YYYY-MM-DD`, count) points. Series with the same name, and points
/// of one series on the same day, are added up on the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(String, u64)>,
}

/// One CloudTrail Insights event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightEvent {
    /// RFC 3339 event time.
    pub time: String,
    /// `Start` or `End`.
    pub state: String,
    pub insight_type: String,
    pub event_source: String,
    pub event_name: String,
    pub account: String,
    pub region: String,
    pub baseline_average: f64,
    pub insight_average: f64,
    pub duration_minutes: Option<u64>,
    pub top_user: Option<String>,
    pub top_user_agent: Option<String>,
    pub top_error_code: Option<String>,
}

impl Count {
    pub fn new(label: impl Into<String>, count: u64) -> Self {
        Count {
            label: label.into(),
            count,
        }
    }
}

/// The whole page. Pure, deterministic, never panics.
pub fn render(d: &Dashboard) -> String {
    charts::page(d)
}
