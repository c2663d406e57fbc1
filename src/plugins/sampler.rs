//! The [`Sampler`] plugin trait and its built-ins: `trajectory` (paper Alg. 2), here, and `cloud`
//! (Alg. 3), in `plugins/cloud.rs`.
//!
//! A sampler produces the *states* of the dataset (a [`SampleSet`]); labels are a separate concern
//! (a `Labeller`). Samplers see the exact system only through
//! [`StiffSystem`]: `trajectory` integrates it, `cloud` uses its RHS (the trajectory velocity, the
//! paper's tangent) or its Jacobian (CSP-style fast direction) to orient the perturbations.
//!
//! # Example
//! ```
//! use stiffx::plugins::sampler::{Sampler, TrajectorySampler};
//! use rand::SeedableRng;
//! let ds = stiffx::plugins::registry::system("davis-skodje").unwrap();
//! let s = TrajectorySampler { per_eps: 2, horizon: 1.0, dt: 0.1, ..Default::default() };
//! let set = s.sample(ds.as_ref(), &[0.05], &mut rand::rngs::StdRng::seed_from_u64(1)).unwrap();
//! assert_eq!(set.len(), 2 * 11);
//! ```

use std::fmt::Debug;

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ode::{Method, Spacing};
use crate::plugins::system::StiffSystem;

/// A stored reference trajectory at one stiffness value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Stiffness parameter.
    pub eps: f64,
    /// Output times (increasing; uniform or log-spaced, see [`Spacing`]).
    pub times: Vec<f64>,
    /// States, `n_points × dim`, row-major; point `i` is at `times[i]`.
    pub states: Vec<f64>,
}

/// Where a sample came from (needed by finite-difference labels and by diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Point `index` of trajectory `traj`.
    Trajectory {
        /// Index into [`SampleSet::trajectories`].
        traj: u32,
        /// Time index along it.
        index: u32,
    },
    /// A fuzzy-cloud point: tangent only (`off = false`) or tangent + normal (`off = true`), around
    /// point `index` of trajectory `traj` (its *base point*).
    Cloud {
        /// Whether the point was pushed off the manifold along the normal.
        off: bool,
        /// The base point's trajectory.
        traj: u32,
        /// The base point's time index.
        index: u32,
    },
}

/// The states of a dataset: `x` is `n × dim` row-major, one stiffness value per row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    /// State dimension.
    pub dim: usize,
    /// States, `n × dim`.
    pub x: Vec<f64>,
    /// Stiffness parameter of each row.
    pub eps: Vec<f64>,
    /// Origin of each row.
    pub origin: Vec<Origin>,
    /// Reference trajectories the trajectory points belong to.
    pub trajectories: Vec<Trajectory>,
}

impl SampleSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.eps.len()
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.eps.is_empty()
    }
    /// State of sample `i`.
    pub fn state(&self, i: usize) -> &[f64] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
    /// Appends sample `x` at stiffness `eps`.
    pub fn push(&mut self, x: &[f64], eps: f64, origin: Origin) {
        self.x.extend_from_slice(x);
        self.eps.push(eps);
        self.origin.push(origin);
    }
}

/// Produces the states of a dataset for a system over a stiffness grid.
#[typetag::serde(tag = "type")]
pub trait Sampler: Debug + Send + Sync + dyn_clone::DynClone {
    /// Checks the parameters; errors name the field and the allowed values.
    fn validate(&self) -> Result<()>;
    /// Draws the sample states. Must be deterministic given `rng`'s state.
    fn sample(&self, system: &dyn StiffSystem, eps_grid: &[f64], rng: &mut StdRng) -> Result<SampleSet>;
    /// A one-line summary of the parameters, for reports.
    fn describe(&self) -> String;
    /// How many samples [`sample`](Sampler::sample) draws over `n_eps` stiffness values, when that is
    /// known before sampling (job cost estimates); `None` (the default) when it is not.
    fn expected_len(&self, n_eps: usize) -> Option<usize> {
        let _ = n_eps;
        None
    }
    /// Whether the samples include trajectory points (which the Jacobian loss, `train.jacobian`,
    /// labels), known before sampling. Default: yes.
    fn keeps_trajectory_points(&self) -> bool {
        true
    }
    /// The file of trajectories the samples are read from and the stiffness value of a file without an
    /// `eps` column, when the sampler reads one (the `data` sampler): what a `data` system is bound to.
    /// Default `None`: the sampler integrates the system.
    fn data_file(&self) -> Option<(String, Option<f64>)> {
        None
    }
    /// What, besides the parameters, the samples depend on (e.g. the SHA-256 of a data file), so that
    /// a cached dataset is regenerated when it changes; empty (the default) when nothing.
    fn fingerprint(&self) -> String {
        String::new()
    }
}

// A plugin is `Clone` by contract (the supertrait `DynClone`): boxed ones clone field by field, losslessly.
dyn_clone::clone_trait_object!(Sampler);

/// Paper Alg. 2: `per_eps` trajectories per stiffness value from random initial states
/// ([`StiffSystem::sample_initial`]), integrated to `horizon` with a high-accuracy solver (diffsol
/// Tsit5 by default, BDF with `method = "bdf"`; `rtol`/`atol`) and sampled every `dt`
/// (`floor(horizon/dt) + 1` points each), or, with `spacing = "log"`, at `t = 0` and `points`
/// log-spaced times from `t_first` to `horizon` (systems whose dynamics span decades of time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrajectorySampler {
    /// Trajectories per stiffness value.
    pub per_eps: i64,
    /// Final time `T`.
    pub horizon: f64,
    /// Output step `Δt` (`linear` spacing).
    pub dt: f64,
    /// `linear` (every `dt`, the paper's) or `log`.
    pub spacing: Spacing,
    /// First nonzero output time (`log` spacing).
    pub t_first: f64,
    /// Number of log-spaced output times after `t = 0` (`log` spacing).
    pub points: i64,
    /// Integrator of the reference trajectories: `tsit45` or `bdf` (long horizons of very stiff systems).
    pub method: Method,
    /// Relative tolerance of the reference integration.
    pub rtol: f64,
    /// Absolute tolerance of the reference integration.
    pub atol: f64,
}

impl Default for TrajectorySampler {
    fn default() -> Self {
        Self {
            per_eps: 16,
            horizon: 6.0,
            dt: 0.01,
            spacing: Spacing::Linear,
            t_first: 1e-6,
            points: 200,
            method: Method::Tsit45,
            rtol: 1e-10,
            atol: 1e-12,
        }
    }
}

impl TrajectorySampler {
    /// The output times of every trajectory.
    pub fn times(&self) -> Vec<f64> {
        crate::ode::output_times(self.spacing, self.dt, self.horizon, self.t_first, self.points.max(0) as usize)
    }
}

#[typetag::serde(name = "trajectory")]
impl Sampler for TrajectorySampler {
    fn validate(&self) -> Result<()> {
        Error::at_least_one("sampler.per_eps", self.per_eps)?;
        crate::ode::check_times("sampler", self.spacing, self.dt, self.horizon, self.t_first, self.points)?;
        Error::positive("sampler.rtol", self.rtol)?;
        Error::positive("sampler.atol", self.atol)
    }

    fn sample(&self, system: &dyn StiffSystem, eps_grid: &[f64], rng: &mut StdRng) -> Result<SampleSet> {
        self.validate()?;
        let d = system.dim();
        let times = self.times();
        let mut set = SampleSet { dim: d, ..Default::default() };
        for &eps in eps_grid {
            system.check_param(eps)?;
            let x0s: Vec<f64> = (0..self.per_eps).flat_map(|_| system.sample_initial(rng)).collect();
            let all = crate::ode::solve_at_with(system, eps, &x0s, &times, self.rtol, self.atol, false, self.method)?;
            for states in all.chunks(times.len() * d) {
                let traj = set.trajectories.len() as u32;
                for (i, x) in states.chunks(d).enumerate() {
                    set.push(x, eps, Origin::Trajectory { traj, index: i as u32 });
                }
                set.trajectories.push(Trajectory { eps, times: times.clone(), states: states.to_vec() });
            }
        }
        Ok(set)
    }

    fn describe(&self) -> String {
        let grid = match self.spacing {
            Spacing::Linear => format!("dt = {}", self.dt),
            Spacing::Log => format!("{} log-spaced times from {}", self.points, self.t_first),
        };
        let method = if self.method == Method::Bdf { ", BDF" } else { "" };
        format!("trajectory: {} per eps, T = {}, {grid}{method}", self.per_eps, self.horizon)
    }

    fn expected_len(&self, n_eps: usize) -> Option<usize> {
        let times = crate::ode::count_times(self.spacing, self.dt, self.horizon, self.points.max(0) as usize);
        Some(n_eps.saturating_mul(self.per_eps.max(0) as usize).saturating_mul(times))
    }
}
