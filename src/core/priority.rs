//! The CPU priority of the core's helper threads.
//!
//! The shared runtime's threads (sockets, the task bus, output pipes, the blocking pool) and the
//! knowledge registry's writer and checkpointer lower their own priority by [`HELPER_NICE`], so
//! that on a busy machine (two CPUs, the bus at full load, the registry writing) the supervisor's
//! thread, left at the core's own priority, wins a CPU the moment a child exits and restarts it
//! without waiting behind them. Lowering one's own priority needs no privilege.
//!
//! Nice is per thread on Linux, and a process starts with the nice value of the thread that
//! forked it; a process cannot take back a priority it gave up without privileges. So nothing
//! that starts a process may run on a lowered thread: components, action and notify commands,
//! exec probes and the probe runner are all started from the supervisor's thread. (The reaper is
//! forked before the runtime starts; only a replacement for a reaper that died is started from
//! the shared runtime and runs lowered: it starts nothing, it only kills what a dead core left.)
//! This module must not be used on the supervisor's thread or the main thread.

/// How much lower than the core a helper thread runs (nice 0 → 5: a CPU share of about a third
/// of the supervisor's, 335 against 1024, when both want it).
pub const HELPER_NICE: i32 = 5;

/// Lowers the calling thread's priority by [`HELPER_NICE`] (at most to 19). Best effort: a
/// failure leaves the thread as it was.
pub fn lower_this_thread() {
    let tid = rustix::thread::gettid();
    let Ok(now) = rustix::process::getpriority_process(Some(tid)) else {
        return;
    };
    let lowered = (now + HELPER_NICE).min(19);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), lowered) {
        tracing::debug!(cause = %e, "cannot lower a helper thread's priority");
    }
}

/// The nice value of a process (or of one thread: `/proc/PID/task/TID`), from its `stat` file.
pub fn nice_of(proc_dir: &std::path::Path) -> Option<i32> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    // From field 3 (the state) on: nice is field 19.
    super::procinfo::stat_fields(&stat)?.nth(16)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_thread_and_only_it_runs_at_the_helper_priority() {
        let me = std::path::Path::new("/proc/thread-self");
        let before = nice_of(me).expect("our own stat is readable");
        let lowered = std::thread::spawn(|| {
            lower_this_thread();
            nice_of(std::path::Path::new("/proc/thread-self")).expect("stat")
        })
        .join()
        .expect("the thread ran");
        assert_eq!(lowered, (before + HELPER_NICE).min(19));
        assert_eq!(
            nice_of(me),
            Some(before),
            "the caller's thread is unchanged"
        );
    }
}
