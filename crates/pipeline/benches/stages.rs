//! The pipeline's stages around the mapper (`crates/ocsf/benches/mapper.rs`), on
//! realistic generated records: gunzip + the streaming record reader (the floor's
//! first half), one whole object through `ObjectProcessor` (gunzip, read, map,
//! split by partition), the same records as many small objects, and the Parquet
//! encode of a partition (sort, dedup, zstd), large and of 8 rows.

// The CLI's allocator and its settings, so that speed and peak RSS here are the CLI's.
trailhouse_pipeline::use_jemalloc!();

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailhouse_cloudtrail::{LogReader, Record};
use trailhouse_corpus::{CorpusSpec, records};
use trailhouse_lake::{Layout, PartitionKey, WriteOptions, encode_partition};
use trailhouse_ocsf::{ObjectContext, OcsfBuilder, OcsfClass, Source};
use trailhouse_pipeline::{ObjectEvent, ObjectProcessor};

const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/09/\
                   111122223333_CloudTrail_us-east-1_20240309T0000Z_bench.json.gz";

fn corpus() -> Vec<String> {
    let spec = CorpusSpec {
        seed: 42,
        accounts: 5,
        days: 2,
        files: 40,
        records_per_file: 100,
        large_payloads: true,
        ..CorpusSpec::default()
    };
    records(&spec).map(|r| r.json).collect()
}

/// One CloudTrail log object holding every record, gzipped as CloudTrail does
/// (default level).
fn log_object(recs: &[String]) -> (Vec<u8>, usize) {
    let mut json = String::from("{\"Records\":[");
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(r);
    }
    json.push_str("]}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.as_bytes()).expect("gzip in memory");
    (gz.finish().expect("gzip in memory"), json.len())
}

fn bench(c: &mut Criterion) {
    let recs = corpus();
    let (object, json_bytes) = log_object(&recs);
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(json_bytes as u64));
    g.sample_size(20);

    g.bench_function("gunzip_and_read_records", |b| {
        b.iter(|| {
            let (mut reader, _) =
                LogReader::open(std::io::Cursor::new(object.clone())).expect("gzip header");
            let mut n = 0usize;
            while let Some(rec) = reader.next_record().expect("valid object") {
                n += rec.len();
            }
            n
        })
    });

    // The same records and parses in two passes: the reader's extent, then the parse.
    g.bench_function("gunzip_read_then_parse_records", |b| {
        b.iter(|| {
            let (mut reader, _) =
                LogReader::open(std::io::Cursor::new(object.clone())).expect("gzip header");
            let mut n = 0usize;
            while let Some(rec) = reader.next_record().expect("valid object") {
                n += Record::parse(rec).map_or(0, |r| r.members().count());
            }
            n
        })
    });

    // What `process_object` reads with: each record parsed where it lies, in one pass.
    g.bench_function("gunzip_read_and_parse_records", |b| {
        b.iter(|| {
            let (mut reader, _) =
                LogReader::open(std::io::Cursor::new(object.clone())).expect("gzip header");
            let mut n = 0usize;
            while let Some(fields) = reader
                .next_record_with(|_, rec| rec.map_or(0, |r| r.members().count()))
                .expect("valid object")
            {
                n += fields;
            }
            n
        })
    });

    g.bench_function("process_object", |b| {
        let mut processor = ObjectProcessor::with_chunk_rows(4096);
        b.iter(|| {
            let mut rows = 0usize;
            processor.process(KEY, std::io::Cursor::new(object.clone()), &mut |ev| {
                if let ObjectEvent::Rows(batches) = ev {
                    rows += batches.iter().map(|p| p.rows.len()).sum::<usize>();
                }
            });
            rows
        })
    });

    // The same records as objects of 8 records each, as a quiet account's trail files
    // hold: rows handed out per object (as `convert` does, and every path did before
    // carrying), and carried across objects (as replay and the workers do).
    let small: Vec<Vec<u8>> = recs.chunks(8).map(|c| log_object(c).0).collect();
    for carry in [false, true] {
        let name = if carry {
            "process_small_objects_carried"
        } else {
            "process_small_objects"
        };
        g.bench_function(name, |b| {
            let mut processor = ObjectProcessor::with_chunk_rows(4096);
            processor.carry_rows = carry;
            b.iter(|| {
                let mut rows = 0usize;
                let mut sink = |ev: ObjectEvent| {
                    if let ObjectEvent::Rows(batches) = ev {
                        rows += batches.iter().map(|p| p.rows.len()).sum::<usize>();
                    }
                };
                for object in &small {
                    processor.process(KEY, std::io::Cursor::new(object.clone()), &mut sink);
                }
                processor.finish(&mut sink).expect("batches build");
                rows
            })
        });
    }

    // Every record as one partition's rows, in chunks as the workers build them.
    let mut builder = OcsfBuilder::new();
    let ctx = ObjectContext::default();
    let mut batches = Vec::new();
    for chunk in recs.chunks(4096) {
        for r in chunk {
            let _ = builder.append_bytes(r.as_bytes(), &ctx);
        }
        batches.push(builder.finish().expect("batch"));
    }
    let key = PartitionKey::new(
        Source::CloudTrailMgmt,
        OcsfClass::ApiActivity,
        "us-east-1",
        "111122223333",
        20240309,
    )
    .expect("valid partition");
    let opts = WriteOptions::default();
    // And a partition of 8 rows, one file: what a file costs beside its rows (a quiet
    // account's region in a day, a streaming flush of a few events).
    for r in &recs[..8] {
        let _ = builder.append_bytes(r.as_bytes(), &ctx);
    }
    let few = vec![builder.finish().expect("batch")];
    let few_bytes = recs[..8].iter().map(|r| r.len()).sum::<usize>();
    for (name, batches, bytes) in [
        ("encode_partition", &batches, json_bytes),
        ("encode_partition_8_rows", &few, few_bytes),
    ] {
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                encode_partition(&key, Layout::Ext, batches, &opts)
                    .expect("encodes")
                    .files
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
