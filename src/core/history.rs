//! The history room: a short memory per component (process samples, restarts, reported response
//! times, and the healing actions it saw begin), so a panel opened now draws the last minutes at
//! once instead of starting from an empty chart. Answers [`Request::History`], adding the
//! component's issues from the issue journal.
//!
//! It asks the supervisor for the fleet's status every [`SAMPLE_EVERY`] (a status request reads
//! /proc for every running component: measured 8 µs per component in a release build, so 1,000
//! components cost about 8 ms every 5 s) rather than listening to the event bus: a bus receiver
//! gets a copy of every event, log lines included, and under a log flood those copies cost the
//! core a measurable share of its throughput. It decides nothing about components and the
//! supervisor never waits on it.
//!
//! Everything it keeps is bounded: per component at most [`MAX_SAMPLES`] samples no older than
//! [`RETAIN`] and the last [`MAX_TIMELINE`] actions; at most [`MAX_COMPONENTS`] components (a
//! component gone from the fleet is forgotten).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::console_room::misrouted;
use super::journal::IssueJournal;
use super::supervisor::{Answer, NO_CONN, SupervisorHandle};
use crate::model::{ComponentStatus, HealingAction, RunState};
use crate::protocol::{ComponentHistory, HistorySample, Request, Response, TimelineEntry};

/// How often the room samples the fleet.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How far back samples are kept.
pub const RETAIN: Duration = Duration::from_secs(10 * 60);
/// Samples kept per component at most (ten minutes at [`SAMPLE_EVERY`]).
pub const MAX_SAMPLES: usize = 120;
/// Issues and healing actions answered per component.
pub const MAX_TIMELINE: usize = 50;
/// Components remembered at most.
pub const MAX_COMPONENTS: usize = 10_000;

#[derive(Debug, Default)]
struct Component {
    samples: VecDeque<HistorySample>,
    actions: VecDeque<(SystemTime, HealingAction)>,
    last_action: Option<HealingAction>,
}

/// The history of the fleet. A plain value: statuses go in with their time, answers come out.
#[derive(Debug, Default)]
pub struct History {
    components: HashMap<String, Component>,
}

/// Does the component have a process whose figures mean something now?
fn has_process(status: &ComponentStatus) -> bool {
    match status.state {
        RunState::Running | RunState::Stopping => true,
        RunState::Stopped
        | RunState::Starting
        | RunState::Backoff
        | RunState::Exited
        | RunState::BreakerOpen
        | RunState::Failed => false,
    }
}

impl History {
    /// Takes in the fleet's status at `now`; components not in it are forgotten.
    pub fn on_fleet(&mut self, fleet: &[ComponentStatus], now: SystemTime) {
        self.components
            .retain(|name, _| fleet.iter().any(|c| c.name == *name));
        for status in fleet {
            self.on_status(status, now);
        }
    }

    fn on_status(&mut self, status: &ComponentStatus, now: SystemTime) {
        if !self.components.contains_key(&status.name) && self.components.len() >= MAX_COMPONENTS {
            return;
        }
        let c = self.components.entry(status.name.clone()).or_default();
        let running = has_process(status);
        c.push(HistorySample {
            at: now,
            metrics: status.metrics.clone().filter(|_| running),
            restarts: status.restarts,
            response_ms: status.reported.as_ref().map(|r| r.response_time),
        });
        if status.healing.last_action != c.last_action {
            c.last_action = status.healing.last_action.clone();
            if let Some(action) = &c.last_action {
                if c.actions.len() == MAX_TIMELINE {
                    c.actions.pop_front();
                }
                c.actions.push_back((now, action.clone()));
            }
        }
    }

    /// What [`Request::History`] answers, with the component's issues from `journal`.
    pub fn of(&self, component: &str, journal: &IssueJournal) -> ComponentHistory {
        let mut timeline: Vec<TimelineEntry> = journal
            .recent(Some(component), MAX_TIMELINE)
            .into_iter()
            .map(|issue| TimelineEntry::Issue { issue })
            .collect();
        let c = self.components.get(component);
        if let Some(c) = c {
            timeline.extend(c.actions.iter().map(|(at, action)| TimelineEntry::Action {
                action: action.clone(),
                at: *at,
            }));
        }
        timeline.sort_by_key(TimelineEntry::at);
        let skip = timeline.len().saturating_sub(MAX_TIMELINE);
        timeline.drain(..skip);
        ComponentHistory {
            component: component.to_string(),
            samples: c
                .map(|c| c.samples.iter().cloned().collect())
                .unwrap_or_default(),
            timeline,
        }
    }
}

impl Component {
    /// Adds a sample, dropping what is too old or too many.
    fn push(&mut self, sample: HistorySample) {
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
}

/// Sends history requests to the room.
#[derive(Clone)]
pub struct HistoryHandle {
    tx: mpsc::UnboundedSender<(String, oneshot::Sender<ComponentHistory>)>,
}

impl HistoryHandle {
    /// Starts the room's task; it ends when every handle is dropped.
    pub fn spawn(supervisor: SupervisorHandle, journal: IssueJournal) -> HistoryHandle {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, oneshot::Sender<ComponentHistory>)>();
        tokio::spawn(async move {
            let mut history = History::default();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let asked = supervisor.request_from(NO_CONN, Request::Status { component: None });
                        if let Ok(Response::Status { components }) = asked.await {
                            history.on_fleet(&components, SystemTime::now());
                        }
                    }
                    asked = rx.recv() => match asked {
                        Some((component, reply)) => {
                            let _ = reply.send(history.of(&component, &journal));
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
        let history = super::router::ask(&self.tx, |reply| (component, reply)).await?;
        Ok(Response::History { history })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        ComponentKind, HealingStatus, HealthStatus, Issue, ProcessMetrics, RestartPolicy, Severity,
    };

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn status(name: &str, state: RunState, cpu: f64) -> ComponentStatus {
        ComponentStatus {
            name: name.into(),
            kind: ComponentKind::Process,
            state,
            health: HealthStatus::Healthy,
            pid: Some(1),
            started_at: None,
            restarts: 2,
            metrics: Some(ProcessMetrics {
                cpu_percent: cpu,
                rss_bytes: 1 << 20,
                open_fds: 4,
            }),
            reported: None,
            last_exit: None,
            depends_on: vec![],
            restart: RestartPolicy::Permanent,
            recovery_actions: vec![],
            healing: HealingStatus::default(),
        }
    }

    #[test]
    fn samples_are_kept_for_ten_minutes_at_most() {
        let mut h = History::default();
        let journal = IssueJournal::default();
        for n in 0..400 {
            h.on_fleet(&[status("api", RunState::Running, n as f64)], t(n * 10));
        }
        let samples = h.of("api", &journal).samples;
        assert_eq!(samples.len(), 61, "ten minutes of 10 s samples, both ends");
        assert_eq!(samples.last().unwrap().at, t(3990));
        for n in 0..1000 {
            h.on_fleet(&[status("db", RunState::Running, 1.0)], t(n));
        }
        assert_eq!(h.of("db", &journal).samples.len(), MAX_SAMPLES);
        assert!(
            h.of("api", &journal).samples.is_empty(),
            "api left the fleet"
        );
    }

    #[test]
    fn a_component_without_a_process_has_no_figures_in_its_history() {
        let mut h = History::default();
        h.on_fleet(&[status("api", RunState::BreakerOpen, 5.0)], t(0));
        let samples = h.of("api", &IssueJournal::default()).samples;
        assert_eq!(samples[0].metrics, None);
        assert_eq!(samples[0].restarts, 2);
    }

    #[test]
    fn the_timeline_holds_issues_and_the_actions_seen_begin_in_time_order() {
        let mut h = History::default();
        let journal = IssueJournal::default();
        journal.record(Issue {
            detected_at: t(5),
            ..Issue::new("api", "crash", Severity::Error)
        });
        journal.record(Issue::new("db", "crash", Severity::Error));
        let mut s = status("api", RunState::Running, 1.0);
        h.on_fleet(std::slice::from_ref(&s), t(0));
        s.healing.last_action = Some(HealingAction::Restart);
        h.on_fleet(std::slice::from_ref(&s), t(10));
        h.on_fleet(std::slice::from_ref(&s), t(15));
        let timeline = h.of("api", &journal).timeline;
        assert_eq!(timeline.len(), 2, "{timeline:?}");
        assert!(matches!(timeline[0], TimelineEntry::Issue { .. }));
        assert_eq!(
            timeline[1],
            TimelineEntry::Action {
                action: HealingAction::Restart,
                at: t(10)
            },
            "an action once, when first seen"
        );
    }

    #[test]
    fn an_unknown_component_has_an_empty_history() {
        let answer = History::default().of("ghost", &IssueJournal::default());
        assert_eq!(answer.component, "ghost");
        assert!(answer.samples.is_empty() && answer.timeline.is_empty());
    }
}
