//! The patched zstd that parquet-rs is built with (`vendor/zstd/PATCHED.md`): a dropped
//! compressor leaves its context, reset, to the next one, and a decompressor makes its
//! context only when it first decompresses. Reuse must change no output.

use std::sync::{Mutex, MutexGuard, PoisonError};

use trailhouse_lake::{Layout, WriteOptions, encode_partition};
use zstd::bulk::{Compressor, Decompressor, POOL_CONTEXTS, pooled_contexts};

mod common;
use common::{batch, key, record};

/// The pool is the process's; these tests count it, so they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// About 1 KB of CloudTrail JSON: compressible, and as short as most pages of a
/// partition's file, whose contexts the pool keeps.
fn json() -> Vec<u8> {
    let time = "2024-01-02T10:00:00Z";
    let ids = ["ev-0", "ev-1"];
    ids.map(|id| record(id, time)).join("\n").into_bytes()
}

/// Bytes zstd cannot shrink, so that its tables grow to their full size.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What zstd's one-shot function, which makes a context of its own, writes.
fn one_shot(data: &[u8], level: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    zstd::zstd_safe::compress(&mut out, data, level).unwrap();
    out
}

/// Takes every pooled context, so that the pool is empty while they are held.
fn drain() -> Vec<Compressor<'static>> {
    let held: Vec<_> = (0..pooled_contexts())
        .map(|_| Compressor::new(3).unwrap())
        .collect();
    assert_eq!(pooled_contexts(), 0);
    held
}

#[test]
fn a_reused_context_compresses_as_a_new_one() {
    let _turn = serial();
    let held = drain();
    let data = json();
    let dictionary = &data[..256];
    // A compressor with another level and a dictionary leaves its context behind...
    let mut first = Compressor::with_dictionary(3, dictionary).unwrap();
    let with_dictionary = first.compress(&data).unwrap();
    drop(first);
    assert_eq!(pooled_contexts(), 1);
    // ...and the next one takes it, with its own level and no dictionary.
    let mut second = Compressor::new(1).unwrap();
    assert_eq!(pooled_contexts(), 0);
    let out = second.compress(&data).unwrap();
    assert_eq!(out, one_shot(&data, 1));
    assert_ne!(out, one_shot(&data, 3));
    assert_eq!(
        Decompressor::new()
            .unwrap()
            .decompress(&out, data.len())
            .unwrap(),
        data
    );
    // The dictionary's frame still needs the dictionary.
    assert!(
        Decompressor::new()
            .unwrap()
            .decompress(&with_dictionary, data.len())
            .is_err()
    );
    let mut with = Decompressor::with_dictionary(dictionary).unwrap();
    assert_eq!(with.decompress(&with_dictionary, data.len()).unwrap(), data);
    drop(held);
}

#[test]
fn the_pool_keeps_small_contexts_up_to_its_count() {
    let _turn = serial();
    let held = drain();
    let data = json();
    // A context whose tables grew for a large input is freed, not kept.
    let mut large = Compressor::new(3).unwrap();
    large.compress(&noise(2 << 20)).unwrap();
    drop(large);
    assert_eq!(pooled_contexts(), 0);
    // Small ones are kept, up to the count.
    let many: Vec<_> = (0..POOL_CONTEXTS + 8)
        .map(|_| {
            let mut c = Compressor::new(3).unwrap();
            c.compress(&data).unwrap();
            c
        })
        .collect();
    drop(many);
    assert_eq!(pooled_contexts(), POOL_CONTEXTS);
    drop(held);
}

#[test]
fn parquet_files_leave_their_contexts_for_the_next() {
    let _turn = serial();
    let held = drain();
    let records: Vec<_> = (0..64)
        .map(|i| record(&format!("ev-{i}"), "2024-01-02T10:00:00Z"))
        .collect();
    let (batch, key) = (batch(&records), key());
    let write = || {
        encode_partition(
            &key,
            Layout::Ext,
            std::slice::from_ref(&batch),
            &WriteOptions::default(),
        )
    };
    let first = write().unwrap();
    // parquet-rs's column writers compress through the patched crate.
    let pooled = pooled_contexts();
    assert!(pooled > 0);
    // The next file takes them again, and comes out the same.
    let second = write().unwrap();
    assert_eq!(pooled_contexts(), pooled);
    let bytes = |p: &trailhouse_lake::EncodedPartition| {
        p.files.iter().map(|f| f.bytes.clone()).collect::<Vec<_>>()
    };
    assert_eq!(bytes(&first), bytes(&second));
    drop(held);
}
