//! SQL over a trailhouse lake (Amazon Security Lake layout, OCSF Parquet), local or
//! on S3, with Apache DataFusion.
//!
//! [`Lake::open`] finds every source folder of the lake (`ext/*/1.0/` and
//! `aws/*/2.0/`) and registers one table per folder, named by the lowercased source
//! name (`cloud_trail_mgmt_api_activity`, `cloud_trail_mgmt` for the native layout),
//! with the Hive partitions of the path as the columns `region`, `accountid` and
//! `eventday` (lowercase, as Glue and Athena name them). Filters on them prune
//! partitions: files of other partitions are not listed, let alone opened. On top,
//! views by OCSF class over all CloudTrail tables: `api_activity`, `authentication`,
//! `account_change`, and `cloudtrail` (all three).
//!
//! ```no_run
//! # async fn f() -> Result<(), trailhouse_query::QueryError> {
//! use trailhouse_query::{Lake, OpenOptions};
//! let lake = Lake::open("/data/lake", &OpenOptions::default()).await?;
//! let batches = lake
//!     .sql("SELECT count(*) FROM api_activity WHERE eventday = '20240309'")
//!     .await?;
//! # Ok(()) }
//! ```

mod format;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::common::TableReference;
use datafusion::common::{Column, DataFusionError};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::view::ViewTable;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::{col, lit};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;

pub use format::{OutputFormat, write_batches};
pub use store::{S3Credentials, S3Options};

/// The schema the raw (path-cased) tables are registered in; the public names are
/// views over them.
pub const RAW_SCHEMA: &str = "trailhouse_raw";

/// Partition keys in the path, and the column each becomes.
pub const PARTITIONS: [(&str, &str); 3] = [
    ("region", "region"),
    ("accountId", "accountid"),
    ("eventDay", "eventday"),
];

/// Class views over the CloudTrail tables: (view, ext name suffix, `class_uid`).
pub const CLASS_VIEWS: [(&str, &str, i32); 3] = [
    ("api_activity", "_API_ACTIVITY", 6003),
    ("authentication", "_AUTHENTICATION", 3002),
    ("account_change", "_ACCOUNT_CHANGE", 3001),
];

/// The view over all three CloudTrail classes.
pub const ALL_VIEW: &str = "cloudtrail";

/// Why a lake could not be opened or a query not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake is missing, unreachable or not a lake.
    #[error("lake {0}")]
    Lake(String),
    /// The lake holds no table.
    #[error(
        "no tables in lake {0}: expected ext/<NAME>/1.0/region=…/accountId=…/eventDay=…/*.parquet or aws/<SOURCE>/2.0/…"
    )]
    NoTables(String),
    /// Listing or reading the store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// DataFusion refused the SQL or failed to run it.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// Arrow failed to format the result.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// Writing the result failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// How to open a lake.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// How to reach an `s3://` lake.
    pub s3: S3Options,
    /// Parallel partitions of a query (default: the number of cores).
    pub target_partitions: Option<usize>,
}

/// What kind of table a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// One source folder, `ext/<NAME>/1.0/` (Security Lake custom source).
    Ext,
    /// One source folder, `aws/<SOURCE>/2.0/` (native layout, classes mixed).
    Native,
    /// A union view over CloudTrail tables.
    View,
}

/// A table or view of the lake.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The SQL name (lowercase).
    pub name: String,
    /// What it is.
    pub kind: TableKind,
    /// For a source table, its folder relative to the lake root
    /// (`ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0`); for a view, the tables it unites.
    pub source: String,
    /// Its columns, partition columns last.
    pub schema: SchemaRef,
}

impl TableInfo {
    /// The columns as SQL reaches them: struct fields expanded to dotted paths
    /// (`actor.user.uid`), each with a Hive-style type (`string`, `bigint`,
    /// `timestamp`, `array<…>`, `map<string,string>`).
    pub fn columns(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in self.schema.fields() {
            leaf_columns(f.name(), f.data_type(), &mut out);
        }
        out
    }
}

fn leaf_columns(path: &str, dt: &DataType, out: &mut Vec<(String, String)>) {
    match dt {
        DataType::Struct(fields) => {
            for f in fields {
                leaf_columns(&format!("{path}.{}", f.name()), f.data_type(), out);
            }
        }
        other => out.push((path.to_string(), sql_type(other))),
    }
}

/// A short, Hive-style name of a type.
pub fn sql_type(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), sql_type(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(","))
        }
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
            format!("array<{}>", sql_type(item.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                sql_type(kv[0].data_type()),
                sql_type(kv[1].data_type())
            ),
            other => format!("map<{other}>"),
        },
        other => other.to_string(),
    }
}

/// An opened lake: a DataFusion session with the lake's tables registered.
pub struct Lake {
    ctx: SessionContext,
    tables: Vec<TableInfo>,
    notes: Vec<String>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("tables", &self.tables)
            .field("notes", &self.notes)
            .finish_non_exhaustive()
    }
}

/// Opens `lake` (a folder or `s3://bucket/prefix`) and returns the session, for
/// callers that want DataFusion directly. See [`Lake::open`].
///
/// # Errors
/// As [`Lake::open`].
pub async fn open(lake: &str, opts: &OpenOptions) -> Result<SessionContext, QueryError> {
    Ok(Lake::open(lake, opts).await?.ctx)
}

/// The columns every CloudTrail table shares (the OCSF schema trailhouse writes),
/// by which a table is recognised as CloudTrail for the class views.
fn is_cloudtrail(schema: &Schema) -> bool {
    [
        "class_uid",
        "api",
        "actor",
        "src_endpoint",
        "time",
        "status",
    ]
    .iter()
    .all(|c| schema.field_with_name(c).is_ok())
}

impl Lake {
    /// Opens a lake and registers its tables and views.
    ///
    /// # Errors
    /// [`QueryError::Lake`] if the folder or bucket cannot be reached,
    /// [`QueryError::NoTables`] if it holds no source folder with Parquet files.
    pub async fn open(lake: &str, opts: &OpenOptions) -> Result<Lake, QueryError> {
        let loc = store::locate(lake, &opts.s3)?;
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .set_bool(
                "datafusion.execution.parquet.schema_force_view_types",
                false,
            )
            // Statistics would read every file's footer at planning time.
            .set_bool("datafusion.execution.collect_statistics", false);
        if let Some(n) = opts.target_partitions {
            config = config.with_target_partitions(n.max(1));
        }
        let ctx = SessionContext::new_with_config(config);
        // DataFusion 55.2's `push_down_leaf_projections` fails on struct field access
        // over a union of the renaming views ("Schema contains qualified field name
        // … region and unqualified field name region which would be ambiguous").
        // Without it, whole struct columns are read instead of their leaves: slower,
        // same answers.
        ctx.remove_optimizer_rule("push_down_leaf_projections");
        ctx.register_object_store(&loc.store_url, loc.store.clone());
        let raw = Arc::new(MemorySchemaProvider::new());
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| QueryError::Lake("no default catalog".into()))?;
        catalog.register_schema(RAW_SCHEMA, raw.clone())?;

        let mut notes = Vec::new();
        let mut tables = Vec::new();
        for (top, version, kind) in [
            ("ext", "1.0", TableKind::Ext),
            ("aws", "2.0", TableKind::Native),
        ] {
            for name in subfolders(&loc, top).await? {
                let rel = format!("{top}/{name}/{version}");
                let has_version = subfolders(&loc, &format!("{top}/{name}"))
                    .await?
                    .iter()
                    .any(|v| v == version);
                if !has_version {
                    continue;
                }
                let sql_name = name.to_ascii_lowercase();
                match register_source(&ctx, &loc, raw.as_ref(), &rel, &sql_name).await? {
                    Some(schema) => tables.push(TableInfo {
                        name: sql_name,
                        kind,
                        source: rel,
                        schema,
                    }),
                    None => notes.push(format!("{rel}: no Parquet file, skipped")),
                }
            }
        }
        if tables.is_empty() {
            return Err(QueryError::NoTables(loc.display));
        }
        let views = register_views(&ctx, &tables, &mut notes).await?;
        tables.extend(views);
        Ok(Lake { ctx, tables, notes })
    }

    /// The DataFusion session, with the tables registered (for the DataFrame API).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The tables and views, source tables first, each group by name.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// What was skipped while opening (empty folders, tables whose schema did not
    /// fit a view).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Plans one read-only SQL statement (`SELECT`, `WITH`, `EXPLAIN`, `SHOW`,
    /// `DESCRIBE`). DDL, DML (`COPY`, `INSERT`) and `SET` are refused.
    ///
    /// # Errors
    /// Bad SQL, unknown tables or columns, a refused statement.
    pub async fn dataframe(&self, sql: &str) -> Result<DataFrame, QueryError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        Ok(self.ctx.sql_with_options(sql, options).await?)
    }

    /// Runs one read-only SQL statement and collects the result.
    ///
    /// # Errors
    /// As [`Lake::dataframe`], and any error reading the files the query needs.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.dataframe(sql).await?.collect().await?)
    }

    /// The schema a statement would return, without running it.
    ///
    /// # Errors
    /// As [`Lake::dataframe`].
    pub async fn plan_schema(&self, sql: &str) -> Result<SchemaRef, QueryError> {
        let df = self.dataframe(sql).await?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }
}

/// Names of the folders directly below `rel` (relative to the lake root).
async fn subfolders(loc: &store::Location, rel: &str) -> Result<Vec<String>, QueryError> {
    let prefix = loc.path(rel);
    let listing = match loc.store.list_with_delimiter(Some(&prefix)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(QueryError::Lake(format!("{}: {e}", loc.display))),
    };
    let mut out: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Registers the folder `rel` as `RAW_SCHEMA.name` (a listing table partitioned by
/// the path's keys) and `name` (a view naming the partition columns in lowercase).
/// Returns the view's schema, or `None` if the folder holds no Parquet file.
async fn register_source(
    ctx: &SessionContext,
    loc: &store::Location,
    raw: &dyn SchemaProvider,
    rel: &str,
    name: &str,
) -> Result<Option<SchemaRef>, QueryError> {
    // The session's Parquet options (plain Utf8 strings, no view types).
    let state = ctx.state();
    let format = Arc::new(
        ParquetFormat::default()
            .with_options(state.table_options().parquet.clone())
            .with_force_view_types(false),
    );
    let partition_cols: Vec<(String, DataType)> = PARTITIONS
        .iter()
        .map(|(key, _)| (key.to_string(), DataType::Utf8))
        .collect();
    let options = ListingOptions::new(format.clone())
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    let url = ListingTableUrl::parse(loc.table_url(rel))?;

    // The schema from the first files that have one: every file of a source shares
    // it, and reading all footers would open every file of the lake.
    // The first few files listed are enough (a lazy listing: on S3, one page).
    let files: Vec<object_store::ObjectMeta> = loc
        .store
        .list(Some(&loc.path(rel)))
        .try_filter(|m| {
            futures::future::ready(m.location.as_ref().ends_with(".parquet") && m.size > 0)
        })
        .take(8)
        .try_collect()
        .await?;
    if files.is_empty() {
        return Ok(None);
    }
    let store: Arc<dyn ObjectStore> = loc.store.clone();
    let mut file_schema = None;
    let mut first_err = None;
    for meta in &files {
        match format
            .infer_schema(&state, &store, std::slice::from_ref(meta))
            .await
        {
            Ok(s) => {
                file_schema = Some(s);
                break;
            }
            Err(e) => {
                first_err.get_or_insert(format!("{}: {e}", meta.location));
            }
        }
    }
    let Some(file_schema) = file_schema else {
        return Err(QueryError::Lake(format!(
            "{rel}: no readable Parquet footer among the first files ({})",
            first_err.unwrap_or_default()
        )));
    };
    // Files that also carry partition columns (Security Lake's own have `region` and
    // `accountid`) would clash with the path's: the path wins.
    let fields: Vec<Arc<Field>> = file_schema
        .fields()
        .iter()
        .filter(|f| {
            !PARTITIONS
                .iter()
                .any(|(_, c)| f.name().eq_ignore_ascii_case(c))
        })
        .cloned()
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)?;
    raw.register_table(name.to_string(), Arc::new(table))?;

    // The public view: the same columns, partition keys in lowercase.
    let df = ctx.table(TableReference::partial(RAW_SCHEMA, name)).await?;
    let exprs: Vec<_> = df
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let c = col(Column::from_name(f.name()));
            match PARTITIONS.iter().find(|(key, _)| key == f.name()) {
                Some((_, lower)) => c.alias(*lower),
                None => c,
            }
        })
        .collect();
    let df = df.select(exprs)?;
    let out = Arc::new(df.schema().as_arrow().clone());
    let plan = df.into_unoptimized_plan();
    ctx.register_table(
        TableReference::bare(name),
        Arc::new(ViewTable::new(plan, None)),
    )?;
    Ok(Some(out))
}

/// Registers the class views and `cloudtrail` over the CloudTrail tables: ext tables
/// by their name's class suffix, native tables filtered by `class_uid`. A table
/// whose columns differ from the first one's is left out (and noted).
async fn register_views(
    ctx: &SessionContext,
    tables: &[TableInfo],
    notes: &mut Vec<String>,
) -> Result<Vec<TableInfo>, QueryError> {
    // (view → [(table, class filter)])
    let mut members: BTreeMap<&str, Vec<(&TableInfo, Option<i32>)>> = BTreeMap::new();
    for t in tables.iter().filter(|t| is_cloudtrail(&t.schema)) {
        for (view, suffix, class_uid) in CLASS_VIEWS {
            let filter = match t.kind {
                TableKind::Ext
                    if t.source
                        .split('/')
                        .nth(1)
                        .is_some_and(|n| n.ends_with(suffix)) =>
                {
                    None
                }
                TableKind::Native => Some(class_uid),
                _ => continue,
            };
            members.entry(view).or_default().push((t, filter));
            members.entry(ALL_VIEW).or_default().push((t, filter));
        }
    }
    let mut out = Vec::new();
    let mut reference: Option<SchemaRef> = None;
    for (view, _, _) in CLASS_VIEWS.iter().chain([(ALL_VIEW, "", 0)].iter()) {
        let Some(list) = members.get(view) else {
            continue;
        };
        let mut union: Option<DataFrame> = None;
        let mut names = Vec::new();
        for (t, filter) in list {
            let reference = reference.get_or_insert_with(|| t.schema.clone());
            if !same_columns(reference, &t.schema) {
                notes.push(format!(
                    "{}: columns differ from {}'s, left out of view {view}",
                    t.name,
                    names
                        .first()
                        .map_or("the first table", |s: &String| s.as_str())
                ));
                continue;
            }
            let cols: Vec<&str> = reference
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            let mut df = ctx.table(TableReference::bare(t.name.as_str())).await?;
            if let Some(uid) = filter {
                df = df.filter(col("class_uid").eq(lit(*uid)))?;
            }
            let df = df.select_columns(&cols)?;
            union = Some(match union {
                None => df,
                Some(u) => u.union(df)?,
            });
            if !names.contains(&t.name) {
                names.push(t.name.clone());
            }
        }
        let Some(df) = union else { continue };
        let schema = Arc::new(df.schema().as_arrow().clone());
        let plan = df.into_unoptimized_plan();
        ctx.register_table(
            TableReference::bare(*view),
            Arc::new(ViewTable::new(plan, None)),
        )?;
        out.push(TableInfo {
            name: view.to_string(),
            kind: TableKind::View,
            source: names.join(", "),
            schema,
        });
    }
    Ok(out)
}

/// Same column names and types (ignoring nested field names and nullability).
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.name() == y.name() && x.data_type().equals_datatype(y.data_type()))
}
