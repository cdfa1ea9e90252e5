//! One agent's task queue and the bus's deadlines: pure bookkeeping that takes `now`.
//!
//! The rules, each a test below:
//! - a higher [`TaskPriority`] is served first; tasks of one priority in the order they came;
//! - the queue holds at most `capacity` tasks: one more is refused at once (`busy`), it never
//!   grows without bound;
//! - at most `concurrency` tasks are delivered (in flight) at once; the next is taken only when
//!   one finishes;
//! - every task has a deadline (its request time plus its timeout); [`Deadlines::expired`] names
//!   those past `now`, earliest first, whether they wait in a queue or are in flight.
//!
//! Nothing here knows about agents' names, connections, channels or clocks of its own: the room
//! (`super`) owns the queues and asks them.

use std::collections::{BTreeSet, HashSet, VecDeque};

use tokio::time::Instant;

use crate::model::TaskPriority;

/// A task's number on the bus.
pub type TaskId = u64;

/// The queue is full: the task was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub queued: usize,
}

/// One agent's queue: waiting tasks by priority, and the tasks in flight.
#[derive(Debug, Clone)]
pub struct AgentQueue {
    /// One FIFO lane per priority, indexed by [`lane`].
    lanes: [VecDeque<TaskId>; 4],
    queued: usize,
    in_flight: HashSet<TaskId>,
    capacity: usize,
    concurrency: usize,
}

fn lane(priority: TaskPriority) -> usize {
    match priority {
        TaskPriority::Low => 0,
        TaskPriority::Normal => 1,
        TaskPriority::High => 2,
        TaskPriority::Critical => 3,
    }
}

impl AgentQueue {
    /// A queue holding at most `capacity` waiting tasks and delivering at most `concurrency` at
    /// once (each at least 1).
    pub fn new(capacity: usize, concurrency: usize) -> AgentQueue {
        AgentQueue {
            lanes: Default::default(),
            queued: 0,
            in_flight: HashSet::new(),
            capacity: capacity.max(1),
            concurrency: concurrency.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Tasks waiting.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Tasks delivered and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Waiting and in flight: what "least loaded" compares.
    pub fn load(&self) -> usize {
        self.queued + self.in_flight.len()
    }

    /// Changes the bounds (a registration again); tasks already taken stay.
    pub fn resize(&mut self, capacity: usize, concurrency: usize) {
        self.capacity = capacity.max(1);
        self.concurrency = concurrency.max(1);
    }

    /// Queues a task behind those of its priority, or refuses it when the queue is full.
    pub fn push(&mut self, id: TaskId, priority: TaskPriority) -> Result<(), Full> {
        if self.queued >= self.capacity {
            return Err(Full {
                queued: self.queued,
            });
        }
        self.lanes[lane(priority)].push_back(id);
        self.queued += 1;
        Ok(())
    }

    /// The next task to deliver, if one waits and a slot is free; it counts as in flight from
    /// now on.
    pub fn take(&mut self) -> Option<TaskId> {
        if self.in_flight.len() >= self.concurrency {
            return None;
        }
        let id = self.lanes.iter_mut().rev().find_map(VecDeque::pop_front)?;
        self.queued -= 1;
        self.in_flight.insert(id);
        Some(id)
    }

    /// Forgets a task wherever it is (finished, timed out, withdrawn); true if it was here.
    pub fn remove(&mut self, id: TaskId, priority: TaskPriority) -> bool {
        if self.in_flight.remove(&id) {
            return true;
        }
        let lane = &mut self.lanes[lane(priority)];
        match lane.iter().position(|t| *t == id) {
            Some(i) => {
                lane.remove(i);
                self.queued -= 1;
                true
            }
            None => false,
        }
    }

    /// Is the task delivered and not finished?
    pub fn is_in_flight(&self, id: TaskId) -> bool {
        self.in_flight.contains(&id)
    }

    /// Empties the queue: the tasks in flight (any order), then the waiting ones in the order
    /// they would have been delivered.
    pub fn drain(&mut self) -> (Vec<TaskId>, Vec<TaskId>) {
        let in_flight = self.in_flight.drain().collect();
        let waiting = self
            .lanes
            .iter_mut()
            .rev()
            .flat_map(|lane| lane.drain(..))
            .collect();
        self.queued = 0;
        (in_flight, waiting)
    }
}

/// Every task's deadline, earliest first.
#[derive(Debug, Default, Clone)]
pub struct Deadlines {
    armed: BTreeSet<(Instant, TaskId)>,
}

impl Deadlines {
    pub fn arm(&mut self, id: TaskId, at: Instant) {
        self.armed.insert((at, id));
    }

    pub fn disarm(&mut self, id: TaskId, at: Instant) {
        self.armed.remove(&(at, id));
    }

    /// The earliest deadline, for the room's one timer.
    pub fn next(&self) -> Option<Instant> {
        self.armed.first().map(|(at, _)| *at)
    }

    /// Removes and returns the tasks whose deadline is at or before `now`, earliest first.
    pub fn expired(&mut self, now: Instant) -> Vec<TaskId> {
        let mut out = Vec::new();
        while let Some(&(at, id)) = self.armed.first() {
            if at > now {
                break;
            }
            self.armed.pop_first();
            out.push(id);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.armed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskPriority::*;
    use std::time::Duration;

    fn take_all(q: &mut AgentQueue) -> Vec<TaskId> {
        let mut out = Vec::new();
        while let Some(id) = q.take() {
            out.push(id);
            q.remove(id, Normal);
        }
        out
    }

    #[test]
    fn higher_priorities_are_served_first() {
        let mut q = AgentQueue::new(16, 1);
        q.push(1, Low).unwrap();
        q.push(2, Normal).unwrap();
        q.push(3, Critical).unwrap();
        q.push(4, High).unwrap();
        assert_eq!(take_all(&mut q), vec![3, 4, 2, 1]);
    }

    #[test]
    fn tasks_of_one_priority_are_served_in_the_order_they_came() {
        let mut q = AgentQueue::new(16, 1);
        for id in 1..=5 {
            q.push(id, High).unwrap();
        }
        q.push(6, Critical).unwrap();
        for id in 7..=9 {
            q.push(id, High).unwrap();
        }
        assert_eq!(take_all(&mut q), vec![6, 1, 2, 3, 4, 5, 7, 8, 9]);
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_takes_again_when_room_frees() {
        let mut q = AgentQueue::new(2, 1);
        q.push(1, Normal).unwrap();
        q.push(2, Normal).unwrap();
        assert_eq!(q.push(3, Critical), Err(Full { queued: 2 }));
        assert_eq!(q.queued(), 2);
        assert_eq!(q.take(), Some(1), "delivering one frees its place");
        q.push(3, Critical).unwrap();
        assert_eq!(q.load(), 3);
    }

    #[test]
    fn no_more_than_concurrency_tasks_are_in_flight() {
        let mut q = AgentQueue::new(16, 2);
        for id in 1..=4 {
            q.push(id, Normal).unwrap();
        }
        assert_eq!(q.take(), Some(1));
        assert_eq!(q.take(), Some(2));
        assert_eq!(q.take(), None, "both slots taken");
        assert_eq!(q.in_flight(), 2);
        assert!(q.remove(1, Normal), "one finishes");
        assert_eq!(q.take(), Some(3));
        assert_eq!(q.take(), None);
    }

    #[test]
    fn a_withdrawn_task_leaves_its_lane_and_the_rest_keep_their_order() {
        let mut q = AgentQueue::new(16, 1);
        for id in 1..=4 {
            q.push(id, Low).unwrap();
        }
        assert!(q.remove(2, Low));
        assert!(!q.remove(2, Low), "only once");
        assert_eq!(q.queued(), 3);
        assert_eq!(take_all(&mut q), vec![1, 3, 4]);
    }

    #[test]
    fn draining_gives_in_flight_then_waiting_in_delivery_order() {
        let mut q = AgentQueue::new(16, 1);
        q.push(1, Low).unwrap();
        q.push(2, Low).unwrap();
        q.push(3, High).unwrap();
        assert_eq!(q.take(), Some(3));
        let (in_flight, waiting) = q.drain();
        assert_eq!(in_flight, vec![3]);
        assert_eq!(waiting, vec![1, 2]);
        assert_eq!(q.load(), 0);
    }

    #[test]
    fn deadlines_expire_earliest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.arm(1, t0 + Duration::from_secs(30));
        d.arm(2, t0 + Duration::from_secs(5));
        d.arm(3, t0 + Duration::from_secs(10));
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(5)));
        assert!(d.expired(t0 + Duration::from_millis(4999)).is_empty());
        assert_eq!(d.expired(t0 + Duration::from_secs(10)), vec![2, 3]);
        d.disarm(1, t0 + Duration::from_secs(30));
        assert!(d.is_empty());
        assert_eq!(d.next(), None);
    }
}
