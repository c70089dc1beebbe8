//! The lake side of trailhouse, pure and synchronous: bytes out, no I/O.
//!
//! - [`layout`]: partition keys and Security Lake's two layouts (`ext/…` custom
//!   sources, the default; `aws/…` native mirror), with values validated so data
//!   can never escape its prefix.
//! - [`buffers`]: per-partition buffers and the flush policy (size, age, memory).
//! - [`writer`]: a partition's rows as time-sorted, deduplicated zstd Parquet files
//!   with content-derived names (same input, same files).
//! - [`ddl`]: the Glue/Athena DDL implied by the schema.

pub mod buffers;
pub mod ddl;
pub mod layout;
pub mod writer;

pub use buffers::{FlushPolicy, PartitionBuffers, Pending, RawRecords, Rows};
pub use layout::{Layout, PartitionError, PartitionKey};
pub use writer::{
    EncodedFile, EncodedPartition, WriteError, WriteOptions, encode_partition, file_schema,
};
