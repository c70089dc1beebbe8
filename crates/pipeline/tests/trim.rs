//! Giving memory back near the bound also frees the zstd contexts kept for reuse
//! (`vendor/zstd/PATCHED.md`). A test binary of its own: the pool is the process's.

use trailhouse_pipeline::malloc::trim_above;
use zstd::bulk::{Compressor, pooled_contexts};

#[test]
fn trimming_frees_the_pooled_zstd_contexts() {
    let compressors: Vec<_> = (0..8)
        .map(|_| {
            let mut c = Compressor::new(3).unwrap();
            c.compress(b"a short page, as most column chunks are")
                .unwrap();
            c
        })
        .collect();
    drop(compressors);
    assert_eq!(pooled_contexts(), 8);
    // Under its budget the process trims nothing, and the pool stays.
    assert!(!trim_above(u64::MAX));
    assert_eq!(pooled_contexts(), 8);
    // Over it, the pool goes too.
    assert!(trim_above(0));
    assert_eq!(pooled_contexts(), 0);
}
