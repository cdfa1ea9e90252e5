//! Config reload: read the fleet's config again (off the actor), validate it, and apply the
//! difference. New components start; removed ones stop and then disappear; changed ones get their
//! new settings and, if running, restart with them; unchanged ones are not touched. An invalid
//! config changes nothing: the error goes back to whoever asked and to the operator as a notice.

use super::{Cmd, Component, Goal, Refusal, Reply, Supervisor};
use crate::config::{FleetConfig, ReloadPlan};
use crate::healing::policy::PolicyConfig;
use crate::model::RunState;
use crate::protocol::{ErrorCode, NoticeLevel, Response};

impl Supervisor {
    /// `Reload`: reads the config on a blocking thread and comes back with [`Cmd::Reloaded`].
    pub(super) fn reload_request(&mut self, reply: Reply) {
        let origin = self.origin.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = origin.load().map_err(|e| e.to_string());
            let _ = tx.send(Cmd::Reloaded { result, reply });
        });
    }

    /// Applies a config that was read again, or reports why it cannot be.
    pub(super) fn reloaded(
        &mut self,
        result: Result<FleetConfig, String>,
    ) -> Result<Response, Refusal> {
        let fleet = match result {
            Ok(f) => f,
            Err(e) => {
                let message = format!("config not reloaded, the running one stays: {e}");
                tracing::warn!(%message);
                self.notice(NoticeLevel::Error, message.clone());
                return Err((ErrorCode::Rejected, message));
            }
        };
        let plan = ReloadPlan::new(&self.fleet, &fleet);
        let log_dir = crate::paths::log_dir(&self.data_dir);
        for name in &plan.removed {
            if let Some(&i) = self.index.get(name) {
                self.components[i].retired = true;
                self.components[i].goal = Goal::Down;
                self.components[i].restart_when_stopped = false;
                self.log(i, "removed from the config: stopping");
                self.stop(i);
            }
        }
        for name in plan.changed.iter().chain(&plan.added) {
            let spec = fleet
                .get(name)
                .expect("the plan names components of the new fleet")
                .clone();
            match self.index.get(name).copied() {
                // Changed, or re-added while it was still stopping after a removal.
                Some(i) => {
                    let c = &mut self.components[i];
                    c.governor.set_config(PolicyConfig::from_spec(&spec));
                    c.spec = spec;
                    c.retired = false;
                    c.goal = Goal::Up;
                    self.begin_restart(i, "config changed: restarting with the new settings");
                }
                None => {
                    let component = Component::process(&spec, &log_dir, &self.bus);
                    self.components.push(component);
                    let i = self.components.len() - 1;
                    self.index.insert(name.clone(), i);
                    self.set_state(i, RunState::Starting);
                }
            }
        }
        self.threshold_watch = self
            .components
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !c.retired
                    && (c.spec.thresholds.cpu_percent.is_some()
                        || c.spec.thresholds.rss_mb.is_some())
            })
            .map(|(i, _)| i)
            .collect();
        let source = fleet.source.clone();
        self.fleet = fleet;
        self.start_ready();
        let message = format!("config reloaded from {source}: {}", plan.summary());
        tracing::info!(%message);
        self.notice(NoticeLevel::Info, message.clone());
        Ok(Response::Done { message })
    }

    /// A removed component has stopped: it leaves the index, so it is gone from status.
    pub(super) fn retire_if_removed(&mut self, i: usize) {
        if self.components[i].retired && self.components[i].state == RunState::Stopped {
            let name = self.components[i].spec.name.clone();
            if self.index.get(&name) == Some(&i) {
                self.index.remove(&name);
            }
        }
    }
}
