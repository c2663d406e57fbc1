//! Clean stops. SIGINT and SIGTERM — what a terminal's Ctrl-C and a cluster scheduler at its time
//! limit send — set a flag instead of killing the process; the training loop reads it after every
//! Adam epoch and L-BFGS round, saves its resumable state, keeps the best checkpoint and stops with
//! [`Error::Interrupted`], whose message says how to resume. A second signal exits at once (the
//! handler restores the default action when it runs). The pipeline also reads the flag between
//! stages, so a signal during sampling and labelling stops before training starts, and every ODE
//! integration reads it between two steps (`ode::integrate_at`): a signal during the evaluation stops
//! the run within a step of the solver, before anything of the evaluation is written (a learned
//! rollout it ends is a NaN row, which the pipeline and `stiffx eval` then refuse to write).
//!
//! Also the hook of the kill-and-resume tests: with `STIFFX_KILL_AT=<point>:<n>[:term]` the process
//! sends itself SIGKILL (with `:term`, SIGTERM) the `n`-th time it passes [`kill_point`]`(<point>)`.
//! The points: `data` (sampling done, labelling not), `adam` (after an epoch, before its save),
//! `lbfgs` (after a round), `save` (a state file written but not yet renamed into place), `eval`
//! (training done, evaluation not).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
    // `signal` is async-signal-safe: the next signal takes the default action (exit at once).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// Installs the SIGINT and SIGTERM handlers (no-op off Unix). Call once, before long work.
pub fn install() {
    #[cfg(unix)]
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Restores SIGPIPE's default action (no-op off Unix), as command-line tools do: a command whose
/// output goes to a pipe that closed early (`stiffx run --check | head -2`) ends quietly, like `cat`,
/// instead of panicking on the failed print. Files are written atomically (a temporary file renamed
/// into place), so ending there leaves none half-written.
pub fn default_sigpipe() {
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The name of the stop signal received so far (`SIGINT`, `SIGTERM`), if any.
pub fn requested() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        #[cfg(unix)]
        libc::SIGINT => Some("SIGINT"),
        #[cfg(unix)]
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}

/// `Err(`[`Error::Interrupted`]`)` when a stop signal has arrived; `at` says where the run stopped.
pub fn check(at: impl FnOnce() -> String) -> Result<()> {
    match requested() {
        Some(signal) => Err(Error::Interrupted { signal, at: at(), resume: String::new() }),
        None => Ok(()),
    }
}

/// The exit code of a run stopped by `signal`: 128 + its number, as a shell reports a killed process.
pub fn exit_code(signal: &str) -> u8 {
    match signal {
        "SIGINT" => 130,
        "SIGTERM" => 143,
        _ => 1,
    }
}

/// The parsed `STIFFX_KILL_AT`: point, count, whether to send SIGTERM instead of SIGKILL.
fn kill_at() -> &'static Option<(String, usize, bool)> {
    static AT: OnceLock<Option<(String, usize, bool)>> = OnceLock::new();
    AT.get_or_init(|| {
        let v = std::env::var("STIFFX_KILL_AT").ok()?;
        let mut parts = v.split(':');
        let point = parts.next()?.to_string();
        let n = parts.next()?.parse().ok()?;
        Some((point, n, parts.next() == Some("term")))
    })
}

/// A place where kill-and-resume tests stop the process (see the module docs); a no-op unless
/// `STIFFX_KILL_AT` names it.
pub fn kill_point(point: &str) {
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    let Some((at, n, term)) = kill_at() else { return };
    if at != point || PASSED.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    #[cfg(unix)]
    unsafe {
        libc::raise(if *term { libc::SIGTERM } else { libc::SIGKILL });
    }
}
