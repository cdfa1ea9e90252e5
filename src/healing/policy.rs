//! The restart governor: when to restart a failed component, how long to back off, and when to stop
//! trying for a while (the circuit breaker).
//!
//! This is a plain state machine: every method takes `now` and returns its decision as data. It does
//! no I/O, spawns nothing, arms no timers and never reads the clock itself; the caller (the core's
//! supervisor for processes, the [`crate::component`] `SelfHealing` engine for linked components) carries out
//! the decision and arms the timers it names. That is what lets the tests drive it with paused time.
//!
//! The rules (issue 3, after OTP, systemd and Kubernetes):
//! - a crash after a *stable* run (up at least `min_uptime`) is restarted at once;
//! - after an *unstable* run the delay grows from `backoff.initial` by `backoff.factor` (±10 %
//!   jitter) up to `backoff.max`; a stable run resets it;
//! - more than `intensity.max_restarts` automatic restarts within `intensity.window` opens the
//!   circuit breaker: no automatic restarts until its cooldown has passed, then one half-open trial;
//!   a trial run that becomes stable closes the breaker, a trial that fails reopens it with the
//!   cooldown doubled (capped at `breaker.max_cooldown`);
//! - with `circuit_breaker = false` the governor never gives up: past the intensity limit it keeps
//!   restarting, each time after the full `backoff.max`;
//! - an operator's manual restart clears everything ([`RestartGovernor::reset`]).

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::config::{BackoffConfig, BreakerConfig, ComponentSpec, IntensityConfig};
use crate::model::BreakerState;

/// The part of a component's config the governor needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// A run at least this long counts as stable: the next crash restarts at once and the backoff
    /// starts over.
    pub min_uptime: Duration,
    pub backoff: BackoffConfig,
    pub intensity: IntensityConfig,
    pub breaker: BreakerConfig,
    /// When false the breaker never opens; restarts past the intensity limit wait `backoff.max`.
    pub circuit_breaker: bool,
    /// When false every failure yields [`RestartDecision::NoAction`]: detection is still reported
    /// by the caller, but nothing is restarted automatically.
    pub auto_healing: bool,
}

impl PolicyConfig {
    pub fn from_spec(spec: &ComponentSpec) -> Self {
        PolicyConfig {
            min_uptime: spec.min_uptime,
            backoff: spec.backoff,
            intensity: spec.intensity,
            breaker: spec.breaker,
            circuit_breaker: spec.circuit_breaker,
            auto_healing: spec.auto_healing,
        }
    }
}

impl Default for PolicyConfig {
    /// The same defaults a component gets from `hms.toml` when it sets nothing.
    fn default() -> Self {
        PolicyConfig {
            min_uptime: Duration::from_secs(1),
            backoff: BackoffConfig::default(),
            intensity: IntensityConfig::default(),
            breaker: BreakerConfig::default(),
            circuit_breaker: true,
            auto_healing: true,
        }
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart at once (the previous run was stable, or this is the breaker's first failure after
    /// a stable trial). Call [`RestartGovernor::on_restarted`] when done.
    RestartNow,
    /// Restart after this delay (arm a timer; call [`RestartGovernor::on_restarted`] when done).
    RestartAfter(Duration),
    /// The breaker has just opened (or reopened after a failed trial): do not restart; escalate
    /// (an Issue of severity ≥ Error) and arm a timer for `cooldown`, then call
    /// [`RestartGovernor::on_trial_due`].
    BreakerOpened { cooldown: Duration },
    /// Nothing is done automatically; `reason` says why (for the operator's view).
    NoAction { reason: String },
}

/// Where the ±10 % jitter on backoff delays comes from.
#[derive(Debug, Clone)]
pub struct Jitter {
    /// `None`: no jitter at all (exact delays, for tests that check them).
    rng: Option<StdRng>,
}

impl Jitter {
    /// The fraction a delay may move either way.
    pub const SPREAD: f64 = 0.10;

    /// Jitter seeded from the OS: what production uses, so that components that failed together
    /// do not restart in lock-step.
    pub fn random() -> Self {
        Jitter {
            rng: Some(StdRng::from_os_rng()),
        }
    }

    /// Reproducible jitter.
    pub fn seeded(seed: u64) -> Self {
        Jitter {
            rng: Some(StdRng::seed_from_u64(seed)),
        }
    }

    /// No jitter: delays are exactly `initial × factorⁿ`, capped.
    pub fn none() -> Self {
        Jitter { rng: None }
    }

    fn apply(&mut self, d: Duration) -> Duration {
        match &mut self.rng {
            None => d,
            Some(rng) => d.mul_f64(1.0 + rng.random_range(-Self::SPREAD..=Self::SPREAD)),
        }
    }
}

/// Decides restarts for one component. One per component; owned by whoever owns that component's
/// state (never shared).
#[derive(Debug, Clone)]
pub struct RestartGovernor {
    cfg: PolicyConfig,
    jitter: Jitter,
    /// Times of automatic restarts, oldest first; entries older than `intensity.window` are pruned
    /// whenever a failure is judged.
    restarts: VecDeque<Instant>,
    /// Unstable failures since the last stable run; 0 means not backing off.
    unstable_failures: u32,
    /// The delay handed out last while backing off; `None` when not backing off.
    backoff: Option<Duration>,
    breaker: BreakerState,
    /// The cooldown of the current (or, when closed, the last) opening; `None` until the breaker
    /// has opened since it last closed. A reopening doubles it.
    cooldown: Option<Duration>,
    /// When the half-open trial is due; `Some` exactly when the breaker is Open.
    trial_at: Option<Instant>,
}

impl RestartGovernor {
    /// A governor with random jitter.
    pub fn new(cfg: PolicyConfig) -> Self {
        Self::with_jitter(cfg, Jitter::random())
    }

    /// A governor with the given jitter source (tests use [`Jitter::none`] or [`Jitter::seeded`]).
    pub fn with_jitter(cfg: PolicyConfig, jitter: Jitter) -> Self {
        RestartGovernor {
            cfg,
            jitter,
            restarts: VecDeque::new(),
            unstable_failures: 0,
            backoff: None,
            breaker: BreakerState::Closed,
            cooldown: None,
            trial_at: None,
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// Replaces the config (a reload) while keeping counters and breaker state.
    pub fn set_config(&mut self, cfg: PolicyConfig) {
        self.cfg = cfg;
    }

    /// The process failed (exited and its restart type wants a restart, or was declared failed)
    /// after running `uptime`.
    pub fn on_failure(&mut self, now: Instant, uptime: Duration) -> RestartDecision {
        if !self.cfg.auto_healing {
            return RestartDecision::NoAction {
                reason: "automatic healing is disabled for this component".to_string(),
            };
        }
        let stable = uptime >= self.cfg.min_uptime;
        if stable {
            // The stable timer may not have fired yet (it races the exit): a run this long is stable
            // whatever the timer did.
            self.on_stable(now);
        }
        match self.breaker {
            BreakerState::Open => {
                let left = self
                    .trial_at
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
                RestartDecision::NoAction {
                    reason: format!(
                        "circuit breaker open; half-open trial in {}",
                        humantime::format_duration(crate::text::round_ms(left))
                    ),
                }
            }
            BreakerState::HalfOpen => {
                // The trial run failed before it became stable.
                let cooldown = self
                    .cooldown
                    .map_or(self.cfg.breaker.cooldown.0, |c| c.saturating_mul(2))
                    .min(
                        self.cfg
                            .breaker
                            .max_cooldown
                            .0
                            .max(self.cfg.breaker.cooldown.0),
                    );
                self.open(now, cooldown)
            }
            BreakerState::Closed => {
                self.prune(now);
                let over_limit = self.restarts.len() >= self.cfg.intensity.max_restarts as usize;
                if over_limit && self.cfg.circuit_breaker {
                    let cooldown = self.cfg.breaker.cooldown.0;
                    return self.open(now, cooldown);
                }
                if over_limit {
                    // Never go dead: keep trying, as slowly as the backoff allows.
                    self.unstable_failures = self.unstable_failures.saturating_add(1);
                    let cap = self.cfg.backoff.max.0;
                    self.backoff = Some(cap);
                    return RestartDecision::RestartAfter(cap);
                }
                if stable {
                    return RestartDecision::RestartNow;
                }
                self.unstable_failures = self.unstable_failures.saturating_add(1);
                let delay = self.next_delay();
                self.backoff = Some(delay);
                RestartDecision::RestartAfter(delay)
            }
        }
    }

    /// An automatic restart (or the half-open trial) was just carried out.
    pub fn on_restarted(&mut self, now: Instant) {
        self.restarts.push_back(now);
        self.prune(now);
    }

    /// Called when the component has stayed up >= min_uptime since its last start (the caller
    /// arms a timer): resets backoff; closes a half-open breaker.
    pub fn on_stable(&mut self, _now: Instant) {
        self.unstable_failures = 0;
        self.backoff = None;
        match self.breaker {
            BreakerState::HalfOpen => {
                self.breaker = BreakerState::Closed;
                self.cooldown = None;
                self.trial_at = None;
                // The restarts that opened the breaker have been paid for by the cooldown.
                self.restarts.clear();
            }
            BreakerState::Closed | BreakerState::Open => {}
        }
    }

    /// The breaker's cooldown timer fired: true if the breaker is open and the trial is due now
    /// (state becomes half-open; the caller carries out one trial action).
    pub fn on_trial_due(&mut self, now: Instant) -> bool {
        match (self.breaker, self.trial_at) {
            (BreakerState::Open, Some(at)) if now >= at => {
                self.breaker = BreakerState::HalfOpen;
                self.trial_at = None;
                true
            }
            (BreakerState::Open, _) | (BreakerState::HalfOpen, _) | (BreakerState::Closed, _) => {
                false
            }
        }
    }

    /// An operator's manual restart: clears counters and backoff, closes the breaker.
    pub fn reset(&mut self) {
        self.restarts.clear();
        self.unstable_failures = 0;
        self.backoff = None;
        self.breaker = BreakerState::Closed;
        self.cooldown = None;
        self.trial_at = None;
    }

    pub fn breaker(&self) -> BreakerState {
        self.breaker
    }

    /// The delay before the next automatic restart, while backing off.
    pub fn current_backoff(&self) -> Option<Duration> {
        self.backoff
    }

    /// When the half-open trial is due, while the breaker is open.
    pub fn next_trial_at(&self) -> Option<Instant> {
        self.trial_at
    }

    /// Automatic restarts counted in the intensity window ending at `now`.
    pub fn restarts_in_window(&self, now: Instant) -> usize {
        let window = self.cfg.intensity.window.0;
        self.restarts
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < window)
            .count()
    }

    fn open(&mut self, now: Instant, cooldown: Duration) -> RestartDecision {
        self.breaker = BreakerState::Open;
        self.cooldown = Some(cooldown);
        self.trial_at = Some(now + cooldown);
        self.backoff = None;
        self.restarts.clear();
        RestartDecision::BreakerOpened { cooldown }
    }

    fn prune(&mut self, now: Instant) {
        let window = self.cfg.intensity.window.0;
        while let Some(first) = self.restarts.front() {
            if now.saturating_duration_since(*first) >= window {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
    }

    /// `initial × factor^(n-1)` for the n-th unstable failure, jittered, never above `max`.
    fn next_delay(&mut self) -> Duration {
        let b = &self.cfg.backoff;
        let exp = self.unstable_failures.saturating_sub(1).min(1024) as i32;
        let secs = b.initial.0.as_secs_f64() * b.factor.powi(exp);
        let max = b.max.0;
        let raw = if secs.is_finite() && secs < max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            max
        };
        self.jitter.apply(raw).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDuration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The defaults from issue 3: min_uptime 1s, backoff 100ms ×2 to 30s, 5 restarts in 10s,
    /// cooldown 30s doubling to 10 min.
    fn cfg() -> PolicyConfig {
        PolicyConfig::default()
    }

    fn governor(cfg: PolicyConfig) -> RestartGovernor {
        RestartGovernor::with_jitter(cfg, Jitter::none())
    }

    /// Fails after `uptime` and, if told to restart, restarts (advancing time by the delay).
    /// Returns the decision.
    async fn crash(g: &mut RestartGovernor, uptime: Duration) -> RestartDecision {
        tokio::time::advance(uptime).await;
        let d = g.on_failure(Instant::now(), uptime);
        match &d {
            RestartDecision::RestartNow => g.on_restarted(Instant::now()),
            RestartDecision::RestartAfter(delay) => {
                tokio::time::advance(*delay).await;
                g.on_restarted(Instant::now());
            }
            RestartDecision::BreakerOpened { .. } | RestartDecision::NoAction { .. } => {}
        }
        d
    }

    #[tokio::test(start_paused = true)]
    async fn crash_after_a_stable_run_restarts_at_once() {
        let mut g = governor(cfg());
        assert_eq!(crash(&mut g, secs(5)).await, RestartDecision::RestartNow);
        assert_eq!(g.current_backoff(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn unstable_crashes_back_off_exponentially_up_to_the_cap() {
        let mut c = cfg();
        c.intensity.max_restarts = 100;
        let mut g = governor(c);
        let mut delays = Vec::new();
        for _ in 0..12 {
            match crash(&mut g, ms(10)).await {
                RestartDecision::RestartAfter(d) => delays.push(d),
                other => panic!("expected a backoff, got {other:?}"),
            }
        }
        assert_eq!(
            &delays[..10],
            &[
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(6400),
                ms(12800),
                ms(25600),
                secs(30)
            ]
        );
        assert_eq!(delays[11], secs(30), "stays at the cap");
        assert_eq!(g.current_backoff(), Some(secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stable_run_resets_the_backoff() {
        let mut g = governor(cfg());
        assert_eq!(
            crash(&mut g, ms(10)).await,
            RestartDecision::RestartAfter(ms(100))
        );
        assert_eq!(
            crash(&mut g, ms(10)).await,
            RestartDecision::RestartAfter(ms(200))
        );
        tokio::time::advance(secs(1)).await;
        g.on_stable(Instant::now());
        assert_eq!(g.current_backoff(), None);
        // Still running; then it crashes after 20 s: immediately restarted; the next unstable
        // crash starts over at the initial delay.
        assert_eq!(crash(&mut g, secs(20)).await, RestartDecision::RestartNow);
        assert_eq!(
            crash(&mut g, ms(10)).await,
            RestartDecision::RestartAfter(ms(100))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_run_counts_as_stable_even_if_the_stable_timer_has_not_fired() {
        let mut g = governor(cfg());
        crash(&mut g, ms(10)).await;
        crash(&mut g, ms(10)).await;
        assert_eq!(crash(&mut g, secs(3)).await, RestartDecision::RestartNow);
        assert_eq!(
            crash(&mut g, ms(10)).await,
            RestartDecision::RestartAfter(ms(100))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_ten_percent_and_is_reproducible_with_a_seed() {
        let mut c = cfg();
        c.intensity.max_restarts = 1000;
        let run = |seed| {
            let mut g = RestartGovernor::with_jitter(c.clone(), Jitter::seeded(seed));
            let t = Instant::now();
            (0..8)
                .map(|_| match g.on_failure(t, ms(1)) {
                    RestartDecision::RestartAfter(d) => d,
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        for (n, d) in a.iter().enumerate() {
            let exact = ms(100).mul_f64(2f64.powi(n as i32));
            assert!(
                *d >= exact.mul_f64(0.9) && *d <= exact.mul_f64(1.1),
                "delay {n}: {d:?} vs {exact:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_never_goes_above_the_cap() {
        let mut c = cfg();
        c.intensity.max_restarts = 1000;
        let mut g = RestartGovernor::with_jitter(c, Jitter::seeded(1));
        let t = Instant::now();
        for _ in 0..200 {
            match g.on_failure(t, ms(1)) {
                RestartDecision::RestartAfter(d) => assert!(d <= secs(30), "{d:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_five_restarts_in_ten_seconds() {
        let mut g = governor(cfg());
        // Five crashes 100ms into each run, backoff 100+200+400+800+1600 ms: well within 10 s.
        for _ in 0..5 {
            assert!(matches!(
                crash(&mut g, ms(100)).await,
                RestartDecision::RestartAfter(_)
            ));
        }
        assert_eq!(g.restarts_in_window(Instant::now()), 5);
        assert_eq!(
            crash(&mut g, ms(100)).await,
            RestartDecision::BreakerOpened { cooldown: secs(30) }
        );
        assert_eq!(g.breaker(), BreakerState::Open);
        assert_eq!(g.next_trial_at(), Some(Instant::now() + secs(30)));
        assert_eq!(g.current_backoff(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn stable_crashes_count_towards_the_intensity_limit_too() {
        let mut c = cfg();
        c.min_uptime = ms(500);
        let mut g = governor(c);
        for _ in 0..5 {
            assert_eq!(crash(&mut g, secs(1)).await, RestartDecision::RestartNow);
        }
        assert_eq!(
            crash(&mut g, secs(1)).await,
            RestartDecision::BreakerOpened { cooldown: secs(30) }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_older_than_the_window_slide_out() {
        let mut c = cfg();
        c.min_uptime = ms(500);
        c.intensity = IntensityConfig {
            max_restarts: 3,
            window: ConfigDuration(secs(10)),
        };
        let mut g = governor(c);
        // One stable crash every 4 s: at most 3 restarts in any 10 s window, so it never opens.
        for _ in 0..20 {
            assert_eq!(crash(&mut g, secs(4)).await, RestartDecision::RestartNow);
            assert!(g.restarts_in_window(Instant::now()) <= 3);
        }
        // One every 2 s: the fourth within 10 s opens it.
        let mut opened = false;
        for _ in 0..4 {
            if let RestartDecision::BreakerOpened { .. } = crash(&mut g, secs(2)).await {
                opened = true;
            }
        }
        assert!(opened);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_goes_half_open_after_the_cooldown_and_closes_after_a_stable_trial() {
        let mut g = governor(cfg());
        while !matches!(
            crash(&mut g, ms(10)).await,
            RestartDecision::BreakerOpened { .. }
        ) {}
        let trial_at = g.next_trial_at().expect("open breaker has a trial time");
        // While open, a stray failure report restarts nothing.
        assert!(matches!(
            g.on_failure(Instant::now(), ms(1)),
            RestartDecision::NoAction { .. }
        ));
        // An early (stale) timer does nothing.
        tokio::time::advance(secs(10)).await;
        assert!(!g.on_trial_due(Instant::now()));
        assert_eq!(g.breaker(), BreakerState::Open);
        tokio::time::advance(trial_at - Instant::now()).await;
        assert!(g.on_trial_due(Instant::now()));
        assert_eq!(g.breaker(), BreakerState::HalfOpen);
        assert!(!g.on_trial_due(Instant::now()), "only one trial");
        g.on_restarted(Instant::now());
        tokio::time::advance(secs(1)).await;
        g.on_stable(Instant::now());
        assert_eq!(g.breaker(), BreakerState::Closed);
        assert_eq!(g.next_trial_at(), None);
        // Closed again with a clean slate: the next unstable crash backs off from the start.
        assert_eq!(
            crash(&mut g, ms(10)).await,
            RestartDecision::RestartAfter(ms(100))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_trial_reopens_with_doubled_cooldown_capped_at_max() {
        let mut c = cfg();
        c.breaker = BreakerConfig {
            cooldown: ConfigDuration(secs(30)),
            max_cooldown: ConfigDuration(secs(100)),
        };
        let mut g = governor(c);
        while !matches!(
            crash(&mut g, ms(10)).await,
            RestartDecision::BreakerOpened { .. }
        ) {}
        let mut cooldowns = Vec::new();
        for _ in 0..4 {
            let at = g.next_trial_at().expect("open");
            tokio::time::advance(at - Instant::now()).await;
            assert!(g.on_trial_due(Instant::now()));
            g.on_restarted(Instant::now());
            match crash(&mut g, ms(10)).await {
                RestartDecision::BreakerOpened { cooldown } => cooldowns.push(cooldown),
                other => panic!("a failed trial must reopen the breaker, got {other:?}"),
            }
            assert_eq!(g.breaker(), BreakerState::Open);
        }
        assert_eq!(cooldowns, [secs(60), secs(100), secs(100), secs(100)]);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_the_breaker_resets_the_cooldown() {
        let mut g = governor(cfg());
        let open = |g: &mut RestartGovernor| g.breaker() == BreakerState::Open;
        while !open(&mut g) {
            crash(&mut g, ms(10)).await;
        }
        // Fail one trial (cooldown 60 s), then pass the next.
        tokio::time::advance(secs(30)).await;
        assert!(g.on_trial_due(Instant::now()));
        g.on_restarted(Instant::now());
        crash(&mut g, ms(10)).await;
        tokio::time::advance(secs(60)).await;
        assert!(g.on_trial_due(Instant::now()));
        g.on_restarted(Instant::now());
        tokio::time::advance(secs(1)).await;
        g.on_stable(Instant::now());
        assert_eq!(g.breaker(), BreakerState::Closed);
        let mut last = None;
        while !open(&mut g) {
            last = Some(crash(&mut g, ms(10)).await);
        }
        assert_eq!(
            last,
            Some(RestartDecision::BreakerOpened { cooldown: secs(30) })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn operator_restart_resets_counters_backoff_and_breaker() {
        let mut g = governor(cfg());
        while g.breaker() != BreakerState::Open {
            crash(&mut g, ms(10)).await;
        }
        g.reset();
        assert_eq!(g.breaker(), BreakerState::Closed);
        assert_eq!(g.next_trial_at(), None);
        assert_eq!(g.current_backoff(), None);
        assert_eq!(g.restarts_in_window(Instant::now()), 0);
        // A full intensity budget again, starting from the initial delay.
        assert_eq!(
            crash(&mut g, ms(10)).await,
            RestartDecision::RestartAfter(ms(100))
        );
        for _ in 0..4 {
            assert!(matches!(
                crash(&mut g, ms(10)).await,
                RestartDecision::RestartAfter(_)
            ));
        }
        assert!(matches!(
            crash(&mut g, ms(10)).await,
            RestartDecision::BreakerOpened { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn with_the_breaker_disabled_it_keeps_restarting_at_the_cap_forever() {
        let mut c = cfg();
        c.circuit_breaker = false;
        c.min_uptime = ms(500);
        let mut g = governor(c);
        // Stable crashes, many per window: never open, never give up, but slowed to the cap.
        let mut decisions = Vec::new();
        for _ in 0..50 {
            decisions.push(crash(&mut g, secs(1)).await);
        }
        assert!(decisions.iter().all(|d| matches!(
            d,
            RestartDecision::RestartNow | RestartDecision::RestartAfter(_)
        )));
        assert_eq!(decisions[..5], [const { RestartDecision::RestartNow }; 5]);
        assert_eq!(decisions[5], RestartDecision::RestartAfter(secs(30)));
        assert_eq!(g.breaker(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn with_auto_healing_disabled_nothing_is_restarted() {
        let mut c = cfg();
        c.auto_healing = false;
        let mut g = governor(c);
        for _ in 0..10 {
            match crash(&mut g, ms(10)).await {
                RestartDecision::NoAction { reason } => assert!(reason.contains("disabled")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(g.breaker(), BreakerState::Closed);
    }

    #[test]
    fn from_spec_takes_the_components_settings() {
        let fleet = crate::config::FleetConfig::parse(
            r#"
[[component]]
name = "a"
command = "true"
min_uptime = "3s"
circuit_breaker = false
auto_healing = false
intensity = { max_restarts = 2, window = "1m" }
"#,
            "t.toml",
            None,
        )
        .expect("valid");
        let p = PolicyConfig::from_spec(&fleet.components[0]);
        assert_eq!(p.min_uptime, secs(3));
        assert!(!p.circuit_breaker && !p.auto_healing);
        assert_eq!(p.intensity.max_restarts, 2);
        assert_eq!(p.intensity.window.0, secs(60));
    }
}
