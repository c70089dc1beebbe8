//! The edges of trailhouse: objects in, files out. This crate owns the file system
//! (and, with the workers, the network and the clock); the crates below it are pure.
//!
//! - [`process`]: one object through gunzip, the record reader and the mapper,
//!   split by partition — shared by every mode.
//! - [`replay`]: local folders into a local lake on all cores, deterministic, in
//!   bounded memory, with a [`replay::Summary`].
//! - [`quarantine`]: bad objects and records kept with their reasons.
//! - [`convert`]: CloudTrail to OCSF JSON Lines.

pub mod convert;
pub mod process;
pub mod quarantine;
pub mod replay;

pub use process::{ObjectEvent, ObjectOutcome, ObjectProcessor, SkipReason};
pub use replay::{LocalObject, ReplayError, ReplayOptions, Summary, discover, replay_local};
