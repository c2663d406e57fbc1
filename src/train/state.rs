//! The interface of training — the loss curve's rows, the observer hooks, the outcome — and its
//! resumable state: what `train::train_from` needs to continue a run exactly where it
//! stopped, at the end of a loss-curve row (an Adam epoch or an L-BFGS round).
//!
//! It holds the curve so far, the best-validation weights, the current weights and the optimiser's
//! state: Adam's moments and step counts, keyed by the network's parameter ids (kept, so that the
//! restored network matches them), or L-BFGS's history, search direction and step with the phase's
//! bookkeeping (loss scale, last loss, evaluations, rounds done). The optimiser state is burn's own
//! record (burnpack bytes, base64 in JSON), so every tensor comes back bit for bit. The batch order is
//! not stored: it is the seed's, replayed for the epochs done. So on the CPU backends a resumed run
//! takes the same steps as an uninterrupted one and ends with the same weights, bit for bit.
//!
//! The state travels inside a checkpoint (`resume.json` of a run's working directory,
//! `engine::rundir::Resumable`), not in a format of its own.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Weights;

/// One row of the loss curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (non-finite when the epoch diverged: written as
    /// `"NaN"`/`"inf"`, so that a state holding such a row reads back).
    #[serde(with = "crate::io::float")]
    pub train_loss: f64,
    /// Validation loss after the epoch.
    #[serde(with = "crate::io::float")]
    pub val_loss: f64,
    /// Learning rate used in the epoch.
    pub lr: f64,
    /// Seconds since training started.
    pub seconds: f64,
    /// The optimiser of this row: Adam epochs first, then L-BFGS rounds (`train.lbfgs`).
    #[serde(default)]
    pub optimizer: Optimizer,
}

/// Which optimiser produced a row of the loss curve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// One epoch of mini-batch Adam; `lr` is its learning rate.
    #[default]
    Adam,
    /// One round of full-batch L-BFGS (up to `train::LBFGS_ROUND` iterations); `lr` is 0 (no learning rate: the
    /// line search sets each step).
    Lbfgs,
}

/// Hooks called by `train::train`; every method has a no-op default.
pub trait TrainObserver {
    /// Before the first epoch, with the initial network and its validation loss.
    fn on_start(&mut self, _init: &Weights, _val_loss: f64) -> Result<()> {
        Ok(())
    }
    /// Instead of [`on_start`](Self::on_start) when training continues from a saved state.
    fn on_resume(&mut self, _state: &TrainState) -> Result<()> {
        Ok(())
    }
    /// After each epoch; `improved` when the validation loss is the best so far.
    fn on_epoch(&mut self, _record: &EpochRecord, _improved: bool, _best: &Weights) -> Result<()> {
        Ok(())
    }
    /// After each row: whether to save a resumable state now; `last` for the last row of training.
    /// A stop signal saves one whatever this says.
    fn save_due(&mut self, _last: bool) -> bool {
        false
    }
    /// A resumable state, when [`save_due`](Self::save_due) asked for one or a stop signal came.
    fn on_state(&mut self, _state: &TrainState) -> Result<()> {
        Ok(())
    }
}

/// An observer that does nothing.
pub struct Silent;
impl TrainObserver for Silent {}

/// The outcome of a training run.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Best-validation weights.
    pub best: Weights,
    /// Epoch of `best`.
    pub best_epoch: usize,
    /// Best validation loss.
    pub best_val_loss: f64,
    /// Loss curve.
    pub curve: Vec<EpochRecord>,
    /// Training throughput, samples per second (forward + backward + Adam step).
    pub samples_per_sec: f64,
    /// Full-batch loss and gradient evaluations of the L-BFGS phase (`train.lbfgs`); 0 without one.
    pub lbfgs_evaluations: usize,
    /// Seconds of the L-BFGS phase, validation included; 0 without one.
    pub lbfgs_seconds: f64,
    /// Seconds spent building and saving resumable states ([`TrainObserver::on_state`]).
    pub save_seconds: f64,
}

/// Version of [`TrainState`]'s layout; a state of another version is refused.
pub const STATE_VERSION: u32 = 1;

/// Training at the end of a loss-curve row (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The loss curve so far.
    pub curve: Vec<EpochRecord>,
    /// Best-validation weights so far.
    pub best: Weights,
    /// Their validation loss.
    #[serde(with = "crate::io::float")]
    pub best_val: f64,
    /// Their row of the curve (0: the initial network).
    pub best_epoch: usize,
    /// The weights at the end of the last row.
    pub current: Weights,
    /// The optimiser and its state.
    pub phase: Phase,
    /// Training samples seen by Adam (for the throughput).
    pub samples_seen: usize,
    /// Seconds of Adam steps (for the throughput).
    pub adam_seconds: f64,
    /// Seconds of the L-BFGS phase.
    pub lbfgs_seconds: f64,
    /// Seconds spent building and saving states.
    pub save_seconds: f64,
    /// The device that saved it (burn's `Device`, as `Debug` prints it; empty in older states): a
    /// resume on another one continues, but not bit for bit.
    #[serde(default)]
    pub device: String,
    /// This network's share of the training time so far, when it trained in a pass with others
    /// (`--together`: each epoch's time over the pass's networks); `None` in older states, where it
    /// is the curve's clock.
    #[serde(default)]
    pub share_seconds: Option<f64>,
    /// Networks in the pass that trained its last row (`--together`); `None` alone or in older states.
    #[serde(default)]
    pub pass: Option<usize>,
}

/// The optimiser at the end of a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "optimizer", rename_all = "lowercase")]
pub enum Phase {
    /// Adam, after `curve.len()` epochs.
    Adam {
        /// The network's parameter ids, which key the optimiser state.
        param_ids: Vec<u64>,
        /// burn's optimiser record (burnpack), base64.
        state: String,
    },
    /// L-BFGS, after [`LbfgsProgress::rounds`] rounds.
    Lbfgs {
        /// The phase's bookkeeping.
        progress: LbfgsProgress,
        /// burn's L-BFGS record (burnpack), base64.
        state: String,
    },
}

/// Where the L-BFGS phase stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LbfgsProgress {
    /// The objective's scale (1 / the loss at the phase's start).
    pub scale: f64,
    /// The scaled loss after the last round.
    pub last: f64,
    /// Full-batch loss and gradient evaluations so far.
    pub evaluations: usize,
    /// Rounds done.
    pub rounds: usize,
    /// The phase has stopped (a round that did not lower the loss, or a non-finite one).
    pub finished: bool,
}

/// Why a saved state in the L-BFGS phase cannot continue f64 training: burn 0.22 rebuilds a loaded
/// optimiser state in the device's default float type (f32), so L-BFGS's history would come back
/// rounded and the next step mixes f32 and f64. (Adam's state keeps its type: `train::adam`.)
pub const F64_RESUME: &str = "continuing f64 training (train.precision = \"f64\") in its L-BFGS phase from a saved state: burn 0.22 loads L-BFGS's history in f32, so the run could not continue exactly";

impl TrainState {
    /// Whether training in `precision` can continue from this state: not an f64 run in its L-BFGS
    /// phase ([`F64_RESUME`]); the error says why.
    pub fn continues_in(&self, precision: crate::backend::Precision) -> Result<()> {
        if precision == crate::backend::Precision::F64 && matches!(self.phase, Phase::Lbfgs { .. }) {
            return Err(Error::Unsupported(F64_RESUME.into()));
        }
        Ok(())
    }

    /// This network's share of the training time so far ([`TrainState::share_seconds`], else the
    /// curve's clock at its last row).
    pub fn share(&self) -> f64 {
        self.share_seconds.unwrap_or_else(|| self.curve.last().map_or(0.0, |r| r.seconds.max(0.0)))
    }

    /// Adam epochs done.
    pub fn adam_epochs(&self) -> usize {
        self.curve.iter().filter(|r| r.optimizer == Optimizer::Adam).count()
    }

    /// Checks the state against the run it is to continue: its version, and at most `epochs` Adam
    /// epochs and `rounds` L-BFGS rounds.
    pub fn check(&self, epochs: usize, rounds: usize) -> Result<()> {
        let bad = |m: String| Error::Checkpoint { path: "resume.json".into(), message: m };
        if self.version != STATE_VERSION {
            return Err(bad(format!("train state version {} (this stiffx reads {STATE_VERSION})", self.version)));
        }
        let adam = self.adam_epochs();
        let lbfgs = self.curve.len() - adam;
        if adam > epochs || lbfgs > rounds {
            return Err(bad(format!(
                "the state has {adam} Adam epochs and {lbfgs} L-BFGS rounds, the config {epochs} and {rounds}"
            )));
        }
        self.best.check().map_err(bad)?;
        // The last weights matter only when there is training left to continue from them (a last
        // L-BFGS round may end on non-finite weights; the best ones are kept).
        if adam < epochs || lbfgs < rounds {
            self.current.check().map_err(bad)?;
        }
        Ok(())
    }
}

/// Bytes as base64 text.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// base64 text back to bytes.
pub fn decode(text: &str) -> Result<Vec<u8>> {
    STANDARD.decode(text).map_err(|e| Error::Checkpoint {
        path: "resume.json".into(),
        message: format!("optimizer state is not base64: {e}"),
    })
}
