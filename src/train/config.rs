//! `[train]` of a config: optimiser, schedule, batch, loss weights (`weighting`, `difference`,
//! `jacobian`), L-BFGS rounds and precision; validated with field-named errors.

use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::model::config::*;
/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// `lr` throughout (paper).
    Constant,
    /// Cosine decay from `lr` to `lr_final` over the epochs.
    Cosine,
}

/// Per-sample loss weights (`train.weighting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// Every sample and component weighs the same: the mean squared error of `T(F)` (paper eq. 13).
    #[default]
    Uniform,
    /// Mean squared *relative* error of `F`, relative to the local size of the dynamics: each error
    /// is mapped back to `F` through the transform and divided by the RMS of that component over the
    /// sample's group (its base trajectory point and the cloud around it), see
    /// [`relative_weights`](crate::train::weights::relative_weights). For systems whose `|F|` spans decades
    /// along a trajectory (Robertson: 1e-2 early, 1e-8 late), where a uniform loss ignores the slow end.
    Relative,
}

/// Training settings (Adam, mini-batches, validation split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: i64,
    /// Mini-batch size (paper: 8192).
    pub batch: i64,
    /// Adam learning rate (paper: 1e-3).
    pub lr: f64,
    /// Final learning rate of the cosine schedule.
    pub lr_final: f64,
    /// `constant` (paper) or `cosine`.
    pub schedule: Schedule,
    /// Fraction of samples held out for validation (random split by sample).
    pub val_fraction: f64,
    /// Data-parallel shards per batch, each in its own thread (see
    /// `train::batch_gradients`); batches are not cut below 256 samples per
    /// shard. `0` (default): [`Backend::default_shards`](crate::backend::Backend::default_shards) — 2 on
    /// flex and ndarray, whose elementwise kernels run on one thread, 1 on libtorch and wgpu. A property
    /// of the run (config and backend), never of the machine: the same run gives the same results anywhere.
    pub shards: i64,
    /// Loss weights: `uniform` (default, paper) or `relative` ([`Weighting`]).
    pub weighting: Weighting,
    /// `relative` weighting: a group's RMS of component `k` is floored at `weight_floor` times the RMS
    /// of `F_k` over the whole training set, so that components that vanish in a group (exact zeros)
    /// do not take all the weight. Default 1e-2 (weights up to ~1e4): on Robertson 1e-6 (weights over
    /// ~10 decades) stalls f32 training at once, 1e-2 trains (README "Systems spanning decades").
    /// One number for every component, or a list, one per state component (`[1e-2, 1e-2, 1e-3]`:
    /// the third component's small values weigh more than the others').
    pub weight_floor: PerComponent,
    /// Weight `λ_D` of the difference loss (0, the default: off, the paper's loss). Every cloud sample
    /// is paired with its base trajectory point, and the change of the network output between the two
    /// is fitted as well as the values: with `e = ŷ − y` in transformed space, the loss gains
    /// `λ_D · mean over pairs of Σ_k ω_k (e_c,k − e_b,k)²`, `ω_k = 1 / max(Δy_k², (difference_floor ·
    /// RMS Δy_k)²)` (normalised to mean 1 over the training pairs), a relative error of the change
    /// `Δy = y_c − y_b` along the cloud offset. The offsets are on the scale of the fast dynamics
    /// (`normal_mode = "spectral"`), so this trains the learned Jacobian along the fast directions
    /// directly — first-order Sobolev training by finite differences of exact labels, without
    /// second-order autodiff. Batches are then cut from shuffled pairs (a base point with its cloud)
    /// rather than from single samples; the validation loss includes the same term.
    pub difference: f64,
    /// Floor of the difference loss's normalisation, relative to the RMS of `Δy_k` over all training
    /// pairs (default 1e-2; see [`difference`](Self::difference)).
    pub difference_floor: f64,
    /// Weight `λ_J` of the Jacobian loss (0, the default: off, the paper's loss): exact Sobolev
    /// training. At every trajectory (base) point of the training data the network's Jacobian along
    /// each state input axis — a forward-mode product ([`Mlp::forward_tangents`](crate::model::Mlp::forward_tangents)),
    /// differentiable in the weights with first-order autodiff — is fitted to the system's Jacobian
    /// carried into network space,
    ///
    /// ```text
    /// ∂G_k/∂u_j = T_k'(F_k) · ∂F_k/∂x_j · ∂x_j/∂u_j,
    /// ```
    ///
    /// `G = T(F)` the transformed target and `u` the standardised input. Each entry's squared error is a
    /// relative one, `ω_jk = 1 / max(J_jk², (jacobian_floor · m_jk)²)` (`m_jk` the median of the
    /// nonzero `|J_jk|` over the training base points, [`jacobian_medians`](crate::train::weights::jacobian_medians)),
    /// weights scaled to mean `λ_J` over the labelled entries. Needs exact labels
    /// (`labeller.type = "direct"`) and trajectory points among the samples (a cloud with
    /// `keep_base = false` has none: an error). The Jacobian comes from
    /// `StiffSystem::jacobian`: analytic where the system writes
    /// one (every shipped system does), central differences of the RHS otherwise.
    /// The validation loss includes the same term.
    pub jacobian: f64,
    /// Floor of the Jacobian loss's relative errors, times each entry's median magnitude (default
    /// 1e-2; see [`jacobian`](Self::jacobian)).
    pub jacobian_floor: f64,
    /// Decoupled L1 shrinkage `λ` of a mass-action network's reaction orders (0, the default: none;
    /// needs [`ModelConfig::mass_action`]). After every Adam step at learning rate `η`, each order
    /// (a first-layer state weight) becomes `max(ν − η λ, 0)`: the proximal step of `λ Σ ν` with
    /// nonnegative orders, decoupled from the loss's scale like AdamW's weight decay. An order the data
    /// keep asking for survives it (Adam's steps are ~η); one that only trades off against
    /// correlated inputs goes to exactly 0 — where it belongs, since a small spurious order `ν` on a
    /// species at `x` adds `ν r/x` to the Jacobian, large wherever `x` is small.
    pub order_l1: f64,
    /// A mass-action network's reaction orders held fixed: the first layer's state weights
    /// (row-major `d × width`, in the network's standardised units), restored after every step.
    /// Not a config field: the run sets it from `model.init` when `model.keep_orders` (the starting
    /// mechanism's orders on this run's input standardisation, which a resumed run derives again).
    /// `None`: the orders train.
    #[serde(skip)]
    pub fixed_orders: Option<Vec<f64>>,
    /// L-BFGS iteration budget after Adam (0, the default: none, the paper's training), a multiple of
    /// 10. Starting from Adam's best-validation weights, full-batch L-BFGS with a strong-Wolfe line
    /// search (burn's [`LBFGS`](burn::optim::LBFGS), a port of PyTorch's) minimises the same training
    /// loss on the whole training split at once — the Adam-then-L-BFGS schedule of physics-informed
    /// training. It runs in `lbfgs / 10` rounds of up to 10 iterations and up to 13 loss and gradient
    /// evaluations (plus at most one more for a line search that ends the round), validated after
    /// each like an epoch, and the best-validation weights over both phases are kept.
    pub lbfgs: i64,
    /// L-BFGS history size (pairs of steps and gradient changes kept; default 50).
    pub lbfgs_history: i64,
    /// Floating-point precision of training: `f32` (default, the paper's, what GPUs are fast at) or
    /// `f64` (flex, ndarray and libtorch; not wgpu, whose shaders have no f64). Parameters, data,
    /// gradients, Adam's moments and L-BFGS's history are all in this precision; the network starts
    /// from the same weights either way, and checkpoints keep f64-trained weights unrounded. It costs
    /// 1.6–2.2× the time per sample on flex (`stiffx bench --only precision`) and, on the shipped
    /// systems, changed no metric beyond seed noise (results/precision): there the fit's accuracy, not
    /// f32's 7 digits, limits the learned eigenvalues.
    pub precision: Precision,
}

impl TrainConfig {
    /// Learning rate at `epoch` (0-based) of `epochs`: constant, or cosine from `lr` to `lr_final`.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let p = epoch as f64 / (self.epochs.max(2) - 1) as f64;
                self.lr_final + 0.5 * (self.lr - self.lr_final) * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }

    /// L-BFGS rounds after Adam: `lbfgs / 10` (validation keeps `lbfgs` a multiple of 10), each a row
    /// of the loss curve.
    pub fn lbfgs_rounds(&self) -> usize {
        (self.lbfgs.max(0) as usize).div_ceil(LBFGS_ROUND)
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch: 8192,
            lr: 1e-3,
            lr_final: 1e-5,
            schedule: Schedule::Constant,
            val_fraction: 0.1,
            shards: 0,
            weighting: Weighting::Uniform,
            weight_floor: PerComponent::All(1e-2),
            difference: 0.0,
            difference_floor: 1e-2,
            jacobian: 0.0,
            jacobian_floor: 1e-2,
            order_l1: 0.0,
            fixed_orders: None,
            lbfgs: 0,
            lbfgs_history: 50,
            precision: Precision::F32,
        }
    }
}

/// L-BFGS iterations per round (at most; a round also ends after 13 evaluations): the validation loss is
/// checked, and the observer told, after each round.
pub const LBFGS_ROUND: usize = 10;
