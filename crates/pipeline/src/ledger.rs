//! The ack ledger: which SQS messages may be deleted. A message is deleted only when
//! every object it named is done and every partition flush that holds rows of those
//! objects is durable. A partition's buffer is identified by its generation, which
//! advances each time the buffer is taken for a flush, so rows added later wait for
//! the next flush. Pure bookkeeping, no I/O: the worker acts on what it returns.

use std::collections::{HashMap, HashSet};

use trailhouse_lake::PartitionKey;

/// Identifies a message in the ledger (assigned by the worker).
pub type MessageId = u64;

/// One buffer of one partition: the key and its generation.
pub type BufferId = (PartitionKey, u64);

#[derive(Debug)]
struct Entry {
    receipt: String,
    objects_left: usize,
    deps: HashSet<BufferId>,
    failed: bool,
}

/// What became of a message once nothing more is pending for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Everything is durable: delete it (receipt handle).
    Delete(String),
    /// Something failed: leave it to reappear (stop extending its visibility).
    Release(String),
}

/// The ledger.
#[derive(Debug, Default)]
pub struct AckLedger {
    messages: HashMap<MessageId, Entry>,
    generation: HashMap<PartitionKey, u64>,
    waiting: HashMap<BufferId, Vec<MessageId>>,
}

impl AckLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages not yet settled.
    pub fn in_flight(&self) -> usize {
        self.messages.len()
    }

    /// Receipt handles of the messages whose visibility must be kept extended.
    pub fn receipts(&self) -> Vec<String> {
        self.messages
            .values()
            .filter(|e| !e.failed)
            .map(|e| e.receipt.clone())
            .collect()
    }

    /// Registers a message that names `objects` objects. A message with none (a test
    /// event, only removals) settles at once.
    pub fn register(&mut self, id: MessageId, receipt: String, objects: usize) -> Option<Settled> {
        self.messages.insert(
            id,
            Entry {
                receipt,
                objects_left: objects,
                deps: HashSet::new(),
                failed: false,
            },
        );
        self.settle(id)
    }

    /// Rows of message `id` went into the open buffer of `key`.
    pub fn rows(&mut self, id: MessageId, key: &PartitionKey) {
        let generation = *self.generation.entry(key.clone()).or_insert(0);
        let buffer = (key.clone(), generation);
        if let Some(e) = self.messages.get_mut(&id)
            && e.deps.insert(buffer.clone())
        {
            self.waiting.entry(buffer).or_default().push(id);
        }
    }

    /// The open buffer of `key` is being taken for a flush: returns its id and opens
    /// the next generation.
    pub fn flushing(&mut self, key: &PartitionKey) -> BufferId {
        let g = self.generation.entry(key.clone()).or_insert(0);
        let id = (key.clone(), *g);
        *g += 1;
        id
    }

    /// Message `id` waits for one more `object_done` or `object_failed`: an object of
    /// it ended with rows still to be handed out (they come before that call).
    pub fn hold(&mut self, id: MessageId) {
        if let Some(e) = self.messages.get_mut(&id) {
            e.objects_left += 1;
        }
    }

    /// One object of message `id` is done (written or quarantined: durable once the
    /// buffers it fed are flushed).
    pub fn object_done(&mut self, id: MessageId) -> Option<Settled> {
        let e = self.messages.get_mut(&id)?;
        e.objects_left = e.objects_left.saturating_sub(1);
        self.settle(id)
    }

    /// One object of message `id` could not be processed (e.g. an S3 error): the
    /// message must come back.
    pub fn object_failed(&mut self, id: MessageId) -> Option<Settled> {
        let e = self.messages.get_mut(&id)?;
        e.objects_left = e.objects_left.saturating_sub(1);
        e.failed = true;
        self.settle(id)
    }

    /// The flush of `buffer` finished: durable (`ok`) or not. Returns the messages
    /// that settled.
    pub fn flushed(&mut self, buffer: &BufferId, ok: bool) -> Vec<Settled> {
        let Some(ids) = self.waiting.remove(buffer) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(e) = self.messages.get_mut(&id) {
                e.deps.remove(buffer);
                e.failed |= !ok;
            }
            out.extend(self.settle(id));
        }
        out
    }

    fn settle(&mut self, id: MessageId) -> Option<Settled> {
        let e = self.messages.get(&id)?;
        if e.objects_left > 0 || !e.deps.is_empty() {
            return None;
        }
        let e = self.messages.remove(&id)?;
        Some(if e.failed {
            Settled::Release(e.receipt)
        } else {
            Settled::Delete(e.receipt)
        })
    }

    /// Whether any pending message has failed.
    pub fn any_failed(&self) -> bool {
        self.messages.values().any(|e| e.failed)
    }

    /// Receipts of the pending messages that have failed.
    pub fn failed_receipts(&self) -> HashSet<String> {
        self.messages
            .values()
            .filter(|e| e.failed)
            .map(|e| e.receipt.clone())
            .collect()
    }

    /// Gives up on every message still pending (shutdown with work left): they are
    /// released to reappear.
    pub fn release_all(&mut self) -> Vec<Settled> {
        self.waiting.clear();
        self.messages
            .drain()
            .map(|(_, e)| Settled::Release(e.receipt))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailhouse_ocsf::{OcsfClass, Source};

    fn key(day: u32) -> PartitionKey {
        PartitionKey::new(
            Source::CloudTrailMgmt,
            OcsfClass::ApiActivity,
            "us-east-1",
            "1",
            day,
        )
        .unwrap()
    }

    #[test]
    fn deleted_only_when_objects_done_and_buffers_durable() {
        let mut l = AckLedger::new();
        assert_eq!(l.register(1, "r1".into(), 2), None);
        l.rows(1, &key(20240101));
        l.rows(1, &key(20240102));
        assert_eq!(l.object_done(1), None);
        assert_eq!(l.object_done(1), None, "rows still buffered");
        let b1 = l.flushing(&key(20240101));
        assert!(l.flushed(&b1, true).is_empty(), "one buffer still open");
        let b2 = l.flushing(&key(20240102));
        assert_eq!(l.flushed(&b2, true), vec![Settled::Delete("r1".into())]);
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn rows_after_a_flush_started_wait_for_the_next_generation() {
        let mut l = AckLedger::new();
        l.register(1, "r1".into(), 1);
        l.register(2, "r2".into(), 1);
        l.rows(1, &key(20240101));
        let g0 = l.flushing(&key(20240101));
        l.rows(2, &key(20240101));
        l.object_done(1);
        l.object_done(2);
        assert_eq!(l.flushed(&g0, true), vec![Settled::Delete("r1".into())]);
        let g1 = l.flushing(&key(20240101));
        assert_ne!(g0, g1);
        assert_eq!(l.flushed(&g1, true), vec![Settled::Delete("r2".into())]);
    }

    #[test]
    fn a_held_object_settles_its_message_only_when_released() {
        // Message 1's one object is done while its last rows are still carried in a
        // processor (held); they arrive later, in a buffer that must flush first.
        let mut l = AckLedger::new();
        l.register(1, "r1".into(), 1);
        l.rows(1, &key(20240101));
        l.hold(1);
        assert_eq!(l.object_done(1), None, "held: its rows are not all out");
        let b0 = l.flushing(&key(20240101));
        assert!(l.flushed(&b0, true).is_empty(), "still held");
        l.rows(1, &key(20240102));
        assert_eq!(l.object_done(1), None, "released, rows still buffered");
        let b1 = l.flushing(&key(20240102));
        assert_eq!(l.flushed(&b1, true), vec![Settled::Delete("r1".into())]);
        // Held rows lost to a bug: the release fails the message.
        l.register(2, "r2".into(), 1);
        l.hold(2);
        assert_eq!(l.object_done(2), None);
        assert_eq!(l.object_failed(2), Some(Settled::Release("r2".into())));
    }

    #[test]
    fn failures_release_instead_of_delete() {
        let mut l = AckLedger::new();
        l.register(1, "r1".into(), 2);
        l.rows(1, &key(20240101));
        assert_eq!(l.object_failed(1), None);
        assert_eq!(
            l.receipts(),
            Vec::<String>::new(),
            "a failed message is no longer kept invisible"
        );
        l.object_done(1);
        let b = l.flushing(&key(20240101));
        assert_eq!(l.flushed(&b, true), vec![Settled::Release("r1".into())]);

        l.register(2, "r2".into(), 1);
        l.rows(2, &key(20240103));
        l.object_done(2);
        let b = l.flushing(&key(20240103));
        assert_eq!(
            l.flushed(&b, false),
            vec![Settled::Release("r2".into())],
            "a failed flush loses nothing"
        );
    }

    #[test]
    fn empty_messages_settle_at_once_and_shutdown_releases() {
        let mut l = AckLedger::new();
        assert_eq!(
            l.register(1, "t".into(), 0),
            Some(Settled::Delete("t".into()))
        );
        l.register(2, "r2".into(), 1);
        assert_eq!(l.receipts(), vec!["r2".to_string()]);
        assert_eq!(l.release_all(), vec![Settled::Release("r2".into())]);
        assert_eq!(l.in_flight(), 0);
    }
}
