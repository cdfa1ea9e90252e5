//! Config reload: the shell reads the fleet's config again ([`Effect::LoadConfig`]) and the kernel
//! applies the difference. New components start; removed ones stop and then disappear; changed ones get their
//! new settings and, if running, restart with them; unchanged ones are not touched. An invalid
//! config changes nothing: the error goes back to whoever asked and to the operator as a notice.
//!
//! `[knowledge]`: a changed retention goes to the registry at once ([`Effect::Retention`]); a
//! changed `path` is not applied (the registry's file stays open where it is) and the answer and
//! a warning notice say it takes effect at the next start.

use std::sync::Arc;

use super::{AfterExit, Answer, Component, ComponentKind, Effect, Goal, Kernel};
use crate::config::{FleetConfig, ReloadPlan, knowledge_on_reload};
use crate::model::RunState;
use crate::protocol::{ErrorCode, NoticeLevel, Response};

impl Kernel {
    /// Applies a config that was read again, or reports why it cannot be.
    pub(super) fn reloaded(&mut self, result: Result<FleetConfig, String>) -> Answer {
        let fleet = match result {
            Ok(f) => f,
            Err(e) => {
                let message = format!("config not reloaded, the running one stays: {e}");
                self.notice(NoticeLevel::Error, message.clone());
                return Err((ErrorCode::Rejected, message));
            }
        };
        let mut fleet = fleet;
        let plan = ReloadPlan::new(&self.fleet, &fleet);
        // `[knowledge]`: the retention now, the file at the next start.
        let knowledge = knowledge_on_reload(&self.fleet.knowledge, &fleet.knowledge);
        fleet.knowledge = knowledge.in_force.clone();
        if knowledge.retention_changed {
            self.effects.push(Effect::Retention {
                config: knowledge.in_force.clone(),
            });
        }
        if let Some(warning) = &knowledge.path_deferred {
            self.notice(NoticeLevel::Warning, warning.clone());
        }
        for name in &plan.removed {
            if let Some(&i) = self.index.get(name) {
                self.components[i].retired = true;
                self.components[i].goal = Goal::Down;
                self.components[i].after_exit = AfterExit::StayDown;
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
                    c.set_spec(Arc::new(spec));
                    c.retired = false;
                    c.goal = Goal::Up;
                    self.begin_restart(i, "config changed: restarting with the new settings");
                }
                None => {
                    self.effects.push(Effect::OpenLog {
                        component: name.clone(),
                        policy: super::log_policy(&spec),
                    });
                    let component = Component::new(Arc::new(spec), ComponentKind::Process);
                    self.components.push(component);
                    let i = self.components.len() - 1;
                    self.index.insert(name.clone(), i);
                    self.set_state(i, RunState::Starting);
                }
            }
        }
        let source = fleet.source.clone();
        self.fleet = fleet;
        self.start_ready();
        let mut message = format!("config reloaded from {source}: {}", plan.summary());
        if knowledge.retention_changed {
            let retention = format!(
                "knowledge retention: {}",
                knowledge.in_force.retention_summary()
            );
            if plan.is_empty() {
                message = format!("config reloaded from {source}: {retention}");
            } else {
                message = format!("{message}; {retention}");
            }
        }
        if let Some(warning) = knowledge.path_deferred {
            message = format!("{message}\nwarning: {warning}");
        }
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
