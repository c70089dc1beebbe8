//! One record's bytes into the mapper, under three object contexts (none, plausible,
//! hostile), then `finish()` and, for each mapped row, `encode_partition`.
//!
//! Invariants: no panic; the record scanner takes only what serde_json takes, and
//! reads it the same (`Record::check_scan_against_serde`); a refused record appends
//! nothing; `finish()` succeeds with exactly the rows appended and the OCSF schema;
//! `unmapped` keys are unique per row; each row agrees with its RowInfo, whose
//! partition key is valid; each partition encodes to Parquet that reads back with
//! every row.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trailhouse_cloudtrail::Record::check_scan_against_serde(data);
    trailhouse_fuzz::map_and_check(data);
});
