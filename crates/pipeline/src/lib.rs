//! The edges of trailhouse: objects in, files out. This crate owns the file system
//! (and, with the workers, the network and the clock); the crates below it are pure.
//!
//! - [`process`]: one object through gunzip, the record reader and the mapper,
//!   split by partition — shared by every mode.
//! - [`replay`]: local folders into a local lake on all cores, deterministic, in
//!   bounded memory, with a [`replay::Summary`].
//! - [`quarantine`]: bad objects and records kept with their reasons.
//! - [`spill`]: a replay's small partitions set aside on disk when memory is short.
//! - [`convert`]: CloudTrail to OCSF JSON Lines.
//! - [`floor`]: the same files only read and parsed, the benchmarks' baseline.
//! - [`plan`] and [`s3_replay`]: replay of a trail bucket by day prefix, with a
//!   checkpoint, or enqueued for a fleet of workers.
//! - [`worker`]: `trailhouse run`, the SQS-driven streaming worker, with
//!   [`notification`] (every message shape), [`ledger`] (when a message may be
//!   deleted), [`store`] (local or S3 lake) and [`metrics`].
//! - [`malloc`]: the C allocator's setting that keeps the memory bound.

pub mod convert;
pub mod floor;
pub mod insights;
pub mod ledger;
pub mod malloc;
pub mod metrics;
pub mod notification;
pub mod plan;
pub mod process;
pub mod quarantine;
pub mod replay;
pub mod s3_replay;
pub mod spill;
pub mod store;
pub mod worker;

pub use process::{ObjectEvent, ObjectOutcome, ObjectProcessor, SkipReason};
pub use replay::{LocalObject, ReplayError, ReplayOptions, Summary, discover, replay_local};
