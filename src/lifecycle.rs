//! The end of the process's life: draining after SIGTERM or an upgrade's SIGQUIT, the count
//! of requests in flight, and the exit as soon as none is left.
//!
//! Pingora (0.9.1) on SIGTERM broadcasts shutdown, then sleeps the whole grace period in the
//! main thread whether or not anything is still running (pingora-notes pitfall 16), then
//! drops what is left. On SIGQUIT it hands the listening sockets to the new process, keeps
//! serving for 5 s (`CLOSE_TIMEOUT`), then does the same. A thread of ours follows those
//! phases (`Server::watch_execution_phase`) and:
//!
//! - from the signal on, reports [`draining`], so every response says `Connection: close`
//!   and keep-alive clients leave the old process while it still answers them;
//! - once the grace period has started, exits (status 0, access log flushed) as soon as no
//!   request has been in flight for [`SETTLE`];
//! - shortly before the grace period ends, raises [`streams_must_end`], so streams still
//!   running end with the terminal error instead of being cut silently.

use async_trait::async_trait;
use once_cell::sync::Lazy;
use pingora_core::server::{ExecutionPhase, ShutdownWatch};
use pingora_core::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// How long nothing must be in flight before the process exits. Covers a connection that was
/// accepted just before the listeners closed but whose request the proxy has not read yet.
pub const SETTLE: Duration = Duration::from_millis(200);
/// How often the draining thread looks at the in-flight count.
const POLL: Duration = Duration::from_millis(10);

static DRAINING: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static STREAMS_END: Lazy<watch::Sender<bool>> = Lazy::new(|| watch::channel(false).0);

/// True from the moment a SIGTERM or an upgrade's SIGQUIT is seen: responses from now on
/// close their connection.
pub fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

/// Requests between `RequestCtx::new` and the end of their `logging` phase.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Acquire)
}

/// True shortly before the grace period ends: a stream still running must end now, with the
/// terminal error in the client's dialect, or the runtime shutdown cuts it silently.
pub fn streams_must_end() -> bool {
    *STREAMS_END.borrow()
}

/// Resolves when [`streams_must_end`] becomes true (for a relay waiting on an idle upstream).
pub async fn streams_must_end_signal() {
    let mut rx = STREAMS_END.subscribe();
    let _ = rx.wait_for(|end| *end).await;
}

/// One request in flight, counted while the guard lives (a field of `RequestCtx`).
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    /// Count one more request in flight.
    pub fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long before the end of the grace period streams are told to end:
/// a tenth of it, at most one second.
pub fn stream_margin(grace: Duration) -> Duration {
    (grace / 10).min(Duration::from_secs(1))
}

/// Follows Pingora's execution phases. A background service, so that its thread starts after
/// `--daemon` forked (threads started before the fork do not exist in the daemon).
pub struct Watcher {
    phases: Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    grace: Duration,
}

impl Watcher {
    /// `phases` from `Server::watch_execution_phase()`; `grace` is `server.grace_period`.
    pub fn new(phases: broadcast::Receiver<ExecutionPhase>, grace: Duration) -> Watcher {
        Watcher {
            phases: Mutex::new(Some(phases)),
            grace,
        }
    }
}

#[async_trait]
impl BackgroundService for Watcher {
    async fn start(&self, _shutdown: ShutdownWatch) {
        // The access-log writer thread, too, must be started in the process that serves.
        crate::access_log::start_writer();
        let Some(phases) = self.phases.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let grace = self.grace;
        // A plain thread: it must keep running while the main thread sleeps and the service
        // runtimes wind down.
        if let Err(e) = std::thread::Builder::new()
            .name("lifecycle".into())
            .spawn(move || follow(phases, grace))
        {
            log::error!(
                "cannot start the lifecycle thread ({e}): SIGTERM waits the whole grace period"
            );
        }
    }
}

fn follow(mut phases: broadcast::Receiver<ExecutionPhase>, grace: Duration) {
    loop {
        match phases.blocking_recv() {
            Ok(ExecutionPhase::GracefulTerminate) => begin_draining("SIGTERM"),
            Ok(ExecutionPhase::GracefulUpgradeTransferringFds) => {
                begin_draining("SIGQUIT (upgrade)")
            }
            Ok(ExecutionPhase::ShutdownGracePeriod) => drain_then_exit(grace),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn begin_draining(why: &str) {
    if !DRAINING.swap(true, Ordering::Relaxed) {
        log::info!(
            "{why}: draining, {} request(s) in flight; responses now close their connection",
            in_flight()
        );
    }
}

/// Runs from the start of Pingora's grace period: exit once nothing is in flight, or return
/// at its end and leave the rest to Pingora's runtime shutdown.
fn drain_then_exit(grace: Duration) {
    DRAINING.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let end_streams_at = grace.saturating_sub(stream_margin(grace));
    let mut idle_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let elapsed = now.duration_since(started);
        if elapsed >= end_streams_at && !streams_must_end() {
            log::warn!(
                "grace period ends in {:?}: ending {} request(s) still in flight",
                grace.saturating_sub(elapsed),
                in_flight()
            );
            STREAMS_END.send_replace(true);
        }
        if in_flight() == 0 {
            let since = *idle_since.get_or_insert(now);
            if now.duration_since(since) >= SETTLE {
                break;
            }
        } else {
            idle_since = None;
        }
        if elapsed >= grace {
            return;
        }
        std::thread::sleep(POLL);
    }
    log::info!(
        "nothing in flight after {:?} of the grace period: exiting",
        started.elapsed()
    );
    crate::access_log::flush(Duration::from_secs(1));
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_told_a_tenth_of_the_grace_before_its_end_at_most_a_second() {
        assert_eq!(
            stream_margin(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(
            stream_margin(Duration::from_secs(3)),
            Duration::from_millis(300)
        );
        assert_eq!(stream_margin(Duration::ZERO), Duration::ZERO);
    }
}
