//! The `data` system: a file of trajectories standing in for a system that nobody can write down —
//! measurements, or a simulator's output. It has the file's species (the header), its stiffness grid
//! (the `eps` column) and its first states, but **no right-hand side**: nothing of the pipeline that
//! needs the true `F` or its Jacobian may run on it ([`StiffSystem::has_reference`] is `false`).
//!
//! ```toml
//! # No [system] table: the data sampler's file is the system.
//! [sampler]
//! type = "data"
//! path = "runs/robertson.csv"
//! [labeller]
//! type = "finite-difference"
//! ```
//!
//! is the same as `[system] type = "data"` (its `file` defaults to `sampler.path`). When the config is
//! read, [`StiffSystem::bind`] fills what was not written from the file, and the resolved config
//! (`config.toml`, the checkpoint) carries it, so a checkpoint never needs the file again:
//! - `species`: the header's state columns, in file order (every column but `trajectory`, `t`, `eps`);
//! - `train_eps`: the distinct values of the `eps` column; without one, `sampler.eps`, else `1`;
//! - `initial`: per species, the range `[min, max]` of the trajectories' first states (what
//!   [`sample_initial`](StiffSystem::sample_initial) draws from, uniformly per species);
//! - `test_states`: up to [`TEST_STATES`] first states, evenly strided over the trajectories.
//!
//! - `invariants`: the linear conservation laws of the data (`wᵀx` constant along every trajectory:
//!   [`data_invariants`], scaled so the largest weight is 1; Robertson's SciPy file gives `[[1, 1, 1]]`),
//!   unless written by hand or `find_invariants = false`. Each is a zero eigenvalue of the flow that
//!   the time-scale summaries leave out, and with `model.project_invariants` the network conserves it.
//!
//! `unseen_eps` (default none) is the user's to write.
//!
//! What a run on it does instead of the spectral evaluation (`engine::pipeline`): the learned operator
//! rolls out held-out trajectories (`eval.data`, by default the training file itself) and its time
//! scales along them are summarised (`data_rollouts.csv`, `data_spectrum.csv`). `stiffx eval --system`
//! evaluates such a checkpoint against a true system when one exists.

use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::data::DataSampler;
use crate::plugins::system::StiffSystem;

/// Most first states kept as test states.
pub const TEST_STATES: usize = 8;

/// A trajectory file as the system (module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSystem {
    /// The CSV or NPZ file of trajectories (default: the data sampler's `sampler.path`).
    #[serde(default)]
    pub file: String,
    /// State names (default: the file's state columns, in file order).
    #[serde(default)]
    pub species: Vec<String>,
    /// Training stiffness values (default: the file's `eps` values).
    #[serde(default)]
    pub train_eps: Vec<f64>,
    /// Held-out stiffness values (default: none).
    #[serde(default)]
    pub unseen_eps: Vec<f64>,
    /// Linear invariants `wᵀx = const` of the flow, one `w` per law (default: those of the data when
    /// `find_invariants`, else none).
    #[serde(default)]
    pub invariants: Vec<Vec<f64>>,
    /// Whether, when no `invariants` are written, the conservation laws of the data are found
    /// ([`data_invariants`]) and written in their place (default `true`).
    #[serde(default = "yes")]
    pub find_invariants: bool,
    /// Per species, the `[min, max]` of the trajectories' first states (default: from the file).
    #[serde(default)]
    pub initial: Vec<[f64; 2]>,
    /// Test initial states (default: up to [`TEST_STATES`] first states of the file's trajectories).
    #[serde(default)]
    pub test_states: Vec<Vec<f64>>,
}

fn yes() -> bool {
    true
}

impl Default for DataSystem {
    fn default() -> Self {
        Self {
            file: String::new(),
            species: Vec::new(),
            train_eps: Vec::new(),
            unseen_eps: Vec::new(),
            invariants: Vec::new(),
            find_invariants: true,
            initial: Vec::new(),
            test_states: Vec::new(),
        }
    }
}

/// Relative singular value below which a direction of the steps is a conservation law (as
/// `stiffx identify`'s default `invariant_tol`; data written with 17 digits conserve to ~1e-10).
pub const INVARIANT_TOL: f64 = 1e-5;

/// The conservation laws of trajectories (`d` states per row): the directions `w` with `wᵀ(x_{i+1} −
/// x_i) = 0` along every trajectory to within [`INVARIANT_TOL`] of the largest singular value of the
/// RMS-scaled steps ([`crate::identify::label_invariants`], which finds them in labels the same way),
/// each scaled so that its largest weight is 1 and rounded to 8 significant digits.
pub fn data_invariants(trajectories: &[crate::plugins::sampler::Trajectory], d: usize) -> Vec<Vec<f64>> {
    let mut steps = Vec::new();
    for t in trajectories {
        for (a, b) in t.states.chunks(d).zip(t.states.chunks(d).skip(1)) {
            steps.extend(a.iter().zip(b).map(|(a, b)| b - a));
        }
    }
    crate::identify::label_invariants(&steps, d, INVARIANT_TOL)
        .into_iter()
        .map(|w| {
            let big = w.iter().copied().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            // 8 significant digits: what the data resolve (Robertson's 1 − 3e-12 is 1).
            w.iter().map(|v| format!("{:.7e}", v / big).parse().unwrap_or(v / big)).collect()
        })
        .collect()
}

/// One line on what a system without a reference was read as: its species, grid and conservation laws
/// (`-` for a system with a reference).
pub fn summary(sys: &dyn StiffSystem) -> String {
    if sys.has_reference() {
        return "-".into();
    }
    let names = sys.state_names();
    let term = |(w, n): (&f64, &String)| if *w == 1.0 { n.clone() } else { format!("{w} {n}") };
    let laws: Vec<String> = sys
        .invariants()
        .iter()
        .map(|w| w.iter().zip(&names).filter(|(w, _)| **w != 0.0).map(term).collect::<Vec<_>>().join(" + "))
        .map(|l| format!("{l} = const"))
        .collect();
    let grid: Vec<String> = sys.train_grid().iter().map(|e| format!("{e}")).collect();
    format!(
        "the file is the system: {} species ({}), eps {}; conservation laws: {}",
        names.len(),
        names.join(", "),
        grid.join(", "),
        if laws.is_empty() { "none".into() } else { laws.join("; ") }
    )
}

/// Of trajectories with `d` states per row: per species the range `[min, max]` of their first states,
/// and up to [`TEST_STATES`] first states, evenly strided over the trajectories.
pub fn first_states(trajectories: &[crate::plugins::sampler::Trajectory], d: usize) -> (Vec<[f64; 2]>, Vec<Vec<f64>>) {
    let firsts: Vec<&[f64]> = trajectories.iter().map(|t| &t.states[..d]).collect();
    let range = (0..d)
        .map(|k| {
            let lo = firsts.iter().map(|x| x[k]).fold(f64::INFINITY, f64::min);
            let hi = firsts.iter().map(|x| x[k]).fold(f64::NEG_INFINITY, f64::max);
            [lo, hi]
        })
        .collect();
    let stride = firsts.len().div_ceil(TEST_STATES).max(1);
    (range, firsts.iter().step_by(stride).map(|x| x.to_vec()).collect())
}

impl DataSystem {
    fn bound(&self) -> bool {
        !self.file.is_empty()
            && !self.species.is_empty()
            && !self.train_eps.is_empty()
            && !self.initial.is_empty()
            && !self.test_states.is_empty()
    }
}

#[typetag::serde(name = "data")]
impl StiffSystem for DataSystem {
    fn dim(&self) -> usize {
        self.species.len()
    }

    fn state_names(&self) -> Vec<String> {
        self.species.clone()
    }

    fn train_grid(&self) -> Vec<f64> {
        self.train_eps.clone()
    }

    fn unseen_grid(&self) -> Vec<f64> {
        self.unseen_eps.clone()
    }

    fn has_reference(&self) -> bool {
        false
    }

    fn bind(&mut self, data: Option<(&str, Option<f64>)>) -> Result<()> {
        if let Some((path, _)) = data
            && !self.file.is_empty()
            && self.file != path
        {
            return Err(Error::invalid(
                "system.file",
                &self.file,
                format!(
                    "the data sampler's file, `{path}` (sampler.path): the system is the file the network learns from"
                ),
            ));
        }
        if self.file.is_empty() {
            match data {
                Some((path, _)) => self.file = path.to_string(),
                None => {
                    return Err(Error::invalid(
                        "system.file",
                        "(not set)",
                        "the CSV or NPZ file of trajectories the data system stands for (by default the data sampler's sampler.path; the data system needs sampler.type = \"data\")",
                    ));
                }
            }
        }
        if self.bound() {
            return Ok(());
        }
        let reader = DataSampler { path: self.file.clone(), eps: None };
        let mut file = if self.species.is_empty() {
            let (species, file) = reader.read_own_columns()?;
            self.species = species;
            file
        } else {
            reader.read(&self.species, "eps")?
        };
        let default_eps = data.and_then(|(_, e)| e).unwrap_or(1.0);
        file.resolve_eps(Some(default_eps), std::path::Path::new(&self.file))?;
        if self.train_eps.is_empty() {
            let mut grid: Vec<f64> = file.trajectories.iter().map(|t| t.eps).collect();
            grid.sort_by(f64::total_cmp);
            grid.dedup();
            self.train_eps = grid;
        }
        let d = self.species.len();
        let (initial, test_states) = first_states(&file.trajectories, d);
        if self.initial.is_empty() {
            self.initial = initial;
        }
        if self.test_states.is_empty() {
            self.test_states = test_states;
        }
        if self.invariants.is_empty() && self.find_invariants {
            self.invariants = data_invariants(&file.trajectories, d);
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if !self.bound() {
            return Err(Error::invalid(
                "system",
                "data (not read)",
                "a data system read from its file (Config::from_toml and `stiffx run` do this; in code, call StiffSystem::bind)",
            ));
        }
        let d = self.species.len();
        for (i, s) in self.species.iter().enumerate() {
            if s.is_empty() || self.species[..i].contains(s) {
                return Err(Error::invalid(format!("system.species[{i}]"), s, "a non-empty name used once"));
            }
        }
        let per_species = format!("one per species ({})", self.species.join(", "));
        let finite = |field: String, v: &[f64]| -> Result<()> {
            match v.iter().position(|x| !x.is_finite()) {
                Some(j) => Err(Error::invalid(format!("{field}[{j}]"), v[j], "a finite number")),
                None => Ok(()),
            }
        };
        for (i, w) in self.invariants.iter().enumerate() {
            let field = format!("system.invariants[{i}]");
            finite(field.clone(), w)?;
            if w.len() != d || w.iter().all(|v| *v == 0.0) {
                return Err(Error::invalid(
                    field,
                    format!("{w:?}"),
                    format!("{d} weights, not all zero, {per_species}"),
                ));
            }
        }
        if self.initial.len() != d {
            return Err(Error::invalid(
                "system.initial",
                format!("{} ranges", self.initial.len()),
                format!("{d} ranges [min, max], {per_species}"),
            ));
        }
        for (k, r) in self.initial.iter().enumerate() {
            finite(format!("system.initial[{k}]"), r)?;
            if r[0] > r[1] {
                return Err(Error::invalid(
                    format!("system.initial[{k}]"),
                    format!("{r:?}"),
                    "a range [min, max] with min <= max",
                ));
            }
        }
        for (i, x) in self.test_states.iter().enumerate() {
            finite(format!("system.test_states[{i}]"), x)?;
            if x.len() != d {
                return Err(Error::invalid(
                    format!("system.test_states[{i}]"),
                    format!("{x:?}"),
                    format!("{d} numbers, {per_species}"),
                ));
            }
        }
        Ok(())
    }

    /// Unknown: every component is NaN (nothing may call it; [`has_reference`](StiffSystem::has_reference) says so).
    fn rhs(&self, _x: &[f64], _eps: f64, dx: &mut [f64]) {
        dx.fill(f64::NAN);
    }

    /// Unknown: NaN entries.
    fn jacobian(&self, _x: &[f64], _eps: f64) -> DMatrix<f64> {
        DMatrix::from_element(self.dim(), self.dim(), f64::NAN)
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        self.initial.iter().map(|&[lo, hi]| if hi > lo { rng.random_range(lo..=hi) } else { lo }).collect()
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(self.initial.len())
    }

    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        crate::plugins::system::from_unit_box(&self.initial, u)
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        self.test_states.clone()
    }

    fn invariants(&self) -> Vec<Vec<f64>> {
        self.invariants.clone()
    }
}
