//! `trailhouse insights`: reads management events back from a lake (local or S3),
//! finds insights, and writes them as Detection Finding rows into the same lake (and,
//! if asked, as CloudTrail Insights files).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use trailhouse_insights::lake::{MANAGEMENT_PREFIXES, partition_of, read_events};
use trailhouse_insights::records::{file_key, gzip_file, records, shared_event_id};
use trailhouse_insights::{
    Attributor, Counter, DAY_MINUTES, Insight, InsightType, MINUTE_MS, Params,
};
use trailhouse_ocsf::finding::Producer;

use crate::quarantine::write_atomic;
use crate::store::{Lake, StoreError};

/// Why an insights run failed.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    /// Listing, reading or writing the lake.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A lake file that is not a readable Parquet file of the CloudTrail tables.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Encoding findings.
    #[error(transparent)]
    Encode(#[from] trailhouse_insights::findings::EncodeError),
    /// The analysis task failed (a bug).
    #[error("insights task: {0}")]
    Internal(String),
    /// Writing CloudTrail Insights files.
    #[error("writing {path}: {source}")]
    Records {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What to analyse.
#[derive(Debug, Clone, Default)]
pub struct InsightsOptions {
    /// First day whose minutes may open an insight (`YYYYMMDD`); default: the lake's
    /// first day (minutes without 7 days of history are never judged).
    pub from_day: Option<u32>,
    /// Last day analysed (`YYYYMMDD`); default: the lake's last day.
    pub to_day: Option<u32>,
    /// Detector settings.
    pub params: Params,
    /// Also write CloudTrail Insights files (`AWSLogs/…/CloudTrail-Insight/…`) here.
    pub records_dir: Option<PathBuf>,
}

/// What an insights run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InsightsSummary {
    /// Days analysed (`YYYYMMDD`), when the lake had management events.
    pub from_day: Option<u32>,
    /// Last day analysed.
    pub to_day: Option<u32>,
    /// Lake files read (both passes).
    pub files_read: u64,
    /// Management events counted.
    pub events: u64,
    /// Insights found.
    pub insights: u64,
    /// … of which API call rate.
    pub call_rate: u64,
    /// … of which API error rate.
    pub error_rate: u64,
    /// … still open at the end of the data.
    pub open: u64,
    /// Detection Finding rows written (Start and End rows).
    pub findings_written: u64,
    /// CloudTrail Insights files written.
    pub record_files_written: u64,
    /// Wall time.
    pub elapsed_secs: f64,
    /// The insights (CloudTrail's record format, Start/End per insight).
    #[serde(skip)]
    pub found: Vec<Insight>,
}

fn day_ms(day: u32) -> i64 {
    trailhouse_cloudtrail::time::day_start_ms(day).unwrap_or(0)
}

/// The day `n` days after `day` (negative: before).
fn add_days(day: u32, n: i64) -> u32 {
    trailhouse_cloudtrail::time::utc_day(day_ms(day) + n * DAY_MINUTES * MINUTE_MS)
}

/// Runs the analysis over `lake`.
pub async fn run_insights(
    lake: &Lake,
    opts: &InsightsOptions,
) -> Result<InsightsSummary, InsightsError> {
    let (lake, opts) = (lake.clone(), opts.clone());
    let rt = tokio::runtime::Handle::current();
    // Decoding Parquet and detecting are CPU work: a blocking thread does them and
    // waits on the runtime only for the lake's I/O.
    tokio::task::spawn_blocking(move || analyse(&lake, &opts, &rt))
        .await
        .map_err(|e| InsightsError::Internal(e.to_string()))?
}

/// Reads one lake file's events into `f`.
fn scan(
    lake: &Lake,
    rt: &tokio::runtime::Handle,
    (path, region, account): (&str, &str, &str),
    f: impl FnMut(&trailhouse_insights::Event<'_>),
) -> Result<(), InsightsError> {
    let bytes = rt.block_on(lake.get(path))?;
    read_events(bytes, account, region, f).map_err(|e| InsightsError::File {
        path: lake.location(path),
        message: e.to_string(),
    })?;
    Ok(())
}

fn analyse(
    lake: &Lake,
    opts: &InsightsOptions,
    rt: &tokio::runtime::Handle,
) -> Result<InsightsSummary, InsightsError> {
    let started = Instant::now();
    let mut summary = InsightsSummary::default();
    let mut files = Vec::new();
    for prefix in MANAGEMENT_PREFIXES {
        for path in rt.block_on(lake.list(prefix))? {
            if !path.ends_with(".parquet") {
                continue;
            }
            if let Some((region, account, day)) = partition_of(&path) {
                files.push((path, region, account, day));
            }
        }
    }
    let days: BTreeSet<u32> = files.iter().map(|f| f.3).collect();
    let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        return Ok(summary);
    };
    let from = opts.from_day.unwrap_or(first).max(first);
    let to = opts.to_day.unwrap_or(last).min(last);
    summary.from_day = Some(from);
    summary.to_day = Some(to);
    if from > to {
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    // The baseline reaches `baseline_days` before the first judged minute.
    let read_from = add_days(from, -opts.params.baseline_days);
    files.retain(|f| f.3 >= read_from && f.3 <= to);

    let mut counter = Counter::new();
    for (path, region, account, _) in &files {
        scan(lake, rt, (path, region, account), |e| counter.add(e))?;
        summary.files_read += 1;
    }
    summary.events = counter.events();
    let (from_ms, to_ms) = (day_ms(from), day_ms(add_days(to, 1)));
    let windows = counter.detect(from_ms, to_ms, &opts.params);
    let mut attributor = Attributor::new(&counter, windows, &opts.params);
    for (path, region, account, day) in &files {
        if attributor.wants(account, region, day_ms(*day), day_ms(add_days(*day, 1))) {
            scan(lake, rt, (path, region, account), |e| attributor.add(e))?;
            summary.files_read += 1;
        }
    }
    let found = attributor.finish();

    for insight in &found {
        summary.insights += 1;
        match insight.kind {
            InsightType::ApiCallRate => summary.call_rate += 1,
            InsightType::ApiErrorRate => summary.error_rate += 1,
        }
        summary.open += u64::from(insight.end_ms.is_none());
        let recs = records(insight);
        for file in trailhouse_insights::findings::encode(&recs, Producer::Trailhouse)? {
            // Named by eventID: a rerun rewrites the same file (an insight that was
            // open may have closed since, changing its Start statistics).
            rt.block_on(lake.overwrite(&file.path, file.bytes))?;
            summary.findings_written += 1;
        }
        if let Some(dir) = &opts.records_dir {
            let g = &insight.group;
            let unique = shared_event_id(insight).replace('-', "");
            let path = dir.join(file_key(
                &g.account,
                &g.region,
                insight.start_ms,
                &unique[..16],
            ));
            let bytes = gzip_file(&recs).map_err(|source| InsightsError::Records {
                path: path.clone(),
                source,
            })?;
            write_atomic(&path, &bytes).map_err(|source| InsightsError::Records {
                path: path.clone(),
                source,
            })?;
            summary.record_files_written += 1;
        }
    }
    summary.found = found;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Ingests one CloudTrail Insights file delivered by a trail into the findings
/// table. Returns the rows written, or the reason to quarantine the file.
pub async fn ingest_insight_file(
    lake: &Lake,
    bytes: bytes::Bytes,
) -> Result<Result<u64, String>, StoreError> {
    // Gunzip, JSON and Parquet encoding: off the async reactor.
    let mapped =
        tokio::task::spawn_blocking(move || trailhouse_insights::findings::ingest_file(&bytes))
            .await;
    let files = match mapped {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Ok(Err(e.to_string())),
        Err(e) => return Ok(Err(format!("mapping task failed: {e}"))),
    };
    let n = files.len() as u64;
    for f in files {
        lake.overwrite(&f.path, f.bytes).await?;
    }
    Ok(Ok(n))
}
