//! The one queue snapshot every collection method fills, so that one place (`metrics`) turns
//! any method's result into the same series.

/// What one collection of one instance found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per queue, in the order the method reports them (the order the gauges are sent in).
    /// A queue the method could not read is absent, never present with 0.
    pub queues: Vec<QueueStats>,
}

/// Counts for one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name, as it appears in the `queue:` tag.
    pub queue: String,
    /// Messages in the queue.
    pub messages: u64,
}

impl Snapshot {
    /// Adds `n` messages to `queue`, creating it at the end when it is new.
    pub fn add(&mut self, queue: &str, n: u64) {
        match self.queues.iter_mut().find(|q| q.queue == queue) {
            Some(q) => q.messages += n,
            None => self.queues.push(QueueStats {
                queue: queue.to_owned(),
                messages: n,
            }),
        }
    }

    /// The count for `queue`, if the snapshot has it.
    pub fn messages(&self, queue: &str) -> Option<u64> {
        self.queues
            .iter()
            .find(|q| q.queue == queue)
            .map(|q| q.messages)
    }
}
