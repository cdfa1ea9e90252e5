//! The core's event bus: what every room publishes and every subscribed connection follows.
//!
//! Its slots hold an `Arc<Event>`, not an `Event` (issue 12): the channel holds all its slots
//! from the start (4096 slots of an 80-byte `Event` slot were 320 kB of the idle core's memory;
//! an `Arc` slot is half of that), and each subscriber's copy of an event is a count, not a deep
//! copy. Publishers hand it an `Event`; the sharing is the bus's business.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::protocol::Event;

/// The sending side, cloned into every room that publishes.
#[derive(Clone, Debug)]
pub struct Bus(broadcast::Sender<Arc<Event>>);

/// A subscription to the [`Bus`].
pub type BusReceiver = broadcast::Receiver<Arc<Event>>;

impl Bus {
    /// A bus that keeps `slots` events for a subscriber that is behind (one that falls further
    /// behind is told how many it lost).
    pub fn new(slots: usize) -> Bus {
        Bus(broadcast::channel(slots).0)
    }

    /// Publishes `event`; false when nobody subscribes (then it is dropped, which is fine for
    /// most events).
    pub fn publish(&self, event: Event) -> bool {
        self.0.send(Arc::new(event)).is_ok()
    }

    pub fn subscribe(&self) -> BusReceiver {
        self.0.subscribe()
    }

    /// How many subscribe now.
    pub fn receiver_count(&self) -> usize {
        self.0.receiver_count()
    }
}
