//! `convert`: CloudTrail files to OCSF JSON Lines, for inspection, piping into other
//! tools, and validation against the official OCSF schema. Same mapping as the lake.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use trailhouse_ocsf::json::write_json_lines;

use crate::process::{ObjectEvent, ObjectOutcome, ObjectProcessor, Part};
use crate::replay::{ReplayError, discover};

/// Counts of a conversion.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Log objects read.
    pub objects_read: u64,
    /// Objects skipped (digest, Insights).
    pub objects_skipped: u64,
    /// Objects that failed part-way.
    pub objects_failed: u64,
    /// Rows written as JSON.
    pub rows: u64,
    /// Records that could not be mapped (reported on the log).
    pub records_rejected: u64,
}

/// Converts every CloudTrail file under `inputs` to OCSF JSON lines on `out`.
///
/// # Errors
/// Unlistable inputs, or a failing `out`.
pub fn convert_local(
    inputs: &[PathBuf],
    out: &mut dyn Write,
) -> Result<ConvertSummary, ReplayError> {
    let mut summary = ConvertSummary::default();
    let mut processor = ObjectProcessor::default();
    let mut write_err: Option<std::io::Error> = None;
    for obj in discover(inputs, None)? {
        let file = File::open(&obj.path).map_err(|source| ReplayError::Input {
            path: obj.path.clone(),
            source,
        })?;
        let outcome = processor.process(&obj.key, file, &mut |ev| match ev {
            ObjectEvent::Rows(parts) => {
                for Part { key, rows, .. } in parts {
                    summary.rows += rows.len() as u64;
                    if write_err.is_none() {
                        let written = rows
                            .into_batch(&key)
                            .map_err(std::io::Error::other)
                            .and_then(|b| {
                                write_json_lines(&mut *out, &b).map_err(std::io::Error::other)
                            });
                        write_err = written.err();
                    }
                }
            }
            ObjectEvent::BadRecord { index, reason, .. } => {
                summary.records_rejected += 1;
                tracing::warn!(object = %obj.key, record = index, %reason, "record not mapped");
            }
            // Only with `carry_rows`, which this processor keeps off.
            ObjectEvent::Carried(_) | ObjectEvent::Released { .. } => {}
        });
        if let Some(source) = write_err.take() {
            return Err(ReplayError::Lake {
                path: PathBuf::from("<output>"),
                source,
            });
        }
        match outcome {
            ObjectOutcome::Complete { .. } => summary.objects_read += 1,
            ObjectOutcome::Skipped(_) => summary.objects_skipped += 1,
            ObjectOutcome::Failed { reason, .. } => {
                summary.objects_read += 1;
                summary.objects_failed += 1;
                tracing::warn!(object = %obj.key, %reason, "object not read to its end");
            }
        }
    }
    Ok(summary)
}
