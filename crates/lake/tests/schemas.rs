//! The DDL committed in `schemas/` is what the code generates (run with
//! `TRAILHOUSE_BLESS=1` to rewrite it after a schema change).

use trailhouse_lake::Layout;
use trailhouse_lake::ddl::{columns, lake_ddl};

fn check(name: &str, generated: &str) {
    let path = format!("../../schemas/{name}");
    if std::env::var_os("TRAILHOUSE_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/{name} is stale; rerun with TRAILHOUSE_BLESS=1"
    );
}

#[test]
fn committed_ddl_is_current() {
    check(
        "athena-ext.sql",
        &lake_ddl(Layout::Ext, "s3://YOUR-LAKE-BUCKET/"),
    );
    check(
        "athena-native.sql",
        &lake_ddl(Layout::Native, "s3://YOUR-LAKE-BUCKET/"),
    );
    let cols: String = columns()
        .iter()
        .map(|(n, t)| format!("{n} {t}\n"))
        .collect();
    check("columns.hive.txt", &cols);
}
