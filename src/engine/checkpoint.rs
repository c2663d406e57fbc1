//! The checkpoint: everything needed to rebuild the learned RHS `F_θ(x, eps)` and its Jacobian and to
//! reproduce a run's metrics — the resolved config (with the *fitted* transform), the input normaliser
//! and the best-validation weights.
//!
//! Format 2 (`stiffx-checkpoint-2`, what runs and `stiffx export` write; `docs/checkpoint-format.md`) is
//! two files side by side:
//!
//! - `checkpoint.json`: the metadata — dimension, species names, network shapes and activation,
//!   normaliser, the invariant projector `P` (so that a reader needs no system code), the config, and
//!   the SHA-256 of the weights file;
//! - `checkpoint.safetensors`: the weights ([`crate::model::store`]), f64 in PyTorch's layout.
//!
//! A reader in any language rebuilds `F = P T⁻¹(a(h₀))` and `J = P diag(dT⁻¹/da) ∂a/∂x` from these two
//! files alone (`examples/numpy_reader.py` does, with NumPy). Format 1 (`stiffx-checkpoint-1`: one JSON
//! file with the weights as nested lists) still loads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::spectral::invariant_projector;
use crate::io::{sha256_hex, write_atomic, write_json};
use crate::model::{Activation, Normalizer, Weights};

/// Everything needed to rebuild the learned RHS and reproduce its metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format tag of the file it was read from (`stiffx-checkpoint-1` or `-2`); saving writes format 2.
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

/// Format tag of one-file JSON checkpoints (still read).
pub(crate) const FORMAT_V1: &str = "stiffx-checkpoint-1";
/// Format tag of JSON metadata + safetensors weights (written).
pub const FORMAT: &str = "stiffx-checkpoint-2";

/// The network's shape in a format-2 checkpoint (its parameters are in the safetensors file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// `[d_in, d_out]` of each layer, input first.
    pub layers: Vec<[usize; 2]>,
    /// Activation after every hidden layer.
    pub activation: Activation,
    /// A mass-action reaction network ([`Weights::mass_action`]).
    pub mass_action: bool,
}

/// `checkpoint.json` of format 2: everything but the weights (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    /// `stiffx-checkpoint-2`.
    pub format: String,
    /// The weights file, relative to this file's directory.
    pub weights_file: String,
    /// SHA-256 (hex) of the weights file's bytes.
    pub weights_sha256: String,
    /// The stiffx version that wrote it.
    pub stiffx_version: String,
    /// State dimension `d`.
    pub dim: usize,
    /// Names of the state components.
    pub state_names: Vec<String>,
    /// Name of the stiffness parameter.
    pub param_name: String,
    /// Layer shapes and activation.
    pub network: Network,
    /// Input standardisation and state input map.
    pub normalizer: Normalizer,
    /// The invariant projector `P` (`d` rows of `d`), applied as `F ← P F`, `J ← P J`; `None`: none.
    pub projector: Option<Vec<Vec<f64>>>,
    /// The resolved config (the fitted transform in `config.transform`, the eps input map in
    /// `config.model.eps_input`).
    pub config: Config,
    /// Epoch of the weights.
    pub epoch: usize,
    /// Validation loss of the weights.
    #[serde(with = "crate::io::float")]
    pub val_loss: f64,
}

/// Just the format tag, read first to pick the parser.
#[derive(Deserialize)]
struct Tag {
    format: Option<String>,
}

impl Checkpoint {
    /// The mechanism a reaction network learned (`None` for any other network), as mechanism YAML
    /// (`eval::reactions::learned_mechanism`; `round > 0` snaps orders and stoichiometry within
    /// `round` of integers). Its `stiffx:` section carries the system's grids and test states and the
    /// evaluation horizon, so the file runs as a system: `stiffx run --system FILE`.
    pub fn learned_mechanism_yaml(&self, round: f64, source: &str) -> Option<String> {
        let reactions = self.weights.reactions(&self.normalizer)?;
        let sys = self.config.system.as_ref();
        let m = crate::eval::reactions::learned_mechanism(&reactions, sys, self.config.eval.horizon, round);
        let header = format!(
            "The mechanism learned by a stiffx reaction network ({source}, epoch {}, validation loss {:.3e}).\n\
             r = k · eps^eps-power · Π x^order; the network's log-input offsets c_i (1e-12 of each species' range)\n\
             are dropped. {}Run it as a system: stiffx run --system THIS_FILE",
            self.epoch,
            self.val_loss,
            if round > 0.0 {
                format!("Orders and stoichiometry within {round} of integers rounded. ")
            } else {
                String::new()
            }
        );
        let description = format!("learned from {} ({} reactions)", source, m.reactions.len());
        Some(crate::plugins::mechanism::write::to_yaml(&m, &header, &description))
    }

    /// A new checkpoint (format 2 when saved).
    pub fn new(config: Config, normalizer: Normalizer, weights: Weights, epoch: usize, val_loss: f64) -> Self {
        Self { format: FORMAT.into(), config, normalizer, weights, epoch, val_loss }
    }

    /// Reads and checks a checkpoint: `path` is its JSON file (format 1 or 2) or a directory holding
    /// `checkpoint.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let path = if path.is_dir() { path.join("checkpoint.json") } else { path.to_path_buf() };
        let bad = |m: String| Error::Checkpoint { path: path.clone(), message: m };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let tag: Tag = serde_json::from_str(&text).map_err(|e| bad(format!("not a JSON file: {e}")))?;
        let ck = match tag.format.as_deref() {
            Some(FORMAT_V1) => {
                serde_json::from_str::<Checkpoint>(&text).map_err(|e| bad(format!("not a stiffx checkpoint: {e}")))?
            }
            Some(FORMAT) => {
                let meta: Metadata =
                    serde_json::from_str(&text).map_err(|e| bad(format!("not a stiffx checkpoint: {e}")))?;
                Self::from_metadata(meta, &path).map_err(bad)?
            }
            other => {
                return Err(bad(format!(
                    "format {}, expected `{FORMAT}` or `{FORMAT_V1}`",
                    other.map_or("missing".to_string(), |f| format!("`{f}`"))
                )));
            }
        };
        ck.check().map_err(bad)?;
        Ok(ck)
    }

    /// The weights of a format-2 metadata file at `path`, checked against its hash and shapes.
    fn from_metadata(meta: Metadata, path: &Path) -> std::result::Result<Self, String> {
        let file = path.parent().unwrap_or(Path::new(".")).join(&meta.weights_file);
        let bytes =
            std::fs::read(&file).map_err(|e| format!("cannot read its weights file {}: {e}", file.display()))?;
        let sha = sha256_hex(&bytes);
        if sha != meta.weights_sha256 {
            return Err(format!(
                "weights file {} has SHA-256 {sha}, but the checkpoint names {} (a different or partly written file)",
                file.display(),
                meta.weights_sha256
            ));
        }
        let shapes: Vec<(usize, usize)> = meta.network.layers.iter().map(|l| (l[0], l[1])).collect();
        let weights = Weights::from_safetensors(&bytes, &shapes, meta.network.activation, meta.network.mass_action)
            .map_err(|e| format!("weights file {}: {e}", file.display()))?;
        if meta.dim != meta.config.system.dim() {
            return Err(format!("dim = {} but its system has dimension {}", meta.dim, meta.config.system.dim()));
        }
        Ok(Self {
            format: meta.format,
            config: meta.config,
            normalizer: meta.normalizer,
            weights,
            epoch: meta.epoch,
            val_loss: meta.val_loss,
        })
    }

    /// Checks the network, the normaliser and the config against the system's dimension.
    fn check(&self) -> std::result::Result<(), String> {
        self.weights.check()?;
        let d = self.config.system.dim();
        let first = &self.weights.layers[0];
        let last = &self.weights.layers[self.weights.layers.len() - 1];
        let n = &self.normalizer;
        if first.d_in != d + 1
            || last.d_out != d
            || n.mean.len() != d + 1
            || n.std.len() != d + 1
            || !(n.state_scale.is_empty() || n.state_scale.len() == d)
            || n.state_scale.iter().any(|c| !(c.is_finite() && *c > 0.0))
        {
            return Err(format!("network/normaliser shapes do not match the system's dimension {d}"));
        }
        self.config.validate().map_err(|e| format!("invalid config inside: {e}"))
    }

    /// The format-2 metadata of this checkpoint for weights with SHA-256 `weights_sha256` in
    /// `weights_file`.
    pub fn metadata(&self, weights_file: &str, weights_sha256: String) -> Result<Metadata> {
        let cfg = &self.config;
        let sys = cfg.system.as_ref();
        let d = sys.dim();
        let invariants = if cfg.model.project_invariants { sys.invariants() } else { Vec::new() };
        let projector = invariant_projector(d, &invariants, &cfg.model.eliminate)?
            .map(|p| (0..d).map(|r| (0..d).map(|c| p[(r, c)]).collect()).collect());
        Ok(Metadata {
            format: FORMAT.into(),
            weights_file: weights_file.into(),
            weights_sha256,
            stiffx_version: env!("CARGO_PKG_VERSION").into(),
            dim: d,
            state_names: sys.state_names(),
            param_name: sys.param_name(),
            network: Network {
                layers: self.weights.layers.iter().map(|l| [l.d_in, l.d_out]).collect(),
                activation: self.weights.activation,
                mass_action: self.weights.mass_action,
            },
            normalizer: self.normalizer.clone(),
            projector,
            config: cfg.clone(),
            epoch: self.epoch,
            val_loss: self.val_loss,
        })
    }

    /// Writes the checkpoint in format 2: the weights to `<path without extension>.safetensors`, then
    /// the metadata (with the weights' hash) to `path`, each atomically, so that the JSON never names
    /// weights that are not whole.
    pub fn save(&self, path: &Path) -> Result<()> {
        let weights_path: PathBuf = path.with_extension("safetensors");
        let name = weights_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // One metadata key: safetensors writes a map's keys in hash order, and the file must be
        // byte-identical across runs of the same seed.
        let bytes = self.weights.to_safetensors(HashMap::from([("format".to_string(), FORMAT.to_string())]));
        write_atomic(&weights_path, &bytes)?;
        write_json(path, &self.metadata(&name, sha256_hex(&bytes))?)
    }

    /// Writes the checkpoint in format 1 (one JSON file, weights as nested lists), for tools that read
    /// only that.
    pub fn save_v1(&self, path: &Path) -> Result<()> {
        let mut v1 = self.clone();
        v1.format = FORMAT_V1.into();
        write_json(path, &v1)
    }
}
