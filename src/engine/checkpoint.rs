//! The checkpoint: everything needed to rebuild the learned RHS and reproduce a run's metrics — the
//! resolved config (with the *fitted* transform), the input normaliser and the best-validation
//! weights — in one JSON file, `checkpoint.json` (format tag `stiffx-checkpoint-1`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::io::write_json;
use crate::model::{Normalizer, Weights};

/// Everything needed to rebuild the learned RHS and reproduce its metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format tag, `stiffx-checkpoint-1`.
    pub format: String,
    /// The experiment; `config.transform` holds the *fitted* transform.
    pub config: Config,
    /// Input standardisation (training statistics).
    pub normalizer: Normalizer,
    /// Best-validation weights.
    pub weights: Weights,
    /// Epoch of the weights.
    pub epoch: usize,
    /// Validation loss of the weights.
    #[serde(with = "crate::io::float")]
    pub val_loss: f64,
}

pub(crate) const FORMAT: &str = "stiffx-checkpoint-1";

impl Checkpoint {
    /// Reads and checks a checkpoint file.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |m: String| Error::Checkpoint { path: path.to_path_buf(), message: m };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| bad(format!("not a stiffx checkpoint: {e}")))?;
        if ck.format != FORMAT {
            return Err(bad(format!("format `{}`, expected `{FORMAT}`", ck.format)));
        }
        ck.weights.check().map_err(bad)?;
        let d = ck.config.system.dim();
        let first = &ck.weights.layers[0];
        let last = &ck.weights.layers[ck.weights.layers.len() - 1];
        if first.d_in != d + 1
            || last.d_out != d
            || ck.normalizer.mean.len() != d + 1
            || ck.normalizer.std.len() != d + 1
            || !(ck.normalizer.state_scale.is_empty() || ck.normalizer.state_scale.len() == d)
            || ck.normalizer.state_scale.iter().any(|c| !(c.is_finite() && *c > 0.0))
        {
            return Err(bad(format!("network/normaliser shapes do not match the system's dimension {d}")));
        }
        ck.config.validate().map_err(|e| bad(format!("invalid config inside: {e}")))?;
        Ok(ck)
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }
}
