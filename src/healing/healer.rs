//! One component's healer: the engine's pieces combined once — the [`RestartGovernor`] (backoff,
//! restart intensity, circuit breaker), the liveness and readiness [`ProbeTracker`]s of the
//! current run, and the [`RecoveryEpisode`] in progress with the bookkeeping of its attempts
//! (serials, whether the attempt's action is still running, the records kept).
//!
//! Both drivers use it: the core's supervisor kernel for every component it supervises, and the
//! standalone [`SelfHealing`](crate::SelfHealing) engine a linked component runs in its own process. It is
//! pure like its parts: `now` is passed in, it carries out nothing and reads no clock (but for the
//! wall-clock stamps of records, as [`RecoveryEpisode`] does).
//!
//! An attempt is named by its serial: the driver arms the attempt's deadline and starts its action
//! with that serial, and a deadline or an outcome that comes back with another serial is stale and
//! ignored.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::policy::{PolicyConfig, RestartGovernor};
use super::probe::{ProbeKind, ProbeTracker};
use super::recovery::{EpisodeStep, EpisodeUpdate, RecoveryEpisode};
use crate::config::ProbeConfig;
use crate::model::{HealingLevel, HealthStatus, Issue, RecoveryRecord};

/// How many healing records a healer keeps.
pub const RECORDS_KEPT: usize = 20;

/// What a healer heals with: its level, its actions in order, and how long each may take.
#[derive(Debug, Clone)]
pub struct HealerConfig {
    pub policy: PolicyConfig,
    pub level: HealingLevel,
    pub recovery_actions: Vec<String>,
    pub healing_timeout: Duration,
}

/// One component's healing state.
#[derive(Debug)]
pub struct Healer {
    config: HealerConfig,
    governor: RestartGovernor,
    liveness: Option<ProbeTracker>,
    readiness: Option<ProbeTracker>,
    episode: Option<RecoveryEpisode>,
    /// Bumped for each attempt of an episode; deadlines and action results carry it.
    serial: u64,
    /// The attempt's action is still running: its effect is judged when it has finished.
    action_running: bool,
    /// The attempt's action finished well: judge health now, changed or not.
    judge_now: bool,
    /// A restart in this episode is a hard kill (the process is hung: SIGTERM would wait).
    hard: bool,
    /// The latest healing records, newest last.
    records: VecDeque<RecoveryRecord>,
}

/// Why an episode did not start.
#[derive(Debug, Clone, PartialEq)]
pub enum NotStarted {
    /// One is in progress: for this issue type, trying this action.
    AlreadyHealing {
        issue_type: String,
        action: Option<String>,
    },
}

impl Healer {
    pub fn new(config: HealerConfig) -> Healer {
        Healer {
            governor: RestartGovernor::new(config.policy.clone()),
            config,
            liveness: None,
            readiness: None,
            episode: None,
            serial: 0,
            action_running: false,
            judge_now: false,
            hard: false,
            records: VecDeque::new(),
        }
    }

    /// New settings (a reload): the governor keeps its history, episodes to come use the rest.
    pub fn set_config(&mut self, config: HealerConfig) {
        self.governor.set_config(config.policy.clone());
        self.config = config;
    }

    pub fn config(&self) -> &HealerConfig {
        &self.config
    }

    pub fn governor(&self) -> &RestartGovernor {
        &self.governor
    }

    pub fn governor_mut(&mut self) -> &mut RestartGovernor {
        &mut self.governor
    }

    // ----- probes -----

    /// A new run started at `now`: fresh probe trackers for it.
    pub fn start_run(
        &mut self,
        liveness: Option<&ProbeConfig>,
        readiness: Option<&ProbeConfig>,
        now: Instant,
    ) {
        self.liveness = liveness.map(|p| ProbeTracker::new(ProbeKind::Liveness, p, now));
        self.readiness = readiness.map(|p| ProbeTracker::new(ProbeKind::Readiness, p, now));
    }

    /// True when the run has a readiness probe (dependents then wait for it to pass).
    pub fn gates_readiness(&self) -> bool {
        self.readiness.is_some()
    }

    /// The run's tracker of `kind`, if it has that probe.
    pub fn probe(&mut self, kind: ProbeKind) -> Option<&mut ProbeTracker> {
        match kind {
            ProbeKind::Liveness => self.liveness.as_mut(),
            ProbeKind::Readiness => self.readiness.as_mut(),
        }
    }

    // ----- episodes -----

    /// The episode in progress.
    pub fn episode(&self) -> Option<&RecoveryEpisode> {
        self.episode.as_ref()
    }

    /// The serial of the current attempt.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Whether restarts in this episode are hard kills.
    pub fn is_hard(&self) -> bool {
        self.hard
    }

    /// The kept records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &RecoveryRecord> {
        self.records.iter()
    }

    /// Begins an episode for `issue` (its restarts hard when `hard`: the process is hung), with
    /// `dependents` for Full level's coordination and `prefer` tried first when given. Returns the
    /// plan (action names in order) and the first step.
    pub fn begin(
        &mut self,
        issue: Issue,
        dependents: Vec<String>,
        prefer: Option<&str>,
        hard: bool,
        now: Instant,
    ) -> Result<(Vec<String>, EpisodeStep), NotStarted> {
        if let Some(e) = &self.episode {
            return Err(NotStarted::AlreadyHealing {
                issue_type: e.issue().issue_type.clone(),
                action: e.current_action().map(str::to_string),
            });
        }
        let mut episode = RecoveryEpisode::new(
            issue,
            self.config.level,
            &self.config.recovery_actions,
            self.config.healing_timeout,
            dependents,
        );
        if let Some(action) = prefer {
            episode = episode.prefer(action);
        }
        let plan = episode.plan().to_vec();
        let step = episode.start(now);
        self.episode = Some(episode);
        self.hard = hard;
        Ok((plan, step))
    }

    /// The driver is about to carry out the step's action: a new attempt. `runs_on` when the action
    /// runs on after it was started (a command) and is judged only once it has finished. Returns
    /// the attempt's serial.
    pub fn attempt(&mut self, runs_on: bool) -> u64 {
        self.serial += 1;
        self.action_running = runs_on;
        self.serial
    }

    /// The attempt's action could not be carried out at all.
    pub fn action_failed(&mut self, now: Instant) -> Option<EpisodeUpdate> {
        self.action_running = false;
        self.episode.as_mut().map(|e| e.on_action_failed(now))
    }

    /// Attempt `serial`'s action finished, well or not. A failure moves on at once; a success is
    /// judged by health (the next [`Healer::wants_health`] says so even if health did not change).
    pub fn action_done(&mut self, serial: u64, ok: bool, now: Instant) -> Option<EpisodeUpdate> {
        if serial != self.serial || self.episode.is_none() {
            return None;
        }
        if ok {
            self.action_running = false;
            self.judge_now = true;
            None
        } else {
            self.action_failed(now)
        }
    }

    /// Attempt `serial`'s deadline came.
    pub fn deadline(&mut self, serial: u64, now: Instant) -> Option<EpisodeUpdate> {
        if serial != self.serial {
            return None;
        }
        self.action_running = false;
        self.episode.as_mut().map(|e| e.on_deadline(now))
    }

    /// Whether health should be told to the episode: `changed` health, or an action that just
    /// finished well. Clears the latter.
    pub fn wants_health(&mut self, changed: bool) -> bool {
        let judge = changed || self.judge_now;
        self.judge_now = false;
        judge && self.episode.is_some() && !self.action_running
    }

    /// The component's health, for the episode's current attempt.
    pub fn health(&mut self, status: &HealthStatus, now: Instant) -> Option<EpisodeUpdate> {
        if self.action_running {
            return None;
        }
        self.episode.as_mut().map(|e| e.on_health(now, status))
    }

    /// The episode ended (recovered or escalated, or abandoned): returns it.
    pub fn finish(&mut self) -> Option<RecoveryEpisode> {
        self.hard = false;
        self.action_running = false;
        self.episode.take()
    }

    /// Keeps a record of an attempt.
    pub fn keep(&mut self, record: RecoveryRecord) {
        if self.records.len() == RECORDS_KEPT {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healing::recovery::RESTART;
    use crate::model::Severity;

    fn healer(actions: &[&str]) -> Healer {
        Healer::new(HealerConfig {
            policy: PolicyConfig::default(),
            level: HealingLevel::Advanced,
            recovery_actions: actions.iter().map(|a| a.to_string()).collect(),
            healing_timeout: Duration::from_secs(5),
        })
    }

    fn issue() -> Issue {
        Issue::new("db", "connection_lost", Severity::Error)
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_issue_during_an_episode_does_not_start_another() {
        let mut h = healer(&["clear_cache", RESTART]);
        let now = Instant::now();
        let (plan, step) = h.begin(issue(), vec![], None, false, now).unwrap();
        assert_eq!(plan, ["clear_cache", RESTART]);
        assert!(matches!(step, EpisodeStep::Act { action, .. } if action == "clear_cache"));
        assert!(matches!(
            h.begin(issue(), vec![], None, false, now),
            Err(NotStarted::AlreadyHealing { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_preferred_action_is_tried_first() {
        let mut h = healer(&["clear_cache", RESTART]);
        let (plan, _) = h
            .begin(issue(), vec![], Some(RESTART), false, Instant::now())
            .unwrap();
        assert_eq!(plan, [RESTART, "clear_cache"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_action_is_judged_only_once_it_finished_well() {
        let mut h = healer(&["clear_cache", RESTART]);
        let now = Instant::now();
        h.begin(issue(), vec![], None, false, now).unwrap();
        let serial = h.attempt(true);
        assert!(h.health(&HealthStatus::Healthy, now).is_none());
        assert!(!h.wants_health(true));
        assert!(h.action_done(serial + 1, true, now).is_none(), "stale");
        assert!(h.action_done(serial, true, now).is_none());
        assert!(
            h.wants_health(false),
            "judged now although health did not change"
        );
        let update = h.health(&HealthStatus::Healthy, now).unwrap();
        assert!(matches!(update.step, EpisodeStep::Recovered { .. }));
        assert!(update.record.unwrap().successful);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_deadline_is_ignored_and_a_current_one_moves_on() {
        let mut h = healer(&["clear_cache", RESTART]);
        let now = Instant::now();
        h.begin(issue(), vec![], None, false, now).unwrap();
        let serial = h.attempt(false);
        assert!(h.deadline(serial - 1, now).is_none());
        tokio::time::advance(Duration::from_secs(5)).await;
        let update = h.deadline(serial, Instant::now()).unwrap();
        assert!(matches!(update.step, EpisodeStep::Act { action, .. } if action == RESTART));
        assert!(!update.record.unwrap().successful);
    }

    #[test]
    fn records_are_bounded() {
        let mut h = healer(&[RESTART]);
        for n in 0..RECORDS_KEPT + 5 {
            h.keep(RecoveryRecord {
                issue: issue(),
                strategy: format!("s{n}"),
                successful: true,
                action: crate::model::HealingAction::Restart,
                timestamp: std::time::SystemTime::now(),
                duration: Duration::ZERO,
            });
        }
        assert_eq!(h.records().count(), RECORDS_KEPT);
        assert_eq!(
            h.records().last().unwrap().strategy,
            format!("s{}", RECORDS_KEPT + 4)
        );
    }
}
