//! One record's bytes into the mapper, under three object contexts (none, plausible,
//! hostile), then `finish()` and, for each mapped row, `encode_partition`.
//!
//! Invariants: no panic; a refused record appends nothing; `finish()` succeeds with
//! exactly the rows appended and the OCSF schema; `unmapped` keys are unique per
//! row; each row agrees with its RowInfo, whose partition key is valid; each
//! partition encodes to Parquet that reads back with every row.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trailhouse_fuzz::map_and_check(data);
});
