//! Rows waiting to be written, per partition, with the flush policy: a partition is
//! flushed when it is large, when it is old, or when all buffers together pass the
//! memory bound (largest first); everything is flushed at the end.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use trailhouse_ocsf::{ObjectContext, OcsfBuilder};

use crate::layout::PartitionKey;
use crate::writer::WriteError;

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

/// Records of one partition kept as their JSON, to be mapped when the partition is
/// written: the form of rows that arrive a few at a time over many partitions (a
/// file that mixes accounts), where an Arrow batch per partition per chunk would cost
/// far more than its rows (a set of ~150 arrays to build, buffer, spill and concatenate
/// for a row or two). Every record here has been mapped once, to find its partition,
/// so it maps again the same way.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawRecords {
    json: Vec<u8>,
    /// Where each record ends in `json`.
    ends: Vec<usize>,
}

/// What [`RawRecords`] count for against the memory bound per record, beside their
/// JSON: about what a row takes in Arrow beyond its values (offsets and validity of
/// ~60 string columns, the fixed-width ones).
pub const RAW_ROW_OVERHEAD: usize = 512;

impl RawRecords {
    /// Adds a record (its JSON, as it was in the file).
    pub fn push(&mut self, record: &[u8]) {
        self.json.extend_from_slice(record);
        self.ends.push(self.json.len());
    }

    /// Appends `other`'s records after these.
    pub fn append(&mut self, other: RawRecords) {
        if self.json.is_empty() {
            *self = other;
            return;
        }
        let base = self.json.len();
        self.json.extend_from_slice(&other.json);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Their JSON bytes.
    pub fn json_bytes(&self) -> usize {
        self.json.len()
    }

    /// What they count for against the memory bound: their JSON and
    /// [`RAW_ROW_OVERHEAD`] per record, about the Arrow memory of their rows.
    pub fn bytes(&self) -> usize {
        self.json.len() + RAW_ROW_OVERHEAD * self.ends.len()
    }

    /// The records, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.json[s..e])
    }

    /// The records as their JSON and each one's end in it (for a spill file).
    pub fn parts(&self) -> (&[u8], &[usize]) {
        (&self.json, &self.ends)
    }

    /// Records from [`parts`](Self::parts); `None` if the ends do not fit the JSON.
    pub fn from_parts(json: Vec<u8>, ends: Vec<usize>) -> Option<RawRecords> {
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        let fits = ends.last().is_none_or(|&e| e == json.len());
        (ordered && fits).then_some(RawRecords { json, ends })
    }

    /// Maps the records, which belong to partition `key`, into one batch. The
    /// partition's account and region stand in for the object key's (a record
    /// without `recipientAccountId` or `awsRegion` took the key's values, which its
    /// partition holds), so each row comes out as when the record was first mapped.
    ///
    /// # Errors
    /// If a record no longer maps, or the batch cannot be built (bugs).
    pub fn map(&self, key: &PartitionKey) -> Result<RecordBatch, WriteError> {
        let ctx = ObjectContext {
            account: Some(key.account().to_string()),
            region: Some(key.region().to_string()),
        };
        let mut builder = OcsfBuilder::new();
        for record in self.iter() {
            builder.append_bytes(record, &ctx)?;
        }
        Ok(builder.finish()?)
    }
}

/// Rows of one partition as they reach the buffers.
#[derive(Debug)]
pub enum Rows {
    /// Mapped rows.
    Batch(RecordBatch),
    /// Records kept as JSON.
    Json(RawRecords),
}

impl From<RecordBatch> for Rows {
    fn from(batch: RecordBatch) -> Self {
        Rows::Batch(batch)
    }
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Rows::Batch(b) => b.num_rows(),
            Rows::Json(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What they count for against the memory bound: a batch's Arrow memory, or
    /// [`RawRecords::bytes`].
    pub fn bytes(&self) -> usize {
        match self {
            Rows::Batch(b) => b.get_array_memory_size(),
            Rows::Json(r) => r.bytes(),
        }
    }

    /// The rows as one batch of partition `key` (records kept as JSON are mapped).
    ///
    /// # Errors
    /// As [`RawRecords::map`].
    pub fn into_batch(self, key: &PartitionKey) -> Result<RecordBatch, WriteError> {
        match self {
            Rows::Batch(b) => Ok(b),
            Rows::Json(r) => r.map(key),
        }
    }
}

/// Rows of one partition waiting to be written.
#[derive(Debug, Default)]
pub struct Pending {
    /// The batches, in arrival order.
    pub batches: Vec<RecordBatch>,
    /// Records kept as JSON, mapped when the partition is written
    /// ([`into_batches`](Self::into_batches)).
    pub raw: RawRecords,
    /// Arrow memory they hold (for `raw`, [`RawRecords::bytes`]).
    pub bytes: usize,
    /// Rows they hold.
    pub rows: usize,
    /// When the first row arrived (caller's clock, ms).
    pub since_ms: u64,
}

impl Pending {
    /// The rows as batches to write: `batches`, then `raw` mapped into one more.
    ///
    /// # Errors
    /// As [`RawRecords::map`].
    pub fn into_batches(self, key: &PartitionKey) -> Result<Vec<RecordBatch>, WriteError> {
        let mut batches = self.batches;
        if !self.raw.is_empty() {
            batches.push(self.raw.map(key)?);
        }
        Ok(batches)
    }
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

    /// Adds rows of one partition (a batch, or [`Rows::Json`]) at time `now_ms`.
    /// Returns the partitions that must be flushed now, removed from the buffers.
    pub fn add(
        &mut self,
        key: PartitionKey,
        rows: impl Into<Rows>,
        now_ms: u64,
    ) -> Vec<(PartitionKey, Pending)> {
        let rows = rows.into();
        let (bytes, count) = (rows.bytes(), rows.len());
        if count == 0 {
            return Vec::new();
        }
        let pending = self.parts.entry(key.clone()).or_insert_with(|| Pending {
            since_ms: now_ms,
            ..Pending::default()
        });
        match rows {
            Rows::Batch(batch) => pending.batches.push(batch),
            Rows::Json(raw) => pending.raw.append(raw),
        }
        pending.bytes += bytes;
        pending.rows += count;
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
    fn records_kept_as_json_count_against_the_bound_and_map_as_their_partition_says() {
        let rec = |id: &str, region: Option<&str>| {
            let region = region.map_or(String::new(), |r| format!(r#""awsRegion":"{r}","#));
            format!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"Root","accountId":"111111111111"}},"eventTime":"2024-01-01T00:00:0{id}Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeVpcs",{region}"eventID":"{id}","eventType":"AwsApiCall"}}"#
            )
        };
        let mut raw = RawRecords::default();
        raw.push(rec("1", Some("us-east-1")).as_bytes());
        raw.push(rec("2", None).as_bytes());
        let mut more = RawRecords::default();
        more.push(rec("3", None).as_bytes());
        let json = raw.json_bytes() + more.json_bytes();
        raw.append(more);
        assert_eq!(raw.len(), 3);
        assert_eq!(raw.bytes(), json + 3 * RAW_ROW_OVERHEAD);
        assert_eq!(raw.iter().nth(2), Some(rec("3", None).as_bytes()));
        let (bytes, ends) = raw.parts();
        let again = RawRecords::from_parts(bytes.to_vec(), ends.to_vec());
        assert_eq!(again.as_ref(), Some(&raw));
        assert_eq!(
            RawRecords::from_parts(bytes.to_vec(), vec![5, 3, json]),
            None
        );
        assert_eq!(RawRecords::from_parts(bytes.to_vec(), vec![5]), None);

        // Counted with the batches against the bound.
        let mut b = PartitionBuffers::new(FlushPolicy {
            flush_bytes: usize::MAX,
            max_buffer_bytes: usize::MAX,
            max_age_ms: None,
        });
        let k = key("222222222222");
        b.add(k.clone(), rows(10), 0);
        b.add(k.clone(), Rows::Json(raw.clone()), 0);
        assert!(
            b.add(k.clone(), Rows::Json(RawRecords::default()), 0)
                .is_empty()
        );
        assert_eq!(
            b.total_bytes(),
            rows(10).get_array_memory_size() + raw.bytes()
        );
        let pending = b.remove(&k).unwrap();
        assert_eq!((pending.rows, pending.batches.len()), (13, 1));

        // Mapped with the partition's account and region standing in for the object
        // key's: the records without awsRegion (or recipientAccountId) get them.
        let mapped = raw.map(&k).unwrap();
        assert_eq!(mapped.num_rows(), 3);
        let column = |name: &str| -> Vec<String> {
            let c = mapped.column_by_name(name).unwrap();
            let c = c.as_any().downcast_ref::<arrow_array::StringArray>();
            c.unwrap().iter().flatten().map(str::to_string).collect()
        };
        assert_eq!(column("region"), ["us-east-1"; 3]);
        assert_eq!(column("accountid"), ["222222222222"; 3]);
        let batches = pending.into_batches(&k).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1], mapped);
        // A record that does not map is an error, not a lost row.
        let mut bad = RawRecords::default();
        bad.push(b"{}");
        assert!(bad.map(&k).is_err());
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
