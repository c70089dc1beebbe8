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
            // Largest first (ties: the smaller key), until three quarters remain; one
            // sort, not a scan per partition flushed: an input spread over thousands
            // of partitions flushes thousands at a time.
            let target = self.policy.max_buffer_bytes / 4 * 3;
            let mut by_size: Vec<(usize, &PartitionKey)> =
                self.parts.iter().map(|(k, p)| (p.bytes, k)).collect();
            by_size.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let mut left = self.total_bytes;
            let mut largest = Vec::new();
            for (bytes, key) in by_size {
                if left <= target {
                    break;
                }
                left = left.saturating_sub(bytes);
                largest.push(key.clone());
            }
            for key in largest {
                out.extend(self.take(&key));
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

    /// `key`'s rows, removed (`None` if it has none buffered).
    pub fn remove(&mut self, key: &PartitionKey) -> Option<Pending> {
        self.take(key).map(|(_, p)| p)
    }

    fn take(&mut self, key: &PartitionKey) -> Option<(PartitionKey, Pending)> {
        let (k, p) = self.parts.remove_entry(key)?;
        self.total_bytes -= p.bytes;
        Some((k, p))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};
    use trailhouse_ocsf::{OcsfClass, Source};

    use super::*;

    fn key(account: &str) -> PartitionKey {
        let (source, class) = (Source::CloudTrailMgmt, OcsfClass::ApiActivity);
        PartitionKey::new(source, class, "us-east-1", account, 20240101).unwrap()
    }

    fn rows(n: i64) -> RecordBatch {
        let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        RecordBatch::try_from_iter([("time", col)]).unwrap()
    }

    fn accounts(out: &[(PartitionKey, Pending)]) -> Vec<String> {
        out.iter().map(|(k, _)| k.account().to_string()).collect()
    }

    #[test]
    fn a_partition_is_flushed_when_it_reaches_flush_bytes() {
        let size = rows(100).get_array_memory_size();
        let mut b = PartitionBuffers::new(FlushPolicy {
            flush_bytes: 2 * size,
            max_buffer_bytes: usize::MAX,
            max_age_ms: None,
        });
        assert!(b.add(key("111111111111"), rows(100), 0).is_empty());
        assert!(b.add(key("222222222222"), rows(100), 0).is_empty());
        let out = b.add(key("111111111111"), rows(100), 0);
        assert_eq!(accounts(&out), ["111111111111"]);
        assert_eq!((out[0].1.rows, out[0].1.batches.len()), (200, 2));
        assert_eq!(b.total_bytes(), size);
        assert_eq!(b.partitions(), 1);
    }

    #[test]
    fn past_the_memory_bound_the_largest_go_first_until_three_quarters_remain() {
        // Ten partitions of 56 units in all, added one after the other, bound 50
        // units: the 51st unit passes it, and the largest are flushed until at most
        // three quarters (37.5 units) remain: 10 units, then 9 (51 → 32). The last
        // partition's other 5 units follow: 37 left.
        let unit = rows(64).get_array_memory_size();
        let mut b = PartitionBuffers::new(FlushPolicy {
            flush_bytes: usize::MAX,
            max_buffer_bytes: 50 * unit,
            max_age_ms: None,
        });
        let sizes = [3, 8, 1, 10, 2, 8, 4, 9, 5, 6];
        let mut out = Vec::new();
        for (i, units) in sizes.into_iter().enumerate() {
            let k = key(&format!("{i:012}"));
            for _ in 0..units {
                out.extend(b.add(k.clone(), rows(64), 0));
            }
        }
        assert_eq!(accounts(&out), ["000000000003", "000000000007"]);
        assert_eq!(b.total_bytes(), 37 * unit);
        // Then ties: the smaller key goes first.
        let mut b = PartitionBuffers::new(FlushPolicy {
            flush_bytes: usize::MAX,
            max_buffer_bytes: 4 * unit,
            max_age_ms: None,
        });
        let mut out = Vec::new();
        for account in ["000000000009", "000000000001", "000000000005"] {
            out.extend(b.add(key(account), rows(64), 0));
            out.extend(b.add(key(account), rows(64), 0));
        }
        // The fifth unit passes the bound of 4: of the two partitions of two units,
        // the smaller key goes, which leaves 3 (≤ 3); the sixth unit makes 4 again.
        assert_eq!(accounts(&out), ["000000000001"]);
        assert_eq!(b.total_bytes(), 4 * unit);
    }

    #[test]
    fn partitions_older_than_max_age_are_flushed() {
        let mut b = PartitionBuffers::new(FlushPolicy {
            flush_bytes: usize::MAX,
            max_buffer_bytes: usize::MAX,
            max_age_ms: Some(1000),
        });
        b.add(key("111111111111"), rows(1), 0);
        b.add(key("222222222222"), rows(1), 500);
        b.add(key("111111111111"), rows(1), 900);
        assert!(b.expired(999).is_empty());
        assert_eq!(accounts(&b.expired(1000)), ["111111111111"]);
        assert_eq!(accounts(&b.expired(1500)), ["222222222222"]);
        assert_eq!(b.total_bytes(), 0);
    }
}
