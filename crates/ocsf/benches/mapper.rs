//! Mapper throughput on realistic generated records: parse only (the floor for this
//! stage), the class decision, `unmapped` flattening, parse + map into Arrow builders,
//! and the batch build. The pipeline's stages around it (gunzip + record reader,
//! Parquet encode) are in `crates/pipeline/benches/stages.rs`.

// The CLI's allocator (`trailhouse_pipeline::malloc::Allocator`), which the mapper's
// many small allocations meet first; not its two-arena setting (`use_jemalloc!`,
// which this crate cannot reach), which a one-thread bench does not meet.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use trailhouse_cloudtrail::{Field, Record};
use trailhouse_corpus::{CorpusSpec, records};
use trailhouse_ocsf::classify::classify;
use trailhouse_ocsf::unmapped::Unmapped;
use trailhouse_ocsf::{ObjectContext, OcsfBuilder};

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

fn bench(c: &mut Criterion) {
    let recs = corpus();
    let bytes: usize = recs.iter().map(String::len).sum();
    let ctx = ObjectContext::default();
    let mut g = c.benchmark_group("mapper");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.bench_function("parse_record", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &recs {
                n += Record::parse(r.as_bytes()).map_or(0, |r| r.members().count());
            }
            n
        })
    });
    let parsed: Vec<Record> = recs
        .iter()
        .map(|r| Record::parse(r.as_bytes()).expect("generated records parse"))
        .collect();
    let names: Vec<(String, String)> = parsed
        .iter()
        .map(|rec| {
            let text = |f| rec.text(f).map(|t| t.into_owned()).unwrap_or_default();
            (text(Field::EventSource), text(Field::EventName))
        })
        .collect();
    g.bench_function("classify", |b| {
        b.iter(|| {
            names
                .iter()
                .map(|(source, name)| classify(source, name).uid())
                .sum::<i32>()
        })
    });
    g.bench_function("unmapped_flatten", |b| {
        // requestParameters and responseElements, where nearly all of `unmapped`'s
        // bytes come from.
        let mut unmapped = Unmapped::default();
        b.iter(|| {
            let mut n = 0;
            for rec in &parsed {
                unmapped.clear();
                for (name, f) in [
                    ("requestParameters", Field::RequestParameters),
                    ("responseElements", Field::ResponseElements),
                ] {
                    if let Some(raw) = rec.raw(f) {
                        unmapped.flatten(name, raw, &[]).expect("flattens");
                    }
                }
                n += unmapped.len();
            }
            n
        })
    });
    g.bench_function("map_to_builders", |b| {
        b.iter_batched(
            OcsfBuilder::new,
            |mut builder| {
                for r in &recs {
                    let _ = builder.append_bytes(r.as_bytes(), &ctx);
                }
                builder
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("map_and_finish", |b| {
        let mut builder = OcsfBuilder::new();
        b.iter(|| {
            let mut rows = 0;
            for chunk in recs.chunks(4096) {
                for r in chunk {
                    let _ = builder.append_bytes(r.as_bytes(), &ctx);
                }
                rows += builder.finish().map_or(0, |b| b.num_rows());
            }
            rows
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
