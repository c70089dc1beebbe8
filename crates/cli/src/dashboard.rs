//! `trailhouse dashboard`: the lake's insights and activity, queried with the sample
//! queries of `schemas/queries/`, drawn by `trailhouse-dashboard`.

use anyhow::{Context, Result};
use serde_json::Value;
use trailhouse_dashboard::{Count, Dashboard, InsightEvent, Series};
use trailhouse_query::Lake;

/// The findings table.
const FINDINGS: &str = "cloud_trail_insights_detection_finding";
/// The union view of the CloudTrail classes.
const ALL: &str = "cloudtrail";

const INSIGHT_TYPES: &str = include_str!("../../../schemas/queries/dashboard_insight_types.sql");
const BY_DATE: &str = include_str!("../../../schemas/queries/dashboard_insights_by_date.sql");
const CALL_RATE: &str =
    include_str!("../../../schemas/queries/dashboard_call_rate_insights_by_source.sql");
const ERROR_RATE: &str =
    include_str!("../../../schemas/queries/dashboard_error_rate_insights_by_source.sql");
const TOP_USERS: &str =
    include_str!("../../../schemas/queries/dashboard_insights_by_top_users.sql");

/// Rows of a query as JSON objects.
async fn rows(lake: &Lake, sql: &str) -> Result<Vec<serde_json::Map<String, Value>>> {
    let batches = lake
        .sql(sql)
        .await
        .with_context(|| format!("query failed: {}", sql.trim()))?;
    let mut w = arrow_json::ArrayWriter::new(Vec::new());
    for b in &batches {
        w.write(b)?;
    }
    w.finish()?;
    let bytes = w.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

fn text(r: &serde_json::Map<String, Value>, k: &str) -> String {
    match r.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn num(r: &serde_json::Map<String, Value>, k: &str) -> u64 {
    match r.get(k) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn counts(rows: &[serde_json::Map<String, Value>], label: &str, count: &str) -> Vec<Count> {
    rows.iter()
        .map(|r| Count {
            label: text(r, label),
            count: num(r, count),
        })
        .collect()
}

/// Groups (day, series, count) rows into series.
fn series(
    rows: &[serde_json::Map<String, Value>],
    day: &str,
    name: &str,
    count: &str,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in rows {
        let n = text(r, name);
        let point = (text(r, day), num(r, count));
        match out.iter_mut().find(|s| s.name == n) {
            Some(s) => s.points.push(point),
            None => out.push(Series {
                name: n,
                points: vec![point],
            }),
        }
    }
    out
}

/// Restricts a sample query's table to the days shown.
fn scoped(sql: &str, table: &str, range: Option<(u32, u32)>) -> String {
    match range {
        None => sql.to_string(),
        Some((from, to)) => sql.replace(
            &format!("FROM {table}"),
            &format!(
                "FROM (SELECT * FROM {table} WHERE eventday BETWEEN '{from}' AND '{to}') AS {table}"
            ),
        ),
    }
}

/// Attributions of a CloudTrail Insights record: the top insight value of each.
fn top_attribution(record: &Value, attribute: &str) -> Option<String> {
    record
        .pointer("/insightDetails/insightContext/attributions")?
        .as_array()?
        .iter()
        .find(|a| a.get("attribute").and_then(Value::as_str) == Some(attribute))?
        .pointer("/insight/0/value")?
        .as_str()
        .map(str::to_string)
}

/// Queries the lake for every panel.
pub async fn build(
    lake: &Lake,
    name: &str,
    range: Option<(u32, u32)>,
    generated_at: String,
) -> Result<Dashboard> {
    let has = |t: &str| lake.tables().iter().any(|i| i.name == t);
    let mut d = Dashboard {
        title: "trailhouse — CloudTrail Insights".into(),
        lake: name.to_string(),
        generated_at,
        range: range.map(|(a, b)| (day_text(a), day_text(b))),
        ..Dashboard::default()
    };
    if has(FINDINGS) {
        let q = |sql: &str| scoped(sql, FINDINGS, range);
        d.insight_types = counts(
            &rows(lake, &q(INSIGHT_TYPES)).await?,
            "insight_type",
            "insights",
        );
        d.insights_by_date = series(
            &rows(lake, &q(BY_DATE)).await?,
            "day",
            "insight_type",
            "insights",
        );
        d.call_rate_by_source = counts(
            &rows(lake, &q(CALL_RATE)).await?,
            "event_source",
            "insights",
        );
        d.error_rate_by_source = counts(
            &rows(lake, &q(ERROR_RATE)).await?,
            "event_source",
            "insights",
        );
        d.top_users = counts(&rows(lake, &q(TOP_USERS)).await?, "user_arn", "insights");
        // The events list reads the delivered record itself for the attributions.
        let events = rows(
            lake,
            &q(&format!(
                "SELECT raw_data, accountid, region FROM {FINDINGS} ORDER BY time DESC, metadata.uid LIMIT 500"
            )),
        )
        .await?;
        for r in events {
            let Ok(rec) = serde_json::from_str::<Value>(&text(&r, "raw_data")) else {
                continue;
            };
            let s = |p: &str| {
                rec.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let f = |p: &str| rec.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
            let state = s("/insightDetails/state");
            d.insight_events.push(InsightEvent {
                time: s("/eventTime"),
                duration_minutes: (state == "End")
                    .then(|| {
                        rec.pointer("/insightDetails/insightContext/statistics/insightDuration")
                    })
                    .flatten()
                    .and_then(Value::as_u64),
                state,
                insight_type: s("/insightDetails/insightType"),
                event_source: s("/insightDetails/eventSource"),
                event_name: s("/insightDetails/eventName"),
                account: text(&r, "accountid"),
                region: text(&r, "region"),
                baseline_average: f("/insightDetails/insightContext/statistics/baseline/average"),
                insight_average: f("/insightDetails/insightContext/statistics/insight/average"),
                top_user: top_attribution(&rec, "userIdentityArn"),
                top_user_agent: top_attribution(&rec, "userAgent"),
                top_error_code: top_attribution(&rec, "errorCode"),
            });
        }
    }
    if has(ALL) {
        let q = |sql: String| scoped(&sql, ALL, range);
        let by_day = rows(
            lake,
            &q(format!(
                "SELECT to_char(time_dt, '%Y-%m-%d') AS day, class_name, count(*) AS events FROM {ALL} \
                 GROUP BY to_char(time_dt, '%Y-%m-%d'), class_name ORDER BY day, class_name"
            )),
        )
        .await?;
        d.events_by_day = series(&by_day, "day", "class_name", "events");
        let errors = rows(
            lake,
            &q(format!(
                "SELECT to_char(time_dt, '%Y-%m-%d') AS day, count(*) AS errors FROM {ALL} \
                 WHERE api.response.error IS NOT NULL GROUP BY to_char(time_dt, '%Y-%m-%d') ORDER BY day"
            )),
        )
        .await?;
        d.errors_by_day = errors
            .iter()
            .map(|r| (text(r, "day"), num(r, "errors")))
            .collect();
        let principals = rows(
            lake,
            &q(format!(
                "SELECT actor.\"user\".uid AS principal, count(*) AS events FROM {ALL} \
                 WHERE actor.\"user\".uid IS NOT NULL GROUP BY actor.\"user\".uid \
                 ORDER BY events DESC, principal LIMIT 10"
            )),
        )
        .await?;
        d.top_principals = counts(&principals, "principal", "events");
    }
    Ok(d)
}

fn day_text(d: u32) -> String {
    format!("{:04}-{:02}-{:02}", d / 10_000, d / 100 % 100, d % 100)
}
