//! The crate's error type: every failure a user can cause (bad config, bad CLI value, unknown plugin
//! name, unreadable data or checkpoint, a diverging training run) is a typed variant whose message names
//! the offending field and, where there is a closed set, the allowed values.

use std::path::PathBuf;

/// Result alias used throughout stiffx.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in stiffx.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plugin name that is not registered.
    #[error("unknown {kind} `{name}`; known {kind}s: {}", known.join(", "))]
    Unknown {
        /// Plugin kind (`system`, `transform`, `sampler`, `labeller`, `backend`).
        kind: &'static str,
        /// The name that was asked for.
        name: String,
        /// Every registered name of that kind, sorted.
        known: Vec<String>,
    },
    /// A configuration value outside its allowed range.
    #[error("invalid value for `{field}`: {value} (allowed: {allowed})")]
    Invalid {
        /// Dotted path of the field, e.g. `sampler.r_off`.
        field: String,
        /// The offending value, as given.
        value: String,
        /// What is allowed, in words.
        allowed: String,
    },
    /// A config file that cannot be parsed.
    #[error("cannot parse config {path}: {message}")]
    Config {
        /// File that was read.
        path: PathBuf,
        /// Parser message (names the key and position).
        message: String,
    },
    /// A data file (trajectories) that cannot be read or holds a bad value; the message gives the
    /// line, the column and the field.
    #[error("invalid data file {path}: {message}")]
    Data {
        /// File that was read.
        path: PathBuf,
        /// What is wrong, where (line, column, field) and what is allowed.
        message: String,
    },
    /// A checkpoint that cannot be read or does not match the build.
    #[error("cannot load checkpoint {path}: {message}")]
    Checkpoint {
        /// File that was read.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A backend that exists but was not compiled into this binary.
    #[error("backend `{name}` is not compiled in; rebuild with `cargo build --release --features {feature}`")]
    BackendNotCompiled {
        /// Backend asked for.
        name: String,
        /// Cargo feature that enables it.
        feature: &'static str,
    },
    /// A compiled-in backend whose runtime is missing on this machine (no CUDA driver, no Vulkan
    /// adapter, a libtorch without CUDA).
    #[error("backend `{name}` is compiled in but cannot start on this machine: {reason}")]
    BackendUnavailable {
        /// Backend asked for.
        name: String,
        /// What burn or the driver reported.
        reason: String,
    },
    /// Training produced a non-finite loss.
    #[error(
        "training diverged at epoch {epoch}: loss is {loss} (try a smaller learning rate); the best checkpoint so far (epoch {best_epoch}) was kept"
    )]
    Diverged {
        /// Epoch at which the loss became non-finite.
        epoch: usize,
        /// The loss value (NaN or inf).
        loss: f64,
        /// Epoch of the kept best checkpoint (0 = none).
        best_epoch: usize,
    },
    /// An ODE solve failed.
    #[error("ODE solver failed ({context}): {message}")]
    Solver {
        /// What was being integrated.
        context: String,
        /// The solver's message.
        message: String,
    },
    /// A labeller cannot label a sample set (e.g. finite differences without trajectories).
    #[error("{0}")]
    Unsupported(String),
    /// `stiffx collect` found jobs of a spec that have not finished (exit code 3).
    #[error(
        "{missing} of {total} jobs of {spec} have not finished: {ids}; run them with `stiffx run-job {spec} --index {indices}`"
    )]
    Incomplete {
        /// The spec file.
        spec: String,
        /// How many jobs are missing.
        missing: usize,
        /// How many jobs the spec has.
        total: usize,
        /// The missing jobs' ids (the first few).
        ids: String,
        /// The missing jobs' indices, as `--index` takes them.
        indices: String,
    },
    /// A stop signal (SIGINT, SIGTERM) ended the run cleanly: its resumable state and best checkpoint
    /// are saved (exit code 128 + the signal's number).
    #[error("stopped by {signal} {at}{resume}")]
    Interrupted {
        /// `SIGINT` or `SIGTERM`.
        signal: &'static str,
        /// Where the run stopped (`after epoch 12 of 40; its state is saved`).
        at: String,
        /// How to continue (`; resume with: stiffx run --resume DIR`), filled in by the command.
        resume: String,
    },
    /// A run directory that holds something already, or an interrupted run in its place.
    #[error("{message}")]
    Occupied {
        /// What is there and which flag to give.
        message: String,
    },
    /// File-system error with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// Path being read or written.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, value: impl ToString, allowed: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), value: value.to_string(), allowed: allowed.into() }
    }

    /// `Ok` when the integer `v` is at least 1, else [`Error::Invalid`] naming `field`.
    pub fn at_least_one(field: impl Into<String>, v: i64) -> Result<()> {
        if v >= 1 { Ok(()) } else { Err(Error::invalid(field, v, "an integer >= 1")) }
    }

    /// `Ok` when `v` is finite and > 0, else [`Error::Invalid`] naming `field`.
    pub fn positive(field: impl Into<String>, v: f64) -> Result<()> {
        if v.is_finite() && v > 0.0 { Ok(()) } else { Err(Error::invalid(field, v, "a finite number > 0")) }
    }

    /// `Ok` when `v` is finite and >= 0, else [`Error::Invalid`] naming `field`.
    pub fn non_negative(field: impl Into<String>, v: f64) -> Result<()> {
        if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(Error::invalid(field, v, "a finite number >= 0")) }
    }

    /// `Ok` when `lo` and `hi` are finite and `lo ≤ hi` (a range to sample from), else
    /// [`Error::Invalid`] naming the field at fault.
    pub fn finite_range(lo_field: &str, lo: f64, hi_field: &str, hi: f64) -> Result<()> {
        if !lo.is_finite() {
            return Err(Error::invalid(lo_field, lo, format!("a finite number at most {hi_field}")));
        }
        if !hi.is_finite() {
            return Err(Error::invalid(hi_field, hi, format!("a finite number at least {lo_field}")));
        }
        if lo > hi {
            return Err(Error::invalid(lo_field, lo, format!("at most {hi_field} ({hi})")));
        }
        Ok(())
    }

    /// `Ok` when the count `n` is at most `max`, else [`Error::Invalid`] naming `field` with what it
    /// implies: the guard before a count from the user becomes an allocation.
    pub fn at_most(field: impl Into<String>, n: f64, max: f64, what: &str) -> Result<()> {
        if n <= max {
            Ok(())
        } else {
            Err(Error::invalid(field, format!("{n:.3e} {what}"), format!("at most {max:.0e} {what}")))
        }
    }

    /// The same error with its field renamed from under `from` to under `to` (`sampler.dt` →
    /// `sampler.base.dt` when a cloud validates its base sampler); other errors unchanged.
    pub fn moved(self, from: &str, to: &str) -> Self {
        match self {
            Error::Invalid { field, value, allowed } if field.starts_with(from) => {
                Error::Invalid { field: format!("{to}{}", &field[from.len()..]), value, allowed }
            }
            e => e,
        }
    }

    /// The same [`Error::Invalid`] naming `field` instead (a value checked without knowing its place,
    /// named by its caller); other errors unchanged.
    pub fn with_field(self, field: impl Into<String>) -> Self {
        match self {
            Error::Invalid { value, allowed, .. } => Error::Invalid { field: field.into(), value, allowed },
            e => e,
        }
    }

    /// An [`Error::Interrupted`] with how to resume it; other errors unchanged.
    pub fn with_resume(self, how: &str) -> Self {
        match self {
            Error::Interrupted { signal, at, .. } => Error::Interrupted { signal, at, resume: format!("; {how}") },
            e => e,
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
