//! The [`Sampler`] plugin trait and its built-ins: `trajectory` (paper Alg. 2), here, and `cloud`
//! (Alg. 3), in `plugins/cloud.rs`.
//!
//! A sampler produces the *states* of the dataset (a [`SampleSet`]); labels are a separate concern
//! (a `Labeller`). Samplers see the exact system only through
//! [`StiffSystem`]: `trajectory` integrates it, `cloud` uses its RHS (the trajectory velocity, the
//! paper's tangent) or its Jacobian (CSP-style fast direction) to orient the perturbations.
//!
//! **Initial-state placement** (`placement`). The paper draws each trajectory's initial state
//! independently; with a dozen trajectories per eps, whether a corner of the initial-state box gets
//! one is left to chance. `placement = "sobol"` takes instead the first `n` points `u_i ∈ [0, 1)^k`
//! of an Owen-scrambled Sobol sequence (Burley 2020, `sobol_burley`; one scramble per eps, seeded
//! from the run's generator) and maps them through the system's inverse CDF,
//! [`StiffSystem::initial_from_unit`]. For `n = 2^m` the points are a `(0, m, 2)`-net in two
//! dimensions: every box `[a/2^p, (a+1)/2^p) × [b/2^q, (b+1)/2^q)` with `p + q = m` holds exactly one.
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

use rand::RngExt;
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
    /// Checks what the sampler needs of `system` that its parameters alone do not say (a unit-cube map
    /// for `placement = "sobol"`), before any work; errors name the field. Default: nothing.
    fn validate_for(&self, system: &dyn StiffSystem) -> Result<()> {
        let _ = system;
        Ok(())
    }
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
    /// How many of those samples are trajectory points (`Origin::Trajectory`: what a cloud around this
    /// sampler perturbs), when known before sampling. Default: all of them when
    /// [`keeps_trajectory_points`](Sampler::keeps_trajectory_points), else none.
    fn expected_trajectory_points(&self, n_eps: usize) -> Option<usize> {
        if self.keeps_trajectory_points() { self.expected_len(n_eps) } else { Some(0) }
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
    /// Whether sampling calls the system's right-hand side (integrates it, or orients a cloud by it),
    /// which a `data` system has not. Default: unless the samples are read from a file
    /// ([`data_file`](Sampler::data_file)).
    fn uses_rhs(&self) -> bool {
        self.data_file().is_none()
    }
}

// A plugin is `Clone` by contract (the supertrait `DynClone`): boxed ones clone field by field, losslessly.
dyn_clone::clone_trait_object!(Sampler);

/// Where a trajectory sampler puts its initial states (`sampler.placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Independent draws from the system's distribution ([`StiffSystem::sample_initial`]): the paper's.
    #[default]
    Random,
    /// Evenly spread: the first `per_eps` points of an Owen-scrambled Sobol sequence (one scramble per
    /// stiffness value, seeded from the run's random stream) mapped through the system's
    /// [`StiffSystem::initial_from_unit`]. With `per_eps = 2^m` points in two dimensions every cell of
    /// a `2^a × 2^b` grid with `a + b = m` holds exactly one initial state, so no corner of the
    /// initial-state box is left to chance.
    Sobol,
}

impl Placement {
    /// Whether this is the default (left out of written configs, which then stay as before).
    pub fn is_random(&self) -> bool {
        *self == Placement::Random
    }
}

/// The most initial states per stiffness value that `placement = "sobol"` spreads (`sobol_burley`'s
/// sequence length).
pub const SOBOL_MAX_POINTS: i64 = 1 << 16;

/// The error naming `sampler.placement = "sobol"`, and why.
fn refuse_sobol(why: &str) -> Error {
    Error::invalid("sampler.placement", "sobol", format!("\"random\" ({why})"))
}

/// `n` initial states per eps, or the error naming `sampler.per_eps` beyond the Sobol sequence.
fn check_sobol_points(n: i64) -> Result<()> {
    if n > SOBOL_MAX_POINTS {
        return Err(Error::invalid(
            "sampler.per_eps",
            n,
            format!("at most {SOBOL_MAX_POINTS} with placement = \"sobol\""),
        ));
    }
    Ok(())
}

/// The number of uniforms per initial state when `system` can be Sobol-placed; else the error naming
/// `sampler.placement`.
fn sobol_dims(system: &dyn StiffSystem) -> Result<usize> {
    let k = system
        .initial_unit_dims()
        .ok_or_else(|| refuse_sobol("this system cannot place initial states from a unit cube"))?;
    if k == 0 || k > sobol_burley::NUM_DIMENSIONS as usize {
        return Err(refuse_sobol(&format!(
            "initial states of {k} numbers; Sobol placement takes 1 to {}",
            sobol_burley::NUM_DIMENSIONS
        )));
    }
    Ok(k)
}

/// The `n` initial states of one stiffness value, placed as `placement` says; `rng` gives the
/// random draws or the scramble's seed.
pub fn initial_states(system: &dyn StiffSystem, placement: Placement, n: usize, rng: &mut StdRng) -> Result<Vec<f64>> {
    match placement {
        Placement::Random => Ok((0..n).flat_map(|_| system.sample_initial(rng)).collect()),
        Placement::Sobol => {
            check_sobol_points(n as i64)?;
            let k = sobol_dims(system)?;
            let seed: u32 = rng.random();
            let mut out = Vec::with_capacity(n * system.dim());
            for i in 0..n as u32 {
                let u: Vec<f64> = (0..k as u32).map(|j| f64::from(sobol_burley::sample(i, j, seed))).collect();
                let x = system
                    .initial_from_unit(&u)
                    .ok_or_else(|| refuse_sobol("the system returned no state for a point of its unit cube"))?;
                out.extend(x);
            }
            Ok(out)
        }
    }
}

/// Paper Alg. 2: `per_eps` trajectories per stiffness value from random initial states
/// ([`StiffSystem::sample_initial`]; evenly spread ones with `placement = "sobol"`), integrated to `horizon` with a high-accuracy solver (diffsol
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
    /// Where the initial states go: `random` (the paper's) or `sobol` (evenly spread).
    #[serde(skip_serializing_if = "Placement::is_random")]
    pub placement: Placement,
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
            placement: Placement::Random,
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
        Error::positive("sampler.atol", self.atol)?;
        if self.placement == Placement::Sobol {
            check_sobol_points(self.per_eps)?;
        }
        Ok(())
    }

    fn sample(&self, system: &dyn StiffSystem, eps_grid: &[f64], rng: &mut StdRng) -> Result<SampleSet> {
        self.validate()?;
        let d = system.dim();
        let times = self.times();
        let mut set = SampleSet { dim: d, ..Default::default() };
        for &eps in eps_grid {
            system.check_param(eps)?;
            let x0s = initial_states(system, self.placement, self.per_eps as usize, rng)?;
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

    fn validate_for(&self, system: &dyn StiffSystem) -> Result<()> {
        if self.placement == Placement::Sobol {
            sobol_dims(system)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let grid = match self.spacing {
            Spacing::Linear => format!("dt = {}", self.dt),
            Spacing::Log => format!("{} log-spaced times from {}", self.points, self.t_first),
        };
        let method = if self.method == Method::Bdf { ", BDF" } else { "" };
        let placement = if self.placement == Placement::Sobol { ", Sobol-placed" } else { "" };
        format!("trajectory: {} per eps{placement}, T = {}, {grid}{method}", self.per_eps, self.horizon)
    }

    fn expected_len(&self, n_eps: usize) -> Option<usize> {
        let times = crate::ode::count_times(self.spacing, self.dt, self.horizon, self.points.max(0) as usize);
        Some(n_eps.saturating_mul(self.per_eps.max(0) as usize).saturating_mul(times))
    }
}
