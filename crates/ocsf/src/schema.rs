//! The one Arrow schema trailhouse writes: column for column the Glue table of Amazon
//! Security Lake's CloudTrail source version 2 (OCSF 1.1.0), plus the single column
//! needed for schema validity (`src_endpoint.svc_name`, see the README).

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

/// The OCSF version written to `metadata.version`.
pub const OCSF_VERSION: &str = "1.1.0";

/// Columns of Security Lake's table that are not OCSF attributes (the table's own
/// bookkeeping). They are left out when a row is rendered as an OCSF event.
pub const TABLE_ONLY_COLUMNS: [&str; 3] = ["accountid", "region", "asl_version"];

/// Names of the map's inner fields, as Parquet's MAP convention and Hive expect.
pub const MAP_ENTRIES: &str = "key_value";

pub(crate) fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

pub(crate) fn i32f(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}

pub(crate) fn st(name: &str, children: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(children)), true)
}

pub(crate) fn list(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("element", item, true))),
        true,
    )
}

/// The time zone of timestamp columns in the Arrow batches. An offset rather than the
/// name "UTC", so that Arrow code handling them needs no time-zone database. The lake's
/// files record only Parquet's isAdjustedToUTC=true (they carry no embedded Arrow
/// schema, like Security Lake's own), which Arrow readers turn into "UTC".
pub const UTC: &str = "+00:00";

/// Millisecond timestamps in UTC, as Security Lake writes `time_dt`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// The Arrow type of `unmapped`: `map<string,string>`.
pub fn unmapped_type() -> DataType {
    let entries = Field::new(
        MAP_ENTRIES,
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The members of `metadata` every trailhouse table has (the findings table adds
/// `log_name`).
pub(crate) fn metadata_fields() -> Vec<Field> {
    vec![
        st(
            "product",
            vec![
                s("version"),
                s("name"),
                s("vendor_name"),
                st("feature", vec![s("name")]),
            ],
        ),
        s("event_code"),
        s("uid"),
        list("profiles", DataType::Utf8),
        s("version"),
    ]
}

fn build() -> Schema {
    let metadata = st("metadata", metadata_fields());
    let api = st(
        "api",
        vec![
            st("response", vec![s("error"), s("message"), s("data")]),
            s("operation"),
            s("version"),
            st("service", vec![s("name")]),
            st("request", vec![s("data"), s("uid")]),
        ],
    );
    let actor = st(
        "actor",
        vec![
            st(
                "user",
                vec![
                    s("type"),
                    s("name"),
                    s("uid_alt"),
                    s("uid"),
                    st("account", vec![s("uid")]),
                    s("credential_uid"),
                ],
            ),
            st(
                "session",
                vec![
                    Field::new("created_time_dt", timestamp_type(), true),
                    Field::new("is_mfa", DataType::Boolean, true),
                    s("issuer"),
                ],
            ),
            s("invoked_by"),
            st("idp", vec![s("name")]),
        ],
    );
    let resource = DataType::Struct(Fields::from(vec![
        s("uid"),
        st("owner", vec![st("account", vec![s("uid")])]),
        s("type"),
    ]));
    let observable = DataType::Struct(Fields::from(vec![
        s("name"),
        s("value"),
        s("type"),
        i32f("type_id"),
    ]));
    Schema::new(vec![
        metadata,
        Field::new("time", DataType::Int64, false),
        Field::new("time_dt", timestamp_type(), true),
        st("cloud", vec![s("region"), s("provider")]),
        api,
        st("dst_endpoint", vec![s("svc_name")]),
        actor,
        st("http_request", vec![s("user_agent")]),
        // `svc_name` is not in Security Lake's table: it is the validity addition for
        // endpoints that are only a service principal or "AWS Internal" (README).
        st(
            "src_endpoint",
            vec![s("uid"), s("ip"), s("domain"), s("svc_name")],
        ),
        st(
            "session",
            vec![s("uid"), s("uid_alt"), s("credential_uid"), s("issuer")],
        ),
        st("policy", vec![s("uid")]),
        list("resources", resource),
        s("class_name"),
        i32f("class_uid"),
        s("category_name"),
        i32f("category_uid"),
        i32f("severity_id"),
        s("severity"),
        st("user", vec![s("uid_alt"), s("uid"), s("name")]),
        s("activity_name"),
        i32f("activity_id"),
        Field::new("type_uid", DataType::Int64, true),
        s("type_name"),
        s("status"),
        Field::new("is_mfa", DataType::Boolean, true),
        Field::new("unmapped", unmapped_type(), true),
        s("accountid"),
        s("region"),
        s("asl_version"),
        list("observables", observable),
    ])
}

/// The schema of every table trailhouse writes for CloudTrail (all three classes).
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA.get_or_init(|| Arc::new(build())).clone()
}

/// The field at a dotted path (`"actor.user.account"`), descending through structs
/// and list items. `None` if there is no such field.
pub fn field_at(path: &str) -> Option<FieldRef> {
    let schema = schema();
    let mut parts = path.split('.');
    let mut field = schema
        .field_with_name(parts.next()?)
        .ok()
        .map(|f| Arc::new(f.clone()))?;
    for part in parts {
        let children = match field.data_type() {
            DataType::Struct(c) => c.clone(),
            DataType::List(item) => match item.data_type() {
                DataType::Struct(c) => c.clone(),
                _ => return None,
            },
            _ => return None,
        };
        field = children.iter().find(|f| f.name() == part)?.clone();
    }
    Some(field)
}

/// The children of the struct (or list-of-struct) field at `path`.
pub fn struct_fields(path: &str) -> Option<Fields> {
    match field_at(path)?.data_type() {
        DataType::Struct(c) => Some(c.clone()),
        DataType::List(item) => match item.data_type() {
            DataType::Struct(c) => Some(c.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Renders the schema as Hive/Glue column types (`struct<a:string,...>`), the form
/// Athena's DDL and Security Lake's published table description use.
pub fn hive_type(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "string".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), hive_type(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(","))
        }
        DataType::List(item) => format!("array<{}>", hive_type(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!(
                    "map<{},{}>",
                    hive_type(kv[0].data_type()),
                    hive_type(kv[1].data_type())
                )
            }
            other => format!("map<{other}>"),
        },
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security Lake's published v2 CloudTrail table (spec §4), column by column, in
    /// Hive notation. Our schema must match it exactly, but for the one documented
    /// validity addition (`src_endpoint.svc_name`) and the order Glue lists them in.
    #[test]
    fn matches_security_lake_v2_table() {
        let expected = [
            (
                "metadata",
                "struct<product:struct<version:string,name:string,vendor_name:string,feature:struct<name:string>>,event_code:string,uid:string,profiles:array<string>,version:string>",
            ),
            ("time", "bigint"),
            ("time_dt", "timestamp"),
            ("cloud", "struct<region:string,provider:string>"),
            (
                "api",
                "struct<response:struct<error:string,message:string,data:string>,operation:string,version:string,service:struct<name:string>,request:struct<data:string,uid:string>>",
            ),
            ("dst_endpoint", "struct<svc_name:string>"),
            (
                "actor",
                "struct<user:struct<type:string,name:string,uid_alt:string,uid:string,account:struct<uid:string>,credential_uid:string>,session:struct<created_time_dt:timestamp,is_mfa:boolean,issuer:string>,invoked_by:string,idp:struct<name:string>>",
            ),
            ("http_request", "struct<user_agent:string>"),
            (
                "src_endpoint",
                "struct<uid:string,ip:string,domain:string,svc_name:string>",
            ),
            (
                "session",
                "struct<uid:string,uid_alt:string,credential_uid:string,issuer:string>",
            ),
            ("policy", "struct<uid:string>"),
            (
                "resources",
                "array<struct<uid:string,owner:struct<account:struct<uid:string>>,type:string>>",
            ),
            ("class_name", "string"),
            ("class_uid", "int"),
            ("category_name", "string"),
            ("category_uid", "int"),
            ("severity_id", "int"),
            ("severity", "string"),
            ("user", "struct<uid_alt:string,uid:string,name:string>"),
            ("activity_name", "string"),
            ("activity_id", "int"),
            ("type_uid", "bigint"),
            ("type_name", "string"),
            ("status", "string"),
            ("is_mfa", "boolean"),
            ("unmapped", "map<string,string>"),
            ("accountid", "string"),
            ("region", "string"),
            ("asl_version", "string"),
            (
                "observables",
                "array<struct<name:string,value:string,type:string,type_id:int>>",
            ),
        ];
        let schema = schema();
        let got: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), hive_type(f.data_type())))
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        assert!(!schema.field_with_name("time").unwrap().is_nullable());
        assert_eq!(
            schema.field_with_name("time_dt").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
        );
    }

    #[test]
    fn paths_resolve() {
        assert_eq!(
            field_at("actor.user.account.uid").unwrap().data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            field_at("observables.type_id").unwrap().data_type(),
            &DataType::Int32
        );
        assert!(field_at("actor.nope").is_none());
        assert_eq!(struct_fields("resources").unwrap().len(), 3);
    }
}
