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

use crate::error::{Error, Result};
use crate::model::config::ModelConfig;
use crate::plugins::labeller::{Direct, Labeller};
use crate::plugins::sampler::{Sampler, TrajectorySampler};
use crate::plugins::system::StiffSystem;
use crate::plugins::transform::{Identity, TargetTransform};
use crate::train::config::TrainConfig;

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
    /// A CSV of test initial states replacing the system's (one column per state, named as the system
    /// names them; one row per state; `stiffx eval --initial-states`), e.g. states below a slow manifold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_states: Option<String>,
    /// Held-out trajectories (CSV or NPZ in the `data` sampler's format) that `stiffx run` rolls out
    /// with the learned operator after training, next to the spectral evaluation (`data_rollouts.csv`,
    /// `data_spectrum.csv`, `eval::holdout`). A `data` system, which has no reference, is
    /// evaluated this way only, on its own training file when this is not set (in-sample).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
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
            initial_states: None,
            data: None,
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
            system: crate::plugins::registry::system("davis-skodje").expect("davis-skodje is built in"),
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

    /// Parses a TOML string. A config with a `data` sampler and no `[system]` table learns from the
    /// file alone: its system is the file ([`DataSystem`](crate::plugins::data_system::DataSystem)),
    /// completed from it here ([`bind_data`](Self::bind_data)).
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let mut message = e.to_string();
            // Inside a plugin table the parser can point only at the header: name the key.
            if let Some((key, line)) = crate::plugin_keys::culprit(text) {
                let at = line.map_or(String::new(), |l| format!(" (line {l})"));
                message = format!("{}\nthe value at fault is `{key}`{at}", message.trim_end());
            }
            Error::Config { path: "<string>".into(), message }
        })?;
        let names_system = text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("system"));
        cfg.complete(names_system)?;
        Ok(cfg)
    }

    /// Parses a config as JSON (the Python package's dicts), completed like [`from_toml`](Self::from_toml).
    pub fn from_json(text: &str) -> Result<Self> {
        let mut cfg: Config =
            serde_json::from_str(text).map_err(|e| Error::Config { path: "<dict>".into(), message: e.to_string() })?;
        let names_system = serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get("system").is_some());
        cfg.complete(names_system)?;
        Ok(cfg)
    }

    /// A parsed config without a system (`names_system` false) but with a data sampler gets the
    /// file as its system; a data system is then bound to the file.
    fn complete(&mut self, names_system: bool) -> Result<()> {
        if !names_system && self.sampler.data_file().is_some() {
            self.system = Box::new(crate::plugins::data_system::DataSystem::default());
        }
        self.bind_data()
    }

    /// Completes the system from the sampler's data file ([`StiffSystem::bind`]; only a `data`
    /// system needs it). `stiffx run` calls it again after its flags, which can change either.
    pub fn bind_data(&mut self) -> Result<()> {
        let data = self.sampler.data_file();
        self.system.bind(data.as_ref().map(|(p, e)| (p.as_str(), *e)))
    }

    /// Refuses, naming `what` needs it, a system without a reference ([`StiffSystem::has_reference`]:
    /// a `data` system), which cannot be integrated, differentiated or compared with.
    pub fn require_reference(&self, what: &str) -> Result<()> {
        if self.system.has_reference() {
            return Ok(());
        }
        Err(Error::invalid(
            "system",
            crate::plugins::registry::name_of(&self.system),
            format!(
                "a system with a right-hand side for {what} (a built-in, or a mechanism file); a `data` system has none — evaluate it on held-out trajectories (`stiffx eval --data FILE`), or against the true system (`stiffx eval --system NAME|FILE.yaml`)"
            ),
        ))
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
        self.validate_fields()?;
        self.check_resources(crate::resources::limit())
    }

    /// The memory the config's counts imply ([`crate::resources`]): named parts in bytes, each under
    /// the fields that set it.
    pub fn memory_estimate(&self) -> Vec<(&'static str, f64)> {
        let d = self.system.dim() as f64;
        let n_eps = self.system.train_grid().len();
        let n = self.sampler.expected_len(n_eps).map_or(0.0, |n| n as f64);
        let jac = if self.train.jacobian > 0.0 { n * d * d * 8.0 * 2.0 } else { 0.0 };
        let (w, h) = (self.model.width.max(0) as f64, self.model.hidden.max(0) as f64);
        let params = (d + 2.0) * w + (h - 1.0).max(0.0) * (w + 1.0) * w + (w + 1.0) * d;
        let batch = (self.train.batch.max(0) as f64).min(n.max(1.0));
        let e = &self.eval;
        let times = crate::ode::count_times(e.spacing, e.dt, e.horizon, e.points.max(0) as usize) as f64;
        let eval_eps = (self.eval_eps().len() + self.system.unseen_grid().len() + 1) as f64;
        let tests = self.test_states().map_or(1, |s| s.len()) as f64;
        vec![
            ("sampler (per_eps, k, dt, points)", n * (2.0 * d + 1.0) * 8.0 * 4.0 + jac),
            ("model.width, model.hidden", params * 8.0 * 10.0),
            ("train.batch", batch * w * h * 8.0 * 12.0),
            ("eval.dt, eval.points", eval_eps * tests * times * (3.0 * d + 2.0 * d * d) * 8.0),
        ]
    }

    /// Refuses the config when [`memory_estimate`](Self::memory_estimate) exceeds `limit` bytes
    /// (`None`: no limit known). [`validate`](Self::validate) calls it with [`crate::resources::limit`].
    pub fn check_resources(&self, limit: Option<u64>) -> Result<()> {
        crate::resources::check(&self.memory_estimate(), limit)
    }

    /// The evaluation's test initial states: `eval.initial_states`' file, else the system's.
    pub fn test_states(&self) -> Result<Vec<Vec<f64>>> {
        match &self.eval.initial_states {
            Some(p) => crate::plugins::data::read_states(p, &self.system.state_names()),
            None => Ok(self.system.test_initial_states()),
        }
    }

    /// Every field's own check (finite, in range, consistent), without the memory estimate.
    fn validate_fields(&self) -> Result<()> {
        self.system.validate()?;
        self.transform.validate()?;
        // Each value named by its place: `system.train_eps[1]`, `system.unseen_eps[0]`, `eval.eps[2]`.
        for (field, grid) in [
            ("system.train_eps", self.system.train_grid()),
            ("system.unseen_eps", self.system.unseen_grid()),
            ("eval.eps", self.eval.eps.clone()),
        ] {
            for (i, eps) in grid.into_iter().enumerate() {
                self.system.check_param(eps).map_err(|e| e.with_field(format!("{field}[{i}]")))?;
            }
        }
        if self.system.train_grid().is_empty() {
            return Err(Error::invalid("system.train_eps", "[]", "at least one stiffness value"));
        }
        self.system.check_param(self.eval.reference_eps).map_err(|_| {
            Error::invalid("eval.reference_eps", self.eval.reference_eps, "an admissible stiffness value (> 0)")
        })?;
        self.sampler.validate()?;
        self.sampler.validate_for(self.system.as_ref())?;
        self.labeller.validate()?;
        if !self.system.has_reference() {
            self.validate_without_reference()?;
        }
        Error::at_least_one("model.hidden", self.model.hidden)?;
        Error::at_least_one("model.width", self.model.width)?;
        self.model.state_quantile.validate(self.system.dim())?;
        if self.model.project_invariants {
            crate::eval::spectral::invariant_projector(
                self.system.dim(),
                &self.system.invariants(),
                &self.model.eliminate,
            )?;
        }
        if let Some(m) = &self.model.init {
            self.validate_init(m)?;
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
        if self.train.jacobian > 0.0 && !self.sampler.keeps_trajectory_points() {
            return Err(Error::invalid(
                "train.jacobian",
                self.train.jacobian,
                "0 when the training samples hold no trajectory points to label (a cloud with sampler.keep_base = false)",
            ));
        }
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
        if e.initial_states.is_some() {
            self.test_states()?;
        }
        if let Some(p) = &e.data
            && !Path::new(p).is_file()
        {
            return Err(Error::invalid("eval.data", p, "a CSV or NPZ file of held-out trajectories that exists"));
        }
        if e.spacing == crate::ode::Spacing::Log && e.integrator == Integrator::Rk4 {
            return Err(Error::invalid(
                "eval.integrator",
                "rk4",
                "`bdf` when eval.spacing = \"log\" (RK4 steps every eval.dt)",
            ));
        }
        Ok(())
    }

    /// A system without a RHS (a `data` system) can only be learned from its file, labelled without
    /// the RHS, and evaluated on trajectories.
    fn validate_without_reference(&self) -> Result<()> {
        if self.sampler.data_file().is_none() || self.sampler.uses_rhs() {
            return Err(Error::invalid(
                "sampler.type",
                crate::plugins::registry::name_of(&self.sampler),
                "\"data\" when the system is a data file (the other samplers, a cloud around a data sampler and a union with a part that integrates among them, call the system's RHS, which it has not)",
            ));
        }
        if self.labeller.uses_rhs() {
            return Err(Error::invalid(
                "labeller.type",
                crate::plugins::registry::name_of(&self.labeller),
                "\"finite-difference\" when the system is a data file (the other labellers call its RHS, which it has not)",
            ));
        }
        if self.train.jacobian > 0.0 {
            return Err(Error::invalid(
                "train.jacobian",
                self.train.jacobian,
                "0 when the system is a data file (Jacobian labels are the exact Jacobian, which it has not)",
            ));
        }
        if let Some(p) = &self.eval.initial_states {
            return Err(Error::invalid(
                "eval.initial_states",
                p,
                "not set when the system is a data file (rollouts from test states need a reference to compare with; give held-out trajectories as eval.data)",
            ));
        }
        Ok(())
    }

    /// `model.init`: a mechanism can start only a mass-action network of one hidden layer with at
    /// least one unit per reaction, over the system's species, with `log` eps input when a reaction
    /// scales with eps.
    fn validate_init(&self, m: &crate::model::config::InitMechanism) -> Result<()> {
        use crate::model::config::EpsInput;
        let mech = &m.mechanism;
        if !self.model.mass_action() || self.model.hidden != 1 {
            return Err(Error::invalid(
                "model.init",
                &m.file,
                "a mechanism starts only a reaction network: model.activation = \"exp\", model.state_input = \"log\", model.hidden = 1",
            ));
        }
        if self.model.eps_input != EpsInput::Log && mech.reactions.iter().any(|r| r.eps_power != 0.0) {
            return Err(Error::invalid(
                "model.eps_input",
                "linear",
                format!("\"log\": reactions of model.init (`{}`) scale with a power of eps", m.file),
            ));
        }
        if let Some(why) = crate::eval::reactions::species_mismatch(mech, &self.system.state_names()) {
            return Err(Error::invalid("model.init.file", &m.file, why));
        }
        if (self.model.width as usize) < mech.reactions.len() {
            return Err(Error::invalid(
                "model.width",
                self.model.width,
                format!(
                    "at least {}, the reactions of model.init (`{}`): one hidden unit per reaction",
                    mech.reactions.len(),
                    m.file
                ),
            ));
        }
        Ok(())
    }
}
