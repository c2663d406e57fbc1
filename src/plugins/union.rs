//! The `union` sampler ([`UnionSampler`]): the samples of several samplers together,
//! `D = D_1 ∪ D_2 ∪ … ∪ D_m`, every part drawing over the same eps grid from the run's one random
//! stream in turn (part 1 first), so a seed still fixes the whole dataset.
//!
//! What it is for: trajectory samplers spend their points where the dynamics is slow. With `dt`
//! spacing, a trajectory of horizon `T` gives `T/dt` points of which only the first `~5 eps/dt` lie off
//! the slow manifold, so the region a fast transient crosses is covered by the first instants of a
//! dozen trajectories per eps. A union of the long trajectories with many *short* ones
//! (horizon of a few fast time scales) covers it with `per_eps` starts at a small fraction of the
//! points:
//!
//! ```toml
//! [sampler.base]           # inside a cloud, or as [sampler] itself
//! type = "union"
//! [[sampler.base.parts]]   # the slow manifold: 12 trajectories to T = 6
//! type = "trajectory"
//! per_eps = 12
//! horizon = 6.0
//! [[sampler.base.parts]]   # the fast transients: 48 starts, to T = 0.3
//! type = "trajectory"
//! per_eps = 48
//! horizon = 0.3
//! ```
//!
//! Trajectory indices of later parts are shifted past the earlier parts' trajectories, so the points
//! keep their origins (finite-difference labels, the cloud around them, diagnostics). Errors of part
//! `i` name `sampler.parts[i].…` (`sampler.base.parts[i].…` inside a cloud).

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::system::StiffSystem;

use super::sampler::{Origin, SampleSet, Sampler};

/// The samples of every sampler in `parts`, in order (`D_1 ∪ … ∪ D_m`).
///
/// The default has no parts, which [`validate`](Sampler::validate) refuses: a union is spelled out
/// (`--sampler union` alone is an error, not a silent default trajectory sampler).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnionSampler {
    /// The samplers whose samples are joined; at least one.
    pub parts: Vec<Box<dyn Sampler>>,
}

/// The error of part `i` under its own path.
fn in_part(i: usize) -> impl Fn(Error) -> Error {
    move |e| e.moved("sampler.", &format!("sampler.parts[{i}]."))
}

#[typetag::serde(name = "union")]
impl Sampler for UnionSampler {
    fn validate(&self) -> Result<()> {
        if self.parts.is_empty() {
            return Err(Error::invalid(
                "sampler.parts",
                "[]",
                "one or more samplers ([[sampler.parts]] tables with a `type`: cloud, data, trajectory, union)",
            ));
        }
        for (i, p) in self.parts.iter().enumerate() {
            p.validate().map_err(in_part(i))?;
        }
        if self.parts.iter().filter(|p| p.data_file().is_some()).count() > 1 {
            return Err(Error::invalid(
                "sampler.parts",
                "several `data` parts",
                "at most one part that reads a file, a `data` sampler or a cloud around one (a `data` system is bound to one file)",
            ));
        }
        Ok(())
    }

    fn validate_for(&self, system: &dyn StiffSystem) -> Result<()> {
        for (i, p) in self.parts.iter().enumerate() {
            p.validate_for(system).map_err(in_part(i))?;
        }
        Ok(())
    }

    fn sample(&self, system: &dyn StiffSystem, eps_grid: &[f64], rng: &mut StdRng) -> Result<SampleSet> {
        self.validate()?;
        let mut set = SampleSet { dim: system.dim(), ..Default::default() };
        for (i, p) in self.parts.iter().enumerate() {
            let part = p.sample(system, eps_grid, rng).map_err(in_part(i))?;
            let shift = set.trajectories.len() as u32;
            set.x.extend_from_slice(&part.x);
            set.eps.extend_from_slice(&part.eps);
            set.origin.extend(part.origin.iter().map(|o| match *o {
                Origin::Trajectory { traj, index } => Origin::Trajectory { traj: traj + shift, index },
                Origin::Cloud { off, traj, index } => Origin::Cloud { off, traj: traj + shift, index },
            }));
            set.trajectories.extend(part.trajectories);
        }
        Ok(set)
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self.parts.iter().map(|p| format!("[{}]", p.describe())).collect();
        format!("union of {}", parts.join(" + "))
    }

    fn expected_len(&self, n_eps: usize) -> Option<usize> {
        self.parts.iter().try_fold(0usize, |n, p| Some(n.saturating_add(p.expected_len(n_eps)?)))
    }

    fn expected_trajectory_points(&self, n_eps: usize) -> Option<usize> {
        self.parts.iter().try_fold(0usize, |n, p| Some(n.saturating_add(p.expected_trajectory_points(n_eps)?)))
    }

    fn keeps_trajectory_points(&self) -> bool {
        self.parts.iter().any(|p| p.keeps_trajectory_points())
    }

    fn data_file(&self) -> Option<(String, Option<f64>)> {
        self.parts.iter().find_map(|p| p.data_file())
    }

    fn uses_rhs(&self) -> bool {
        self.parts.iter().any(|p| p.uses_rhs())
    }

    fn fingerprint(&self) -> String {
        let prints: Vec<String> = self.parts.iter().map(|p| p.fingerprint()).collect();
        if prints.iter().all(String::is_empty) { String::new() } else { prints.join(";") }
    }
}
