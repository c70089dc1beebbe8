//! Writing query results: an aligned table, CSV, JSON Lines or a JSON array.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::json::writer::{JsonArray, JsonFormat, LineDelimited, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::QueryError;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// An aligned text table (Arrow's pretty printer).
    #[default]
    Table,
    /// CSV with a header row; nested values (structs, lists, maps) as text.
    Csv,
    /// JSON Lines: one object per row, every column present (`null` when null).
    Json,
    /// One JSON array of row objects.
    JsonArray,
}

impl OutputFormat {
    /// Parses `table`, `csv`, `json` (JSON Lines, also `jsonl`, `ndjson`) or
    /// `json-array`.
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Some(OutputFormat::Table),
            "csv" => Some(OutputFormat::Csv),
            "json" | "jsonl" | "ndjson" => Some(OutputFormat::Json),
            "json-array" | "json_array" => Some(OutputFormat::JsonArray),
            _ => None,
        }
    }
}

/// Writes `batches` to `out` in `format`.
///
/// # Errors
/// Writing fails, or Arrow cannot render a column type.
pub fn write_batches<W: Write>(
    batches: &[RecordBatch],
    format: OutputFormat,
    out: &mut W,
) -> Result<(), QueryError> {
    match format {
        OutputFormat::Table => {
            writeln!(out, "{}", pretty_format_batches(batches)?)?;
        }
        OutputFormat::Csv => {
            let mut w = CsvWriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                return Ok(());
            }
            for b in batches {
                w.write(&flatten_nested(b)?)?;
            }
        }
        OutputFormat::Json => write_json::<LineDelimited, W>(batches, out)?,
        OutputFormat::JsonArray => {
            write_json::<JsonArray, W>(batches, out)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn write_json<F: JsonFormat, W: Write>(
    batches: &[RecordBatch],
    out: &mut W,
) -> Result<(), QueryError> {
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, F>(&mut *out);
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    Ok(())
}

/// CSV cannot hold structs, lists or maps: they become text columns, rendered as
/// the table format renders them.
fn flatten_nested(batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
    let nested = |dt: &DataType| {
        matches!(
            dt,
            DataType::Struct(_)
                | DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(_, _)
                | DataType::ListView(_)
                | DataType::LargeListView(_)
                | DataType::Map(_, _)
                | DataType::Union(_, _)
        )
    };
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let opts = FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if !nested(f.data_type()) {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
            continue;
        }
        let fmt = ArrayFormatter::try_new(c.as_ref(), &opts)?;
        let mut b = StringBuilder::with_capacity(c.len(), c.len() * 16);
        for i in 0..c.len() {
            if c.is_null(i) {
                b.append_null();
            } else {
                b.append_value(fmt.value(i).to_string());
            }
        }
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(Arc::new(b.finish()));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
