//! OCSF 1.1.0 for CloudTrail, as Amazon Security Lake writes it.
//!
//! - [`schema`](mod@schema): the one Arrow schema (Security Lake's v2 CloudTrail table) that the
//!   writers, the DDL and the query side derive from.
//! - [`classify`]: class (API Activity 6003, Authentication 3002, Account Change
//!   3001), activity and source (CLOUD_TRAIL_MGMT, S3_DATA, LAMBDA_EXECUTION).
//! - [`mapper`]: records straight into Arrow builders.
//! - [`unmapped`]: the flattening of unmapped fields into `map<string,string>`.
//! - [`json`]: rows rendered as OCSF JSON, for `convert` and schema validation.
//! - [`finding`]: CloudTrail Insights records as Detection Finding (2004) rows.

pub mod classify;
pub mod finding;
pub mod json;
pub mod mapper;
pub mod schema;
pub mod unmapped;

pub use classify::{OcsfClass, Source};
pub use mapper::{MapError, ObjectContext, OcsfBuilder, RowInfo};
pub use schema::schema;
