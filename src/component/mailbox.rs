//! The mailbox of a library handle's background task: how a cheap handle talks to the one task
//! that owns its state (STYLE habit 1).
//!
//! A handle is made by plain, synchronous constructors (`SupervisorClient::new`,
//! `HealingFactory::create` …) that may run before any Tokio runtime exists, and its synchronous
//! methods (`set_command_handler`, `define_panel`, `on_action` …) only queue a command. So the
//! owner task is built at construction but spawned by the first call that waits for an answer,
//! which runs inside the runtime. Commands queued before that wait in the channel, in order.
//!
//! This module knows nothing about what the commands mean, and never runs the owner's work itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

/// The owner task has ended (it panicked), so nothing more can be asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stopped;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A handle's side of its owner task.
pub(crate) struct Mailbox<C> {
    inbox: mpsc::UnboundedSender<C>,
    /// The owner task until the first [`Mailbox::ask`] spawns it; `None` afterwards. A std mutex
    /// because its only section is an `Option::take`, never held across an `.await`.
    unstarted: Mutex<Option<Task>>,
}

impl<C: Send + 'static> Mailbox<C> {
    /// A mailbox whose owner task is `owner(receiver)`; nothing runs yet. The task ends when the
    /// receiver yields `None`, i.e. when the mailbox (the handle) is dropped.
    pub(crate) fn new<F, Fut>(owner: F) -> Mailbox<C>
    where
        F: FnOnce(mpsc::UnboundedReceiver<C>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (inbox, receiver) = mpsc::unbounded_channel();
        Mailbox {
            inbox,
            unstarted: Mutex::new(Some(Box::pin(owner(receiver)))),
        }
    }

    /// Queues a command that needs no answer. A command for an owner that has ended is dropped:
    /// the next [`Mailbox::ask`] reports [`Stopped`].
    pub(crate) fn post(&self, command: C) {
        let _ = self.inbox.send(command);
    }

    /// Starts the owner task if it is not running yet, sends the command `make` builds around the
    /// answer's sender, and waits for the answer.
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> C,
    ) -> Result<T, Stopped> {
        self.start();
        let (reply, answer) = oneshot::channel();
        self.inbox.send(make(reply)).map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// A sender for the owner's own helper tasks that does not keep the owner alive: when the
    /// handle is dropped the owner ends even while a helper still runs.
    pub(crate) fn weak(&self) -> mpsc::WeakUnboundedSender<C> {
        self.inbox.downgrade()
    }

    fn start(&self) {
        let task = self
            .unstarted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            tokio::spawn(task);
        }
    }
}

/// Asks the owner through a weak sender (from a helper task); `None` when the owner has gone.
pub(crate) async fn ask_weak<C, T>(
    owner: &mpsc::WeakUnboundedSender<C>,
    make: impl FnOnce(oneshot::Sender<T>) -> C,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    owner.upgrade()?.send(make(reply)).ok()?;
    answer.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Command {
        Add(u32),
        Total(oneshot::Sender<u32>),
    }

    async fn counter(mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut total = 0;
        while let Some(command) = inbox.recv().await {
            match command {
                Command::Add(n) => total += n,
                Command::Total(reply) => {
                    let _ = reply.send(total);
                }
            }
        }
    }

    #[test]
    fn commands_posted_before_a_runtime_exists_are_kept_in_order() {
        let mailbox = Mailbox::new(counter);
        mailbox.post(Command::Add(2));
        mailbox.post(Command::Add(3));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let total = runtime.block_on(mailbox.ask(Command::Total));
        assert_eq!(total, Ok(5));
    }

    #[tokio::test]
    async fn a_weak_sender_does_not_keep_the_owner_alive() {
        let mailbox = Mailbox::new(counter);
        let weak = mailbox.weak();
        mailbox.post(Command::Add(1));
        assert_eq!(mailbox.ask(Command::Total).await, Ok(1), "started");
        assert_eq!(ask_weak(&weak, Command::Total).await, Some(1));
        drop(mailbox);
        assert_eq!(ask_weak(&weak, Command::Total).await, None);
    }
}
