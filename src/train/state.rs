//! Resumable training state: what [`super::train_from`] needs to continue a run exactly where it
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
//! [`crate::engine::checkpoint::Checkpoint::train_state`]), not in a format of its own.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Weights;

use super::{EpochRecord, Optimizer};

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

impl TrainState {
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
        self.best.check().and(self.current.check()).map_err(bad)
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
