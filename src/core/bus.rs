//! The core's event bus: what every room publishes and every subscribed connection follows.
//!
//! Its slots hold an `Arc<Published>`, not an `Event` (issue 12): the channel holds all its
//! slots from the start (4096 slots of an 80-byte `Event` slot were 320 kB of the idle core's
//! memory; an `Arc` slot is half of that), and each subscriber's copy of an event is a count, not
//! a deep copy. Publishers hand it an `Event`; the sharing is the bus's business.
//!
//! An event is also encoded for the wire once, by the first connection that sends it, and every
//! other connection queues that same line ([`Published::line`]). Before, each subscribed
//! connection encoded its own copy: with 20 log subscribers that never read and a component
//! writing 160 MB of 16-kB lines, the core spent 4.7-5.2 s of CPU (0.6 s with none), took 3 s
//! instead of 0.9, and peaked at 122 MB resident, its 20 queues holding 20 copies of the same
//! lines; now 0.9-1.1 s of CPU, 1.0-1.1 s, 23 MB (`scripts/bench/log_fanout.py`).

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::protocol::Event;

/// The sending side, cloned into every room that publishes.
#[derive(Clone, Debug)]
pub struct Bus(broadcast::Sender<Arc<Published>>);

/// A subscription to the [`Bus`].
pub type BusReceiver = broadcast::Receiver<Arc<Published>>;

impl Bus {
    /// A bus that keeps `slots` events for a subscriber that is behind (one that falls further
    /// behind is told how many it lost).
    pub fn new(slots: usize) -> Bus {
        Bus(broadcast::channel(slots).0)
    }

    /// Publishes `event`; false when nobody subscribes (then it is dropped, which is fine for
    /// most events).
    pub fn publish(&self, event: Event) -> bool {
        self.0.send(Arc::new(Published::new(event))).is_ok()
    }

    pub fn subscribe(&self) -> BusReceiver {
        self.0.subscribe()
    }

    /// How many subscribe now.
    pub fn receiver_count(&self) -> usize {
        self.0.receiver_count()
    }
}

/// One event on the bus, shared by its subscribers.
#[derive(Debug)]
pub struct Published {
    event: Event,
    /// The event's line for a client, encoded at its first use.
    line: OnceLock<Arc<[u8]>>,
}

impl Published {
    pub fn new(event: Event) -> Published {
        Published {
            event,
            line: OnceLock::new(),
        }
    }

    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event as a client reads it: the line of a `ServerMessage::Event`, newline included.
    /// Encoded by the first connection that sends it; the others send the same bytes. A
    /// connection queues the line, not the event: what waits for a slow client is one copy of
    /// the bytes it will be sent, however many wait for it.
    pub fn line(&self) -> &Arc<[u8]> {
        self.line.get_or_init(|| {
            /// `ServerMessage::Event` by reference: the same JSON without a copy of the event.
            #[derive(serde::Serialize)]
            #[serde(tag = "type", rename = "event")]
            struct EventLine<'a> {
                event: &'a Event,
            }
            crate::protocol::encode(&EventLine { event: &self.event }).into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LogStream;
    use crate::protocol::{ServerMessage, encode};

    /// Events of every shape the tests of the protocol know: the shared line is exactly what
    /// encoding a `ServerMessage::Event` of a copy gives, and is made once.
    #[test]
    fn the_shared_line_is_the_server_messages_line_made_once() {
        let events = crate::protocol::tests::sample_events();
        assert!(events.len() > 5);
        for event in events {
            let published = Published::new(event.clone());
            let line = published.line();
            assert_eq!(&line[..], &encode(&ServerMessage::Event { event })[..]);
            assert!(Arc::ptr_eq(line, published.line()), "encoded again");
        }
        let log = Published::new(Event::Log {
            line: Box::new(crate::model::LogLine {
                component: "api".into(),
                at: std::time::SystemTime::UNIX_EPOCH,
                stream: LogStream::Stdout,
                text: "quote \" and newline \n".into(),
            }),
        });
        assert!(log.line().ends_with(b"\n"));
        assert_eq!(log.line().iter().filter(|b| **b == b'\n').count(), 1);
    }
}
