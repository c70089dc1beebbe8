//! Rows waiting to be written, per partition, with the flush policy: a partition is
//! flushed when it is large, when it is old, or when all buffers together pass the
//! memory bound (largest first); everything is flushed at the end.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;

use crate::layout::PartitionKey;

/// When buffered partitions are written out.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    /// A partition is flushed once its buffered Arrow data reaches this many bytes.
    pub flush_bytes: usize,
    /// All partitions together may hold at most this many bytes; past it the largest
    /// partitions are flushed until the total is at most three quarters of it.
    pub max_buffer_bytes: usize,
    /// A partition whose first row arrived this long ago (ms) is flushed
    /// (`None`: never, as in a batch job).
    pub max_age_ms: Option<u64>,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        // A replay's peak RSS stays under 256 MiB with these, for one large object
        // and for a long replay over many partitions (README, "Memory").
        FlushPolicy {
            flush_bytes: 36 << 20,
            max_buffer_bytes: 48 << 20,
            max_age_ms: None,
        }
    }
}

/// Rows of one partition waiting to be written.
#[derive(Debug, Default)]
pub struct Pending {
    /// The batches, in arrival order.
    pub batches: Vec<RecordBatch>,
    /// Arrow memory they hold.
    pub bytes: usize,
    /// Rows they hold.
    pub rows: usize,
    /// When the first row arrived (caller's clock, ms).
    pub since_ms: u64,
}

/// The partition buffers. Iteration and eviction order are deterministic (by key),
/// so the same input in the same order flushes at the same points.
#[derive(Debug, Default)]
pub struct PartitionBuffers {
    parts: BTreeMap<PartitionKey, Pending>,
    total_bytes: usize,
    policy: FlushPolicy,
}

impl PartitionBuffers {
    /// Empty buffers with a policy.
    pub fn new(policy: FlushPolicy) -> Self {
        PartitionBuffers {
            parts: BTreeMap::new(),
            total_bytes: 0,
            policy,
        }
    }

    /// Bytes buffered in all partitions.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Number of partitions holding rows.
    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Adds a batch of one partition's rows at time `now_ms`. Returns the partitions
    /// that must be flushed now, removed from the buffers.
    pub fn add(
        &mut self,
        key: PartitionKey,
        batch: RecordBatch,
        now_ms: u64,
    ) -> Vec<(PartitionKey, Pending)> {
        let bytes = batch.get_array_memory_size();
        let rows = batch.num_rows();
        let pending = self.parts.entry(key.clone()).or_insert_with(|| Pending {
            since_ms: now_ms,
            ..Pending::default()
        });
        pending.batches.push(batch);
        pending.bytes += bytes;
        pending.rows += rows;
        self.total_bytes += bytes;
        let mut out = Vec::new();
        if pending.bytes >= self.policy.flush_bytes {
            out.extend(self.take(&key));
        }
        if self.total_bytes > self.policy.max_buffer_bytes {
            let target = self.policy.max_buffer_bytes / 4 * 3;
            while self.total_bytes > target {
                let Some(largest) = self
                    .parts
                    .iter()
                    .max_by(|a, b| a.1.bytes.cmp(&b.1.bytes).then_with(|| b.0.cmp(a.0)))
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                out.extend(self.take(&largest));
            }
        }
        out
    }

    /// Partitions older than the policy's `max_age_ms` at `now_ms`, removed.
    pub fn expired(&mut self, now_ms: u64) -> Vec<(PartitionKey, Pending)> {
        let Some(age) = self.policy.max_age_ms else {
            return Vec::new();
        };
        let old: Vec<PartitionKey> = self
            .parts
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.since_ms) >= age)
            .map(|(k, _)| k.clone())
            .collect();
        old.iter().filter_map(|k| self.take(k)).collect()
    }

    /// Every partition, removed, in key order.
    pub fn drain(&mut self) -> Vec<(PartitionKey, Pending)> {
        self.total_bytes = 0;
        std::mem::take(&mut self.parts).into_iter().collect()
    }

    fn take(&mut self, key: &PartitionKey) -> Option<(PartitionKey, Pending)> {
        let (k, p) = self.parts.remove_entry(key)?;
        self.total_bytes -= p.bytes;
        Some((k, p))
    }
}
