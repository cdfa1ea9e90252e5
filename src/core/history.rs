//! The history room: a short memory per component of what the event bus carried (process samples,
//! restarts, reported response times, issues and healing attempts), so a panel opened now draws
//! the last minutes at once instead of starting from an empty chart. Answers
//! [`Request::History`].
//!
//! It only listens: it never asks the supervisor for anything and decides nothing about
//! components. Everything it keeps is bounded: per component at most [`MAX_SAMPLES`] samples no
//! older than [`RETAIN`], and the last [`MAX_TIMELINE`] issues and healing attempts; at most
//! [`MAX_COMPONENTS`] components. Samples arrive every 2 s while a client watches metrics and
//! every 10 s otherwise (the supervisor's metrics tick), so ten minutes is 60 to 300 samples.
//!
//! A lagging receiver (a burst of more than the bus holds) loses samples, never blocks the bus.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::console_room::misrouted;
use super::supervisor::Answer;
use crate::model::{ComponentStatus, RunState};
use crate::protocol::{
    ComponentHistory, ErrorCode, Event, HistorySample, Request, Response, TimelineEntry,
};

/// How far back samples are kept.
pub const RETAIN: Duration = Duration::from_secs(10 * 60);
/// Samples kept per component at most (ten minutes at the 2 s tick).
pub const MAX_SAMPLES: usize = 300;
/// Issues and healing attempts kept per component.
pub const MAX_TIMELINE: usize = 50;
/// Components remembered at most.
pub const MAX_COMPONENTS: usize = 10_000;

/// Samples closer than this to the previous one, taken from status changes rather than the
/// metrics tick, are merged into it (a crash loop must not flood the ring).
const MIN_STATUS_GAP: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Component {
    samples: VecDeque<HistorySample>,
    timeline: VecDeque<TimelineEntry>,
    restarts: u32,
    response_ms: Option<f64>,
}

/// The history of every component seen. A plain value: events go in, answers come out.
#[derive(Debug, Default)]
pub struct History {
    components: HashMap<String, Component>,
}

impl History {
    fn entry(&mut self, name: &str) -> Option<&mut Component> {
        if !self.components.contains_key(name) && self.components.len() >= MAX_COMPONENTS {
            return None;
        }
        Some(self.components.entry(name.to_string()).or_default())
    }

    /// Takes in one event from the bus.
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::Metrics {
                component,
                metrics,
                at,
            } => {
                if let Some(c) = self.entry(component) {
                    let sample = HistorySample {
                        at: *at,
                        metrics: Some(metrics.clone()),
                        restarts: c.restarts,
                        response_ms: c.response_ms,
                    };
                    c.push(sample, false);
                }
            }
            Event::Component { status } => self.on_status(status),
            Event::Issue { issue } => {
                if let Some(c) = self.entry(&issue.component) {
                    c.note(TimelineEntry::Issue {
                        issue: issue.clone(),
                    });
                }
            }
            Event::Healing { record } => {
                if let Some(c) = self.entry(&record.issue.component) {
                    c.note(TimelineEntry::Healing {
                        record: record.clone(),
                    });
                }
            }
            Event::StateChanged { .. }
            | Event::Log { .. }
            | Event::Notice { .. }
            | Event::Command { .. }
            | Event::PanelInput { .. }
            | Event::PanelText { .. } => {}
        }
    }

    /// A status change: a new restart count or a lost process is a point on the charts at once,
    /// even between metric ticks.
    fn on_status(&mut self, status: &ComponentStatus) {
        let Some(c) = self.entry(&status.name) else {
            return;
        };
        let response_ms = status.reported.as_ref().map(|r| r.response_time);
        let restarted = status.restarts != c.restarts;
        c.restarts = status.restarts;
        c.response_ms = response_ms.or(c.response_ms);
        let has_process =
            matches!(status.state, RunState::Running | RunState::Stopping) && status.pid.is_some();
        let lost_process = !has_process && c.samples.back().is_some_and(|s| s.metrics.is_some());
        if restarted || lost_process {
            let at = status
                .reported
                .as_ref()
                .map(|r| r.timestamp)
                .filter(|_| has_process)
                .unwrap_or_else(SystemTime::now);
            let sample = HistorySample {
                at,
                metrics: if has_process {
                    status.metrics.clone()
                } else {
                    None
                },
                restarts: c.restarts,
                response_ms: c.response_ms,
            };
            c.push(sample, true);
        }
    }

    /// What [`Request::History`] answers.
    pub fn of(&self, component: &str) -> ComponentHistory {
        let Some(c) = self.components.get(component) else {
            return ComponentHistory {
                component: component.to_string(),
                ..ComponentHistory::default()
            };
        };
        ComponentHistory {
            component: component.to_string(),
            samples: c.samples.iter().cloned().collect(),
            timeline: c.timeline.iter().cloned().collect(),
        }
    }
}

impl Component {
    /// Adds a sample, dropping what is too old or too many. A sample from a status change that
    /// comes right after another one replaces it.
    fn push(&mut self, sample: HistorySample, from_status: bool) {
        if from_status
            && let Some(last) = self.samples.back_mut()
            && sample
                .at
                .duration_since(last.at)
                .is_ok_and(|gap| gap < MIN_STATUS_GAP)
        {
            *last = sample;
            return;
        }
        let newest = sample.at;
        self.samples.push_back(sample);
        while self.samples.len() > MAX_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|s| newest.duration_since(s.at).is_ok_and(|age| age > RETAIN))
        {
            self.samples.pop_front();
        }
    }

    fn note(&mut self, entry: TimelineEntry) {
        if self.timeline.len() == MAX_TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(entry);
    }
}

/// Sends history requests to the room.
#[derive(Clone)]
pub struct HistoryHandle {
    tx: mpsc::UnboundedSender<(String, oneshot::Sender<ComponentHistory>)>,
}

impl HistoryHandle {
    /// Starts the room's task, subscribed to `bus`; it ends when every handle is dropped or the
    /// bus closes.
    pub fn spawn(bus: &broadcast::Sender<Event>) -> HistoryHandle {
        let mut events = bus.subscribe();
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, oneshot::Sender<ComponentHistory>)>();
        tokio::spawn(async move {
            let mut history = History::default();
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(event) => history.on_event(&event),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::debug!(missed, "history lagged behind the bus");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    asked = rx.recv() => match asked {
                        Some((component, reply)) => {
                            let _ = reply.send(history.of(&component));
                        }
                        None => return,
                    },
                }
            }
        });
        HistoryHandle { tx }
    }

    /// Asks the room and waits for its answer.
    pub async fn request(&self, request: Request) -> Answer {
        let Request::History { component } = request else {
            return Err(misrouted(&request));
        };
        let gone = || {
            (
                ErrorCode::ShuttingDown,
                "the core is shutting down".to_string(),
            )
        };
        let (reply, rx) = oneshot::channel();
        self.tx.send((component, reply)).map_err(|_| gone())?;
        let history = rx.await.map_err(|_| gone())?;
        Ok(Response::History { history })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HealingAction, Issue, ProcessMetrics, RecoveryRecord, Severity};

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn metrics(component: &str, at: SystemTime, cpu: f64) -> Event {
        Event::Metrics {
            component: component.into(),
            metrics: ProcessMetrics {
                cpu_percent: cpu,
                rss_bytes: 1 << 20,
                open_fds: 4,
            },
            at,
        }
    }

    #[test]
    fn samples_are_kept_for_ten_minutes_at_most() {
        let mut h = History::default();
        for n in 0..400 {
            h.on_event(&metrics("api", t(n * 10), n as f64));
        }
        let samples = h.of("api").samples;
        assert_eq!(samples.len(), 61, "ten minutes of 10 s samples, both ends");
        assert_eq!(samples.last().unwrap().at, t(3990));
        assert_eq!(samples.first().unwrap().at, t(3390));
        for n in 0..1000 {
            h.on_event(&metrics("db", t(n), 1.0));
        }
        assert_eq!(h.of("db").samples.len(), MAX_SAMPLES);
    }

    #[test]
    fn an_unknown_component_has_an_empty_history() {
        let h = History::default();
        let answer = h.of("ghost");
        assert_eq!(answer.component, "ghost");
        assert!(answer.samples.is_empty() && answer.timeline.is_empty());
    }

    #[test]
    fn issues_and_healing_attempts_form_a_bounded_timeline() {
        let mut h = History::default();
        for n in 0..MAX_TIMELINE + 5 {
            let issue = Issue::new("api", &format!("crash{n}"), Severity::Error);
            h.on_event(&Event::Issue {
                issue: issue.clone(),
            });
            h.on_event(&Event::Healing {
                record: RecoveryRecord {
                    issue,
                    strategy: "restart".into(),
                    successful: true,
                    action: HealingAction::Restart,
                    timestamp: t(n as u64),
                    duration: Duration::from_millis(5),
                },
            });
        }
        let timeline = h.of("api").timeline;
        assert_eq!(timeline.len(), MAX_TIMELINE);
        assert!(matches!(
            timeline.last(),
            Some(TimelineEntry::Healing { .. })
        ));
        assert!(h.of("db").timeline.is_empty(), "per component");
    }

    #[tokio::test]
    async fn the_room_answers_from_what_the_bus_carried() {
        let (bus, _) = broadcast::channel(16);
        let handle = HistoryHandle::spawn(&bus);
        bus.send(metrics("api", t(1), 3.0)).expect("a receiver");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let answer = handle
                .request(Request::History {
                    component: "api".into(),
                })
                .await
                .expect("answered");
            let Response::History { history } = answer else {
                panic!("a history answer");
            };
            if history.samples.len() == 1 {
                assert_eq!(history.samples[0].at, t(1));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the sample arrives");
            tokio::task::yield_now().await;
        }
        assert!(handle.request(Request::Ping).await.is_err(), "misrouted");
    }
}
