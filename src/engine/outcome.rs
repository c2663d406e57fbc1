//! What a run produces: [`RunMetrics`] (`metrics.json`), the typed result of the run loop's last stage,
//! with the seconds each stage took ([`Timings`]).

use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::engine::data::LabelBias;
use crate::eval::evaluate::Evaluation;
use crate::eval::holdout::DataEvaluation;
use crate::eval::spectral::JacobianMode;

/// Everything a run produces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    /// `stiffx` version.
    pub version: String,
    /// Seed.
    pub seed: u64,
    /// Backend used.
    pub backend: String,
    /// Training precision (`train.precision`); written only when it is not the default f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub train_precision: Precision,
    /// One-line descriptions of the plugins used.
    pub system: String,
    /// Sampler description.
    pub sampler: String,
    /// Labeller description.
    pub labeller: String,
    /// Fitted transform description.
    pub transform: String,
    /// Jacobian mode of the evaluation.
    pub jacobian: JacobianMode,
    /// Training samples.
    pub n_train: usize,
    /// Validation samples.
    pub n_val: usize,
    /// Best validation loss (transformed space).
    #[serde(with = "crate::io::float")]
    pub best_val_loss: f64,
    /// Its epoch.
    pub best_epoch: usize,
    /// Rows of the loss curve: Adam epochs run, then L-BFGS rounds (`train.lbfgs`).
    pub epochs: usize,
    /// Training throughput.
    #[serde(with = "crate::io::float")]
    pub train_samples_per_sec: f64,
    /// How many networks trained together with this one, itself included (`--together`,
    /// `train::many`); absent: 1, trained alone. With several, `train_samples_per_sec` and
    /// `seconds.train` are this network's rows over the group's time.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub trained_together: usize,
    /// Seconds: sampling, labelling, training, evaluation.
    pub seconds: Timings,
    /// Label error against exact labels.
    pub label_bias: Vec<LabelBias>,
    /// For log-spaced evaluations, the eigenvalue errors per decade of time pooled over eps, then over
    /// all points ([`pool_windows`](crate::eval::metrics::pool_windows)); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::eval::metrics::PooledWindow>,
    /// Spectral and rollout metrics against the reference system (absent for a `data` system).
    #[serde(default, skip_serializing_if = "Evaluation::is_empty")]
    pub eval: Evaluation,
    /// The learned operator on trajectories (`eval.data`, or a `data` system's own file): rollouts and
    /// time scales ([`DataEvaluation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataEvaluation>,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Wall-clock split of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Sampling.
    pub sample: f64,
    /// Labelling.
    pub label: f64,
    /// Training.
    pub train: f64,
    /// Of training, the time spent saving resumable states (`--save-every`); 0 without an output
    /// directory.
    #[serde(default)]
    pub save: f64,
    /// Evaluation.
    pub eval: f64,
}
