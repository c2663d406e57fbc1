//! Experiment configuration: one TOML file (see `configs/`) with the system, sampler, labeller and
//! transform as `typetag` plugin tables, plus model, training and evaluation settings. Every struct
//! denies unknown keys; [`Config::validate`] checks every value and names the offending field.
//!
//! ```toml
//! seed = 1
//! [system]
//! type = "davis-skodje"
//! [sampler]
//! type = "cloud"
//! k = 8
//! [labeller]
//! type = "burst"
//! mode = "scaled"
//! [transform]
//! type = "asinh"
//! [train]
//! epochs = 200
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::error::{Error, Result};
use crate::labeller::{Direct, Labeller};
pub use crate::model::Activation;
use crate::sampler::{Sampler, TrajectorySampler};
use crate::system::StiffSystem;
use crate::transform::{Identity, TargetTransform};

/// How the stiffness parameter enters the network (before standardisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EpsInput {
    /// `eps` itself (paper eq. 9).
    #[default]
    Linear,
    /// `ln(eps)`: spreads a grid spanning decades evenly over the input range (the fast rate is `1/eps`).
    Log,
}

impl EpsInput {
    /// The network's input feature for a stiffness value.
    pub fn feature(self, eps: f64) -> f64 {
        match self {
            EpsInput::Linear => eps,
            EpsInput::Log => eps.ln(),
        }
    }
}

/// How the state enters the network (before standardisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StateInput {
    /// `x` itself (paper eq. 9).
    #[default]
    Linear,
    /// `asinh(x_i / c_i)` per species, `c_i` a low quantile of `|x_i|` (see
    /// [`Normalizer`](crate::model::Normalizer)): for species spanning orders of magnitude.
    Asinh,
    /// `ln(x_i + c_i)` per species ([`StateMap::Log`](crate::model::StateMap::Log)), `c_i` 1e-12 of
    /// the largest `|x_i|` ([`log_offsets`](crate::model::log_offsets); `state_quantile` is not
    /// used): for concentrations, and with `activation = "exp"` the mass-action (CRNN) model class.
    Log,
}

impl StateInput {
    /// The [`Normalizer`](crate::model::Normalizer)'s map for this input, `None` for linear inputs.
    pub fn map(self) -> Option<crate::model::StateMap> {
        match self {
            StateInput::Linear => None,
            StateInput::Asinh => Some(crate::model::StateMap::Asinh),
            StateInput::Log => Some(crate::model::StateMap::Log),
        }
    }
}

/// A per-component setting ([`ModelConfig::state_quantile`], [`TrainConfig::weight_floor`]): one
/// number for every state component, or a list of them, one per component in state order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a number or a list of numbers, one per state component (model.state_quantile: in [0, 1]; train.weight_floor: > 0)"
)]
pub enum PerComponent {
    /// The same value for every component.
    All(f64),
    /// One value per component, in state order.
    Each(Vec<f64>),
}

/// [`ModelConfig::state_quantile`]: one quantile for every species, or one per species.
pub type StateQuantile = PerComponent;

impl PerComponent {
    /// The value of component `i`.
    pub fn of(&self, i: usize) -> f64 {
        match self {
            PerComponent::All(q) => *q,
            PerComponent::Each(q) => q[i],
        }
    }

    /// One value per state component (`dim`) when a list, and every value passing `ok`; the error
    /// names `field` and the allowed values (`allowed`, e.g. "a number in [0, 1]").
    pub fn check(&self, dim: usize, field: &str, ok: impl Fn(f64) -> bool, allowed: &str) -> Result<()> {
        let qs = match self {
            PerComponent::All(q) => std::slice::from_ref(q),
            PerComponent::Each(q) => {
                if q.len() != dim {
                    return Err(Error::invalid(
                        field,
                        format!("{q:?}"),
                        format!("{allowed} or a list of {dim} of them (one per state component)"),
                    ));
                }
                q.as_slice()
            }
        };
        match qs.iter().find(|q| !ok(**q)) {
            Some(q) => Err(Error::invalid(field, q, format!("{allowed} (or a list of them, one per state component)"))),
            None => Ok(()),
        }
    }

    /// As a [`ModelConfig::state_quantile`]: every quantile in [0, 1], one per state component if a list.
    pub fn validate(&self, dim: usize) -> Result<()> {
        self.check(dim, "model.state_quantile", |q| (0.0..=1.0).contains(&q), "a number in [0, 1]")
    }
}

/// MLP shape (paper eqs. 9–12) and how inputs enter it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of hidden layers `L`.
    pub hidden: i64,
    /// Width `W` of each hidden layer.
    pub width: i64,
    /// `linear` (paper) or `log` stiffness input.
    pub eps_input: EpsInput,
    /// `linear` (paper), `asinh` or `log` state input.
    pub state_input: StateInput,
    /// Hidden activation: `silu` (paper) or `exp` (with `log` inputs and `hidden = 1`: a chemical
    /// reaction neural network, see [`crate::model`]).
    pub activation: Activation,
    /// Quantile of `|x_i|` that sets the scale `c_i` of the `asinh` state input: one number for every
    /// species, or one per species (`[0.05, 0.05, 0.5]`). A high quantile makes a species' input nearly
    /// linear (`c_i` on the scale of the species itself), a low one logarithmic over the decades it spans.
    pub state_quantile: StateQuantile,
    /// Project the learned RHS onto the system's linear invariants (`wᵀF = 0`, e.g. mass conservation):
    /// `F ← P F`, `J ← P J` with `P = I - W(WᵀW)⁻¹Wᵀ`, so that their zero eigenvalues are exact. No
    /// effect for systems without invariants.
    pub project_invariants: bool,
    /// With `project_invariants`: state indices (0-based) solved from the invariants, one per
    /// invariant (oblique projection, see [`LearnedRhs::with_invariants`](crate::spectral::LearnedRhs::with_invariants));
    /// empty (default): orthogonal projection.
    pub eliminate: Vec<usize>,
}

impl ModelConfig {
    /// Whether the network is a mass-action reaction network (CRNN: `exp` activation and `log` state
    /// inputs): its reaction orders are kept `≥ 0` and its output layer has no bias
    /// ([`Weights::mass_action`](crate::model::Weights::mass_action)).
    pub fn mass_action(&self) -> bool {
        self.activation == Activation::Exp && self.state_input == StateInput::Log
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hidden: 4,
            width: 128,
            eps_input: EpsInput::Linear,
            state_input: StateInput::Linear,
            activation: Activation::Silu,
            state_quantile: PerComponent::All(0.05),
            project_invariants: true,
            eliminate: Vec::new(),
        }
    }
}

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
    /// [`relative_weights`](crate::pipeline::relative_weights). For systems whose `|F|` spans decades
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
    /// [`batch_gradients`](crate::train::batch_gradients)); batches are not cut below 256 samples per
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
    /// nonzero `|J_jk|` over the training base points, [`jacobian_medians`](crate::pipeline::jacobian_medians)),
    /// weights scaled to mean `λ_J` over the labelled entries. Needs exact labels
    /// (`labeller.type = "direct"`) and trajectory points among the samples (a cloud with
    /// `keep_base = false` has none: an error). The Jacobian comes from
    /// [`StiffSystem::jacobian`]: analytic where the system writes
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
    /// L-BFGS rounds after Adam: `lbfgs / 10` (validation keeps `lbfgs` a multiple of 10), each a row
    /// of the loss curve.
    pub fn lbfgs_rounds(&self) -> usize {
        (self.lbfgs.max(0) as usize).div_ceil(crate::train::LBFGS_ROUND)
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
            lbfgs: 0,
            lbfgs_history: 50,
            precision: Precision::F32,
        }
    }
}

/// Evaluation settings: RK4 rollouts from the system's test initial states and eigenvalues along the
/// reference trajectories (paper footnote 2: Δt = 0.01, T = 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// RK4 step of the learned rollout, and the output step of `linear` spacing.
    pub dt: f64,
    /// Rollout horizon.
    pub horizon: f64,
    /// Output times: `linear` (every `dt`, the paper's) or `log` (`t = 0` and `points` log-spaced
    /// times from `t_first` to `horizon`; needs `integrator = "bdf"`).
    pub spacing: crate::ode::Spacing,
    /// First nonzero output time (`log` spacing).
    pub t_first: f64,
    /// Number of log-spaced output times after `t = 0` (`log` spacing).
    pub points: i64,
    /// Stiffness values evaluated; empty = the system's training grid.
    pub eps: Vec<f64>,
    /// The stiffness value of the Table 1 headline (PAPER-NOTES: the paper's numbers match 0.05).
    pub reference_eps: f64,
    /// Relative tolerance of the reference solution.
    pub reference_rtol: f64,
    /// Integrator of the learned rollouts: `rk4` (the paper's, fixed step `dt`) or `bdf` (diffsol's
    /// implicit BDF with the learned autodiff Jacobian, sampled every `dt`): for horizons where RK4 at
    /// `dt` is unstable (|λ_fast|·dt > 2.78).
    pub integrator: Integrator,
    /// Relative tolerance of `bdf` rollouts.
    pub rollout_rtol: f64,
    /// Absolute tolerance of `bdf` rollouts (set it below the smallest species that matters).
    pub rollout_atol: f64,
    /// Method of the reference solution: `tsit45` (default) or `bdf` (very stiff systems).
    pub reference_method: crate::ode::Method,
    /// Absolute tolerance of the reference solution.
    pub reference_atol: f64,
}

impl EvalConfig {
    /// The output times of rollouts and of the spectral evaluation points.
    pub fn times(&self) -> Vec<f64> {
        crate::ode::output_times(self.spacing, self.dt, self.horizon, self.t_first, self.points.max(0) as usize)
    }
}

/// Integrator of the learned rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Integrator {
    /// Classic RK4 with step `dt` (paper).
    #[default]
    Rk4,
    /// diffsol BDF with the learned Jacobian.
    Bdf,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            dt: 0.01,
            horizon: 6.0,
            spacing: crate::ode::Spacing::Linear,
            t_first: 1e-5,
            points: 200,
            eps: Vec::new(),
            reference_eps: 0.05,
            reference_rtol: 1e-11,
            integrator: Integrator::Rk4,
            rollout_rtol: 1e-6,
            rollout_atol: 1e-9,
            reference_method: crate::ode::Method::Tsit45,
            reference_atol: 1e-13,
        }
    }
}

/// A whole experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Fixes data, initialisation, split and batch order.
    pub seed: u64,
    /// The stiff system.
    pub system: Box<dyn StiffSystem>,
    /// The state sampler.
    pub sampler: Box<dyn Sampler>,
    /// The labeller.
    pub labeller: Box<dyn Labeller>,
    /// The target transform.
    pub transform: Box<dyn TargetTransform>,
    /// The network.
    pub model: ModelConfig,
    /// Training.
    pub train: TrainConfig,
    /// Evaluation.
    pub eval: EvalConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            system: crate::registry::system("davis-skodje").expect("davis-skodje is built in"),
            sampler: Box::new(TrajectorySampler::default()),
            labeller: Box::new(Direct {}),
            transform: Box::new(Identity {}),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
        }
    }
}

impl Config {
    /// Parses a TOML config file (unknown keys and malformed values are errors naming the key).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config { path: path.to_path_buf(), message: format!("cannot read it: {e}") })?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Config { message, .. } => Error::Config { path: path.to_path_buf(), message },
            other => other,
        })
    }

    /// Parses a TOML string.
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| Error::Config { path: "<string>".into(), message: e.to_string() })?;
        Ok(cfg)
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise config: {e}"))
    }

    /// The stiffness values evaluated.
    pub fn eval_eps(&self) -> Vec<f64> {
        if self.eval.eps.is_empty() { self.system.train_grid() } else { self.eval.eps.clone() }
    }

    /// Checks every value; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<()> {
        for eps in
            self.system.train_grid().into_iter().chain(self.system.unseen_grid()).chain(self.eval.eps.iter().copied())
        {
            self.system.check_param(eps)?;
        }
        if self.system.train_grid().is_empty() {
            return Err(Error::invalid("system.train_eps", "[]", "at least one stiffness value"));
        }
        self.system.check_param(self.eval.reference_eps).map_err(|_| {
            Error::invalid("eval.reference_eps", self.eval.reference_eps, "an admissible stiffness value (> 0)")
        })?;
        self.sampler.validate()?;
        self.labeller.validate()?;
        Error::at_least_one("model.hidden", self.model.hidden)?;
        Error::at_least_one("model.width", self.model.width)?;
        self.model.state_quantile.validate(self.system.dim())?;
        if self.model.project_invariants {
            crate::spectral::invariant_projector(self.system.dim(), &self.system.invariants(), &self.model.eliminate)?;
        }
        Error::at_least_one("train.epochs", self.train.epochs)?;
        if self.train.shards < 0 {
            return Err(Error::invalid(
                "train.shards",
                self.train.shards,
                "an integer >= 1, or 0 for the backend's default",
            ));
        }
        Error::at_least_one("train.batch", self.train.batch)?;
        Error::positive("train.lr", self.train.lr)?;
        Error::positive("train.lr_final", self.train.lr_final)?;
        self.train.weight_floor.check(
            self.system.dim(),
            "train.weight_floor",
            |v| v.is_finite() && v > 0.0,
            "a number > 0",
        )?;
        if !(self.train.difference.is_finite() && self.train.difference >= 0.0) {
            return Err(Error::invalid("train.difference", self.train.difference, "a finite number ≥ 0 (0: off)"));
        }
        Error::positive("train.difference_floor", self.train.difference_floor)?;
        if !(self.train.jacobian.is_finite() && self.train.jacobian >= 0.0) {
            return Err(Error::invalid("train.jacobian", self.train.jacobian, "a finite number ≥ 0 (0: off)"));
        }
        Error::positive("train.jacobian_floor", self.train.jacobian_floor)?;
        Error::non_negative("train.order_l1", self.train.order_l1)?;
        if self.train.order_l1 > 0.0 && !self.model.mass_action() {
            return Err(Error::invalid(
                "train.order_l1",
                self.train.order_l1,
                "0 unless the network is a mass-action one (model.activation = \"exp\" and model.state_input = \"log\"): only reaction orders are shrunk",
            ));
        }
        if self.train.lbfgs < 0 || self.train.lbfgs % 10 != 0 {
            return Err(Error::invalid(
                "train.lbfgs",
                self.train.lbfgs,
                "a multiple of 10 >= 0 (rounds of 10 iterations; 0: no L-BFGS after Adam)",
            ));
        }
        Error::at_least_one("train.lbfgs_history", self.train.lbfgs_history)?;
        if self.train.jacobian > 0.0 && !self.labeller.exact() {
            return Err(Error::invalid(
                "train.jacobian",
                self.train.jacobian,
                format!(
                    "0 with labeller `{}`: Jacobian labels are exact, so they need labeller.type = \"direct\"",
                    self.labeller.describe()
                ),
            ));
        }
        if !(self.train.val_fraction > 0.0 && self.train.val_fraction < 1.0) {
            return Err(Error::invalid("train.val_fraction", self.train.val_fraction, "a number in (0, 1)"));
        }
        Error::positive("eval.dt", self.eval.dt)?;
        let e = &self.eval;
        crate::ode::check_times("eval", e.spacing, e.dt, e.horizon, e.t_first, e.points)?;
        Error::positive("eval.reference_rtol", e.reference_rtol)?;
        Error::positive("eval.reference_atol", e.reference_atol)?;
        Error::positive("eval.rollout_rtol", e.rollout_rtol)?;
        Error::positive("eval.rollout_atol", e.rollout_atol)?;
        if e.spacing == crate::ode::Spacing::Log && e.integrator == Integrator::Rk4 {
            return Err(Error::invalid(
                "eval.integrator",
                "rk4",
                "`bdf` when eval.spacing = \"log\" (RK4 steps every eval.dt)",
            ));
        }
        Ok(())
    }
}
