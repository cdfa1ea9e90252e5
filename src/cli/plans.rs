//! `hms-console plans [--json]`: the recovery plans running and the last ones that ended, each
//! step with its state and duration.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::model::{PlanStatus, RecoveryStep, StepState};
use crate::text::duration as format_duration;

pub(super) async fn plans(socket: &Path, json: bool) -> Result<()> {
    let mut client = super::connect(socket).await?;
    let plans = client.plans().await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&plans)?)?;
    } else if plans.is_empty() {
        outln!("no recovery plans")?;
    } else {
        out!("{}", render(&plans))?;
    }
    Ok(())
}

/// One block per plan: a heading, then its steps.
fn render(plans: &[PlanStatus]) -> String {
    let mut out = String::new();
    for p in plans {
        let _ = writeln!(
            out,
            "plan {} for {} ({}, {}): {} after {}",
            p.id,
            p.component,
            p.issue_type,
            p.strategy,
            p.state.word(),
            format_duration(p.duration)
        );
        if let Some(reason) = &p.reason {
            let _ = writeln!(out, "  reason: {reason}");
        }
        for j in &p.joined {
            let _ = writeln!(out, "  joined: {j}");
        }
        for (k, s) in p.steps.iter().enumerate() {
            let what = match &s.step {
                RecoveryStep::ComponentAction { component, action } => {
                    format!("{} {component}", action.action_name())
                }
                RecoveryStep::WaitForHealth { component, timeout } => {
                    format!("wait for {component} (up to {})", format_duration(*timeout))
                }
                RecoveryStep::NotifyOperator { message } => format!("notify: {message}"),
            };
            let state = match s.state {
                StepState::Pending => "pending",
                StepState::Running => "running",
                StepState::Done => "done",
                StepState::Failed => "failed",
                StepState::TimedOut => "timed out",
            };
            let took = s.duration.map_or("-".to_string(), format_duration);
            let _ = write!(out, "  {:>2}. {state:<9} {took:>7}  {what}", k + 1);
            if let Some(detail) = &s.detail {
                let _ = write!(out, " ({detail})");
            }
            out.push('\n');
        }
    }
    out
}
