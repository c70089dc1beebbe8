//! OCSF rows as JSON: nulls left out (OCSF forbids null members), `time_dt` as RFC 3339
//! UTC, `unmapped` as an object, and the table-only columns (`accountid`, `region`,
//! `asl_version`) dropped, so each line is an OCSF 1.1.0 event.

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_json::writer::{JsonArray, LineDelimited, WriterBuilder};
use arrow_schema::ArrowError;

use crate::schema::TABLE_ONLY_COLUMNS;

fn ocsf_columns(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let keep: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !TABLE_ONLY_COLUMNS.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    batch.project(&keep)
}

/// Writes each row of `batch` as one OCSF JSON object per line.
///
/// # Errors
/// I/O errors of `out`, or an array type the JSON writer cannot render.
pub fn write_json_lines<W: Write>(out: W, batch: &RecordBatch) -> Result<(), ArrowError> {
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(false)
        .build::<_, LineDelimited>(out);
    w.write(&ocsf_columns(batch)?)?;
    w.finish()
}

/// Renders `batch` as a JSON array of OCSF objects.
///
/// # Errors
/// As [`write_json_lines`].
pub fn to_json_array(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut buf = Vec::new();
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(false)
        .build::<_, JsonArray>(&mut buf);
    w.write(&ocsf_columns(batch)?)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}
