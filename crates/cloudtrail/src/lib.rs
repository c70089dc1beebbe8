//! The input side of trailhouse, pure and synchronous: CloudTrail log files are read
//! as a stream of borrowed records, and their S3 keys are understood.
//!
//! - [`reader`]: gzip/plain `{"Records":[...]}` files, one record at a time, memory
//!   bounded by the largest record.
//! - [`record`]: a record as borrowed raw JSON with O(1) access to mapped fields, read
//!   by a one-pass scanner (`scan`) with serde_json as the judge of what it leaves.
//! - [`key`]: the `AWSLogs/...` key layout (log, digest, insight) and validation of
//!   values that end up in partition paths.
//! - [`time`]: RFC 3339 timestamps to epoch milliseconds.

pub mod key;
pub mod reader;
pub mod record;
mod scan;
pub mod time;

pub use key::{KeyKind, KeyParts, classify_key, is_valid_account, is_valid_region};
pub use reader::{Encoding, InflateAhead, LogReader, ReadError};
pub use record::{Field, ParseError, PrefixError, RawJson, RawObject, Record};
