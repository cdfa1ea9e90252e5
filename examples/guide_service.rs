//! A service written from the integration guide's §2.1, §2.2, §3.1 and §4.1, as literally as
//! Rust allows: self-healing first, its tmux view second (initialize, then define the panels, then
//! update them), the supervisor link third, handlers last (§9).
//!
//! Run it against a running core:
//!
//! ```sh
//! cargo run -- up --detach                 # the core (this also builds hms-cli, the panes' program)
//! cargo run --example guide_service        # this service; its view is tmux session hms-guide-service
//! tmux attach -t hms-guide-service         # (tmux -L "$HMS_TMUX_SOCKET" … when that is set)
//! cargo run -- status                      # guide-service is listed
//! cargo run -- action "clear-cache guide-service"
//! cargo run -- stop guide-service          # delivers Shutdown: the service closes its view and exits 0
//! ```
//!
//! The view's panes run `hms-console panel …` (or `hms-cli panel …`, or `hms-panel` when it was
//! built), found beside `target/<profile>/examples/` (or set
//! `HMS_CONSOLE_BIN`). The core is found at `HMS_SOCKET` (else the default socket), tmux through
//! `HMS_TMUX_SOCKET`.
//!
//! Beyond the guide's input arms (`restart`, `status`, `help`) the input pane takes `fail`, which
//! makes the cache fail so the §2.1 error path runs: the issue is healed locally (the cache is
//! cleared), then reported to the supervisor marked as healed, so the core does not heal it again.
//!
//! Where Rust needs more than the guide writes, a comment says so: the component is shared behind
//! an `Arc` so the handlers (closures that use `self` in the guide) can own a clone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hms::prelude::*;
use tokio::sync::Notify;

const ID: &str = "guide-service";

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The service: its integration clients (§7's shape, without the knowledge and MAC clients, which
/// the library does not have yet) and its own state.
struct GuideService {
    id: String,
    healing: Box<dyn SelfHealing>,
    terminal: TerminalInterface,
    supervisor: SupervisorClient,
    /// The service's "work": a cache that fills with each request served.
    cache: Mutex<Vec<String>>,
    requests: AtomicU64,
    errors: AtomicU64,
    started: std::time::Instant,
    /// Set by the `Shutdown` command (or Ctrl-C); `main` waits for it.
    shutdown: Notify,
}

impl GuideService {
    fn new(id: &str) -> Arc<GuideService> {
        // §2.1 step 1: choose the healing level.
        let level = HealingLevel::Advanced;

        // §2.1 step 2: create the configuration.
        let config = UnifiedHealingConfig {
            component_id: id.to_string(),
            level,
            auto_healing_enabled: true,
            circuit_breaker_enabled: true,
            healing_timeout: 30,
            implementation_config: ImplementationConfig::Standalone(HashMap::from([(
                "recovery_actions".to_string(),
                "clear_cache,restart".to_string(),
            )])),
        };

        // §2.1 step 3: create the healing implementation.
        let healing = HealingFactory::create(config);

        // §3.1 step 1: create the terminal interface.
        let terminal = TerminalInterface::new(id, TerminalLayout::TwoByTwo, TerminalMode::Observe);

        // §4.1 step 1: create the supervisor client.
        let supervisor = SupervisorClient::new(id);

        Arc::new(GuideService {
            id: id.to_string(),
            healing,
            terminal,
            supervisor,
            cache: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            started: std::time::Instant::now(),
            shutdown: Notify::new(),
        })
    }

    /// §9's order: self-healing, terminal, supervisor, handlers.
    async fn initialize(self: &Arc<Self>) -> Result<()> {
        // Local healing carries out its recovery actions through the service.
        let this = self.clone();
        self.healing.on_action(
            "clear_cache",
            action(move || {
                let result = this.clear_cache();
                async move { result.map_err(|e| ActionError::Failed(e.to_string())) }
            }),
        );
        let this = self.clone();
        self.healing.on_action(
            "restart",
            action(move || {
                let result = this.restart();
                async move { result.map_err(|e| ActionError::Failed(e.to_string())) }
            }),
        );
        let this = self.clone();
        self.healing.on_health_check(health_check(move || {
            let health = this.internal_health_check();
            async move { health }
        }));
        // §2.1 step 3: initialize (typically during component startup).
        self.healing.initialize().await?;

        // §3.1 step 1: initialize the tmux session.
        self.terminal.initialize().await?;

        // §3.1 step 2: define the panel layout.
        self.terminal
            .define_panel("metrics", 0, 0, "Component Metrics");
        self.terminal.define_panel("logs", 0, 1, "Component Logs");
        self.terminal.define_panel("status", 1, 0, "Health Status");
        self.terminal.define_panel("actions", 1, 1, "Actions");

        // §4.1 step 1: connect to the supervisor.
        self.supervisor.connect().await?;

        // §4.1 step 2: register the component's capabilities. (The guide writes
        // `vec!["restart", "clear_cache", "reconnect"]`; the field holds `String`s.)
        let capabilities = ComponentCapabilities {
            can_restart: true,
            can_scale: false,
            can_failover: true,
            supported_recovery_actions: ComponentCapabilities::actions([
                "restart",
                "clear_cache",
                "reconnect",
            ]),
            healing_level: HealingLevel::Advanced,
        };
        self.supervisor
            .register_component(&self.id, capabilities)
            .await?;

        // §3.1 step 4: handle user input. (The guide's closure uses `self`: here it owns a clone
        // of the `Arc`.)
        let this = self.clone();
        self.terminal
            .set_input_handler(move |input: String| match input.trim() {
                "restart" => this.restart(),
                "status" => this.display_detailed_status(),
                "help" => this.display_help(),
                "fail" => this.simulate_failure(),
                _ => this.unknown_command(&input),
            });
        self.terminal.start_input_handling().await?;

        // §4.1 step 4: handle supervisor commands.
        let this = self.clone();
        self.supervisor
            .set_command_handler(move |command| match command {
                SupervisorCommand::Restart => this.restart(),
                SupervisorCommand::ClearCache => this.clear_cache(),
                SupervisorCommand::UpdateConfig(config) => this.apply_config(config),
                SupervisorCommand::Shutdown => this.graceful_shutdown(),
                _ => Err(CommandError::UnsupportedCommand(command)),
            });
        self.supervisor.start_command_handling().await?;

        self.log_message("started");
        Ok(())
    }

    // ----- §2.1 step 4: the component lifecycle -----

    /// During component health check: the worse of its own health and the healing's.
    async fn check_health(&self) -> Result<HealthStatus> {
        let component_health = self.internal_health_check();
        let healing_health = self.healing.check_health().await?;
        Ok(component_health.worse(healing_health))
    }

    fn internal_health_check(&self) -> HealthStatus {
        let entries = self.cache_len();
        if entries > 10_000 {
            HealthStatus::Degraded(format!("cache holds {entries} entries"))
        } else {
            HealthStatus::Healthy
        }
    }

    /// During component metrics reporting (§2.1 step 4 and §4.1 step 3).
    async fn report_metrics(&self) -> Result<()> {
        let metrics = self.get_metrics();
        self.healing.report_metrics(metrics.clone()).await?;
        self.supervisor.report_metrics(metrics).await?;
        Ok(())
    }

    fn get_metrics(&self) -> HealthMetrics {
        let uptime = self.started.elapsed().as_secs_f64().max(1.0);
        let requests = self.requests.load(Ordering::Relaxed) as f64;
        let errors = self.errors.load(Ordering::Relaxed) as f64;
        HealthMetrics {
            timestamp: SystemTime::now(),
            cpu_usage: 0.0,
            memory_usage: resident_mb(),
            response_time: 2.0,
            error_rate: if requests == 0.0 {
                0.0
            } else {
                100.0 * errors / requests
            },
            throughput: requests / uptime,
            // The guide writes `HashMap::new()`; the field is a `BTreeMap`.
            custom_metrics: BTreeMap::from([(
                "cache_entries".to_string(),
                self.cache_len() as f64,
            )]),
        }
    }

    /// During error handling (§2.1 step 4, in §7's order): log, create the issue, heal locally,
    /// show what was applied, report to the supervisor if serious.
    async fn handle_error(&self, error: &str) -> Result<()> {
        self.terminal
            .append_to_panel("logs", format!("ERROR: {error}"));
        let issue = Issue::new(&self.id, "cache_corrupt", Severity::Error).with("error", error);
        self.healing.report_issue(issue.clone()).await?;
        let healing_action = self.healing.heal().await?;
        self.log_message(&format!("Applied: {healing_action}"));
        if issue.severity >= Severity::Error {
            // §2.2: the supervisor coordinates what spans components. The report says what was
            // healed here (the library marks it), so the core does not heal it again.
            self.report_cross_component_issue(&issue).await?;
        }
        Ok(())
    }

    /// §2.2: report to the supervisor.
    async fn report_cross_component_issue(&self, issue: &Issue) -> Result<()> {
        self.supervisor.report_issue(issue).await?;
        Ok(())
    }

    // ----- §3.1 step 3: update the panels -----

    async fn update_metrics(&self) {
        let metrics = self.get_metrics();
        self.terminal.update_panel(
            "metrics",
            format!(
                "Memory: {:.1}MB\nErrors: {:.1}%\nThroughput: {:.1}/s\nCache: {} entries",
                metrics.memory_usage,
                metrics.error_rate,
                metrics.throughput,
                self.cache_len()
            ),
        );
    }

    fn log_message(&self, message: &str) {
        self.terminal.append_to_panel("logs", message);
    }

    async fn update_status(&self) -> Result<HealthStatus> {
        let health = self.check_health().await?;
        // The guide's arms mix `&str` and `String`; Rust wants one type.
        let status = match &health {
            HealthStatus::Healthy => "✅ Healthy".to_string(),
            HealthStatus::Degraded(msg) => format!("🟡 Degraded: {msg}"),
            HealthStatus::Critical(msg) => format!("🔴 Critical: {msg}"),
            HealthStatus::Failed(msg) => format!("❌ Failed: {msg}"),
        };
        self.terminal.update_panel("status", status);
        Ok(health)
    }

    async fn update_actions(&self) {
        let actions = self.get_available_actions();
        let actions_text = actions.join("\n");
        self.terminal.update_panel("actions", actions_text);
    }

    fn get_available_actions(&self) -> Vec<&'static str> {
        vec![
            "restart: start afresh",
            "status: in the logs",
            "help: all commands",
        ]
    }

    // ----- §4.1 step 3: report health -----

    async fn report_health(&self, health: HealthStatus) -> Result<()> {
        self.supervisor.report_health(health).await?;
        Ok(())
    }

    // ----- What the handlers call -----

    fn restart(&self) -> Result<(), CommandError> {
        self.cache_guard().clear();
        self.requests.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.log_message("restarted: cache and counters cleared");
        Ok(())
    }

    fn clear_cache(&self) -> Result<(), CommandError> {
        let cleared = std::mem::take(&mut *self.cache_guard()).len();
        self.log_message(&format!("cache cleared ({cleared} entries)"));
        Ok(())
    }

    fn apply_config(&self, config: BTreeMap<String, String>) -> Result<(), CommandError> {
        if config.is_empty() {
            return Err("no settings given".into());
        }
        for (key, value) in &config {
            self.log_message(&format!("config: {key} = {value}"));
        }
        Ok(())
    }

    fn graceful_shutdown(&self) -> Result<(), CommandError> {
        self.log_message("shutting down");
        self.shutdown.notify_one();
        Ok(())
    }

    fn display_detailed_status(&self) -> Result<(), CommandError> {
        self.log_message(&format!(
            "status: {} requests, {} cache entries, healing {:?}",
            self.requests.load(Ordering::Relaxed),
            self.cache_len(),
            self.healing.status().breaker
        ));
        Ok(())
    }

    fn display_help(&self) -> Result<(), CommandError> {
        self.log_message(&format!(
            "commands: {}",
            ["restart", "status", "help", "fail"].join(", ")
        ));
        Ok(())
    }

    fn unknown_command(&self, input: &str) -> Result<(), CommandError> {
        Err(format!("unknown command '{}'; type help", input.trim()).into())
    }

    /// The example's own: the next piece of work finds the cache corrupt.
    fn simulate_failure(&self) -> Result<(), CommandError> {
        self.cache_guard().push("corrupt".to_string());
        Ok(())
    }

    /// A few requests' work; an error goes down the §2.1 error path.
    async fn serve(&self) -> Result<()> {
        let corrupt = {
            let mut cache = self.cache_guard();
            for _ in 0..10 {
                let n = self.requests.fetch_add(1, Ordering::Relaxed);
                cache.push(format!("request {n}"));
            }
            cache.iter().any(|e| e == "corrupt")
        };
        if corrupt {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.handle_error("a corrupt cache entry").await?;
        }
        Ok(())
    }

    fn cache_guard(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_len(&self) -> usize {
        self.cache_guard().len()
    }
}

/// This process's resident memory in MiB (0 when /proc is not there).
fn resident_mb() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let service = GuideService::new(ID);
    service.initialize().await?;

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                service.serve().await?;
                // §3.1 step 3 and §4.1 step 3, every second.
                service.update_metrics().await;
                let health = service.update_status().await?;
                service.update_actions().await;
                service.report_health(health).await?;
                service.report_metrics().await?;
            }
            () = service.shutdown.notified() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }

    // Leave nothing behind: the view's panes go with its session; the core sees the link close
    // and marks the component Stopped (it was asked to stop).
    service.terminal.close().await?;
    service.supervisor.disconnect().await;
    Ok(())
}
