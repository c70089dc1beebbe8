//! Discovery, partition pruning, errors and output formats on small replayed lakes.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::Int64Array;
use trailhouse_corpus::{CorpusSpec, generate};
use trailhouse_pipeline::{ReplayOptions, replay_local};
use trailhouse_query::{Lake, OpenOptions, OutputFormat, QueryError, TableKind, write_batches};

/// A small lake from the default corpus (3 accounts, 3 regions, 2 days).
fn small_lake(dir: &Path) -> PathBuf {
    let input = dir.join("trail");
    let lake = dir.join("lake");
    let spec = CorpusSpec {
        files: 12,
        records_per_file: 40,
        ..CorpusSpec::default()
    };
    generate(&spec, &input).expect("generate");
    let opts = ReplayOptions {
        threads: 1,
        ..ReplayOptions::default()
    };
    replay_local(&[input], &lake, &opts).expect("replay");
    lake
}

async fn open(lake: &Path) -> Lake {
    Lake::open(lake.to_str().expect("utf-8"), &OpenOptions::default())
        .await
        .expect("open")
}

async fn count(lake: &Lake, sql: &str) -> Result<i64, QueryError> {
    let batches = lake.sql(sql).await?;
    let b = &batches[0];
    let c = b
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("count");
    Ok(c.value(0))
}

/// The partitions (region, account, day) of a source folder.
fn partitions(table_dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let val = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("key=value")
    };
    for r in std::fs::read_dir(table_dir).expect("dir") {
        let r = r.expect("entry").path();
        for a in std::fs::read_dir(&r).expect("dir") {
            let a = a.expect("entry").path();
            for d in std::fs::read_dir(&a).expect("dir") {
                let d = d.expect("entry").path();
                out.push((val(&r), val(&a), val(&d)));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_tables_views_and_partition_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = small_lake(dir.path());
    // A source folder of another kind (as Insights will be): found generically.
    let other = lake.join("ext/CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING/1.0");
    std::fs::create_dir_all(&other).expect("mkdir");
    let l = open(&lake).await;
    let names: Vec<&str> = l.tables().iter().map(|t| t.name.as_str()).collect();
    for n in [
        "cloud_trail_mgmt_api_activity",
        "cloud_trail_mgmt_authentication",
        "cloud_trail_mgmt_account_change",
        "s3_data_api_activity",
        "api_activity",
        "authentication",
        "account_change",
        "cloudtrail",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // An empty folder is noted, not an error.
    assert!(
        l.notes()
            .iter()
            .any(|n| n.contains("CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING"))
    );
    let t = l
        .tables()
        .iter()
        .find(|t| t.name == "cloud_trail_mgmt_api_activity")
        .expect("table");
    assert_eq!(t.kind, TableKind::Ext);
    let cols: Vec<&str> = t
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(&cols[cols.len() - 3..], ["region", "accountid", "eventday"]);
    assert_eq!(
        cols.iter().filter(|c| **c == "region").count(),
        1,
        "{cols:?}"
    );
    // Partition values come from the path.
    let parts = partitions(&lake.join("ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0"));
    let (r, a, d) = &parts[0];
    let n = count(
        &l,
        &format!(
            "SELECT count(*) FROM cloud_trail_mgmt_api_activity \
             WHERE region = '{r}' AND accountid = '{a}' AND eventday = '{d}'"
        ),
    )
    .await
    .expect("count");
    assert!(n > 0);
    // Views add up.
    let total = count(&l, "SELECT count(*) FROM cloudtrail")
        .await
        .expect("all");
    let parts_sum = count(
        &l,
        "SELECT (SELECT count(*) FROM api_activity) + (SELECT count(*) FROM authentication) \
         + (SELECT count(*) FROM account_change)",
    )
    .await
    .expect("sum");
    assert_eq!(total, parts_sum);
    // Struct fields and the unmapped map are reachable.
    let b = l
        .sql(
            "SELECT actor.\"user\".type, unmapped['readOnly'] AS read_only, cloud.region \
             FROM api_activity LIMIT 3",
        )
        .await
        .expect("nested");
    assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_filters_prune_files_of_other_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = small_lake(dir.path());
    let table = lake.join("ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0");
    let parts = partitions(&table);
    let (r, a, d) = parts[0].clone();
    // A different region, account and day: the corrupt file's partition.
    let (r2, a2, d2) = parts
        .iter()
        .find(|(r2, a2, d2)| *r2 != r && *a2 != a && *d2 != d)
        .cloned()
        .expect("a disjoint partition");
    let corrupt = table
        .join(format!("region={r2}"))
        .join(format!("accountId={a2}"))
        .join(format!("eventDay={d2}"))
        .join("zz-corrupt.parquet");
    let l = open(&lake).await; // opened before: the footer is not read at open
    std::fs::write(&corrupt, b"this is not a parquet file").expect("write");

    for filter in [
        format!("region = '{r}'"),
        format!("accountid = '{a}'"),
        format!("eventday = '{d}'"),
        format!("region = '{r}' AND accountid = '{a}' AND eventday = '{d}'"),
        format!("eventday <> '{d2}'"),
    ] {
        for t in [
            "cloud_trail_mgmt_api_activity",
            "api_activity",
            "cloudtrail",
        ] {
            let sql = format!("SELECT count(*), min(time_dt) FROM {t} WHERE {filter}");
            let n = count(&l, &sql).await;
            assert!(matches!(n, Ok(n) if n > 0), "{sql}: {n:?}");
        }
    }
    // Sanity: the file is read when its partition is not excluded, and the error
    // says which file.
    for sql in [
        "SELECT count(*), min(time_dt) FROM cloud_trail_mgmt_api_activity".to_string(),
        format!("SELECT count(*), min(time_dt) FROM api_activity WHERE eventday = '{d2}'"),
    ] {
        let err = count(&l, &sql).await.expect_err("the corrupt file is read");
        let msg = err.to_string();
        assert!(
            msg.contains("zz-corrupt.parquet") || msg.to_lowercase().contains("parquet"),
            "{sql}: unclear error {msg}"
        );
    }
}

/// A lake written before trailhouse stopped embedding the Arrow schema (`cda13cc`)
/// gains new files after an upgrade: in the same table, old files say their
/// timestamps are "+00:00", new ones (like Security Lake's own) only that they are
/// UTC. Both are read together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_with_and_without_an_embedded_arrow_schema_read_together() {
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().expect("tempdir");
    let lake = small_lake(dir.path());
    let table = lake.join("ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0");
    let l = open(&lake).await;
    let all = "SELECT count(*) FROM api_activity";
    let before = count(&l, all).await.expect("count");
    let (r, a, d) = partitions(&table)[0].clone();
    let part = table
        .join(format!("region={r}"))
        .join(format!("accountId={a}"))
        .join(format!("eventDay={d}"));
    let new_file = std::fs::read_dir(&part)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a file");

    // The same rows as an old file: "+00:00" zones and the embedded Arrow schema.
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&new_file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let old_schema = trailhouse_lake::file_schema();
    let old_file = part.join("00-written-by-an-older-trailhouse.parquet");
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&old_file).unwrap(),
        old_schema.clone(),
        None,
    )
    .unwrap();
    let mut rows = 0;
    for b in reader {
        let b = b.unwrap();
        assert_ne!(
            b.schema(),
            old_schema,
            "new files read back with other zones"
        );
        let cols = b
            .columns()
            .iter()
            .zip(old_schema.fields())
            .map(|(c, f)| cast(c, f.data_type()).unwrap())
            .collect();
        rows += b.num_rows() as i64;
        w.write(&RecordBatch::try_new(old_schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();

    let l = open(&lake).await;
    assert_eq!(count(&l, all).await.expect("mixed count"), before + rows);
    let day = format!(
        "SELECT count(*) FROM api_activity WHERE eventday = '{d}' \
         AND to_char(time_dt, '%Y%m%d') = eventday"
    );
    let in_day = count(&l, &day).await.expect("time_dt of both kinds");
    assert!(
        in_day >= 2 * rows,
        "{in_day} rows of {d} (each row of the file twice)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Missing folder.
    let missing = dir.path().join("nope");
    let e = Lake::open(missing.to_str().expect("utf-8"), &OpenOptions::default())
        .await
        .expect_err("missing");
    assert!(matches!(e, QueryError::Lake(_)), "{e}");
    // A folder without tables.
    let e = Lake::open(dir.path().to_str().expect("utf-8"), &OpenOptions::default())
        .await
        .expect_err("empty");
    assert!(matches!(e, QueryError::NoTables(_)), "{e}");
    // Not a lake URL.
    let e = Lake::open("gs://bucket/x", &OpenOptions::default())
        .await
        .expect_err("scheme");
    assert!(matches!(e, QueryError::Lake(_)), "{e}");

    let lake = small_lake(dir.path());
    let l = open(&lake).await;
    for bad in [
        "SELEC 1",
        "SELECT nope FROM api_activity",
        "SELECT * FROM no_such_table",
        "",
        "SELECT 1; SELECT 2",
        "CREATE TABLE t AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
    ] {
        assert!(l.sql(bad).await.is_err(), "{bad:?} accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = small_lake(dir.path());
    let l = open(&lake).await;
    let batches = l
        .sql(
            "SELECT metadata.uid AS id, api.operation AS op, actor.\"user\" AS who, time_dt, \
             unmapped, eventday FROM api_activity ORDER BY id LIMIT 5",
        )
        .await
        .expect("query");
    let render = |f| {
        let mut out = Vec::new();
        write_batches(&batches, f, &mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    };
    let table = render(OutputFormat::Table);
    assert!(
        table.contains("| id") && table.lines().count() >= 9,
        "{table}"
    );
    let csv = render(OutputFormat::Csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,op,who,time_dt,unmapped,eventday");
    assert_eq!(lines.len(), 6);
    let jl = render(OutputFormat::Json);
    let rows: Vec<serde_json::Value> = jl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0]["who"].is_object() && rows[0]["id"].is_string());
    let arr: serde_json::Value =
        serde_json::from_str(&render(OutputFormat::JsonArray)).expect("array");
    assert_eq!(arr.as_array().map(Vec::len), Some(5));
    // CSV and JSON agree on the ids.
    for (i, row) in rows.iter().enumerate() {
        assert!(lines[i + 1].starts_with(row["id"].as_str().expect("id")));
    }
    // No rows: an empty JSON array.
    let none = l
        .sql("SELECT api.operation FROM api_activity WHERE eventday = '19990101'")
        .await
        .expect("empty");
    let mut out = Vec::new();
    write_batches(&none, OutputFormat::JsonArray, &mut out).expect("write");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "[]");
}
