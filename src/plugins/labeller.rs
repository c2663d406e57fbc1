//! The [`Labeller`] plugin trait and its built-ins: `direct` (exact RHS, eq. 15), `burst` (central
//! difference of forward/backward micro-integrations, Alg. 4) and `finite-difference` (eq. 14, from the
//! stored trajectories).
//!
//! # Burst bias
//! For a linear mode `e^{λt}` the central difference over `±τ` returns
//! `(e^{λτ} - e^{-λτ}) / (2τ) = λ · sinh(λτ)/(λτ) = λ (1 + (λτ)²/6 + …)`: the label of the fast component
//! is too large by `(λτ)²/6` relative — 17.5 % at the paper's `τ = 1e-2`, `eps = 0.01` (λτ = -1), so no
//! network trained on such labels can get the fast eigenvalue right. Three modes:
//! - `fixed`: the paper's `τ` (default `1e-2`), kept for reproduction;
//! - `scaled`: per sample `τ_i = τ · 2^{-m}` with the smallest `m ≥ 0` such that
//!   `τ_i · ρ(J(x_i)) ≤ c` (`c = tau_scale`, default 0.02, ρ = spectral radius of the exact Jacobian):
//!   the relative bias is at most `c²/6 ≈ 7e-5`; the power-of-two grid lets samples share batches;
//! - `richardson`: `(4 D(τ/2) - D(τ)) / 3`, which cancels the `τ²` term: bias `(λτ)⁴/480`
//!   (0.2 % at λτ = 1).
//!
//! The pipeline reports every labeller's error against `direct` labels per stiffness value.
//!
//! Burst integrations are batched: all samples that share `(eps, τ)` are integrated as one
//! diffsol problem with `nbatch` lanes (Tsit5, `rtol`/`atol`, shared step size, error norm = max over
//! lanes of the per-lane RMS norm, so every sample meets the tolerance), in parallel over batches.

use std::fmt::Debug;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::sampler::{Origin, SampleSet};
use crate::plugins::system::StiffSystem;

/// Produces the regression targets (approximations of `F(x, eps)`) for a set of states.
#[typetag::serde(tag = "type")]
pub trait Labeller: Debug + Send + Sync + dyn_clone::DynClone {
    /// Checks the parameters; errors name the field and the allowed values.
    fn validate(&self) -> Result<()>;
    /// Labels every sample; returns `n × dim`, row-major.
    fn label(&self, system: &dyn StiffSystem, set: &SampleSet) -> Result<Vec<f64>>;
    /// A one-line summary of the parameters, for reports.
    fn describe(&self) -> String;
    /// Whether the labels are the exact RHS (then exact Jacobian labels, `train.jacobian`, fit with
    /// them). Default `false`.
    fn exact(&self) -> bool {
        false
    }
    /// Whether labelling calls the system's RHS (or its Jacobian): then it cannot label for a system
    /// without one (a `data` system). Default `true`.
    fn uses_rhs(&self) -> bool {
        true
    }
}

// A plugin is `Clone` by contract (the supertrait `DynClone`): boxed ones clone field by field, losslessly.
dyn_clone::clone_trait_object!(Labeller);

/// Exact labels `F(x, eps)` (paper eq. 15, the benchmark setting).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Direct {}

/// Exact RHS at every sample (also the reference for label-bias reports).
pub fn exact_labels(system: &dyn StiffSystem, set: &SampleSet) -> Vec<f64> {
    exact_rhs_parallel(system, &set.x, &set.eps)
}

/// The exact RHS at `n` points (`x`: `n × d`), in batches of 1024 points
/// ([`StiffSystem::rhs_batch`]) spread over the rayon threads.
pub fn exact_rhs_parallel(system: &dyn StiffSystem, x: &[f64], eps: &[f64]) -> Vec<f64> {
    let d = system.dim();
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(d * 1024).enumerate().for_each(|(c, chunk)| {
        let (first, n) = (c * 1024, chunk.len() / d);
        system.rhs_batch(&x[first * d..(first + n) * d], &eps[first..first + n], chunk);
    });
    out
}

#[typetag::serde(name = "direct")]
impl Labeller for Direct {
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    fn label(&self, system: &dyn StiffSystem, set: &SampleSet) -> Result<Vec<f64>> {
        Ok(exact_labels(system, set))
    }
    fn describe(&self) -> String {
        "direct: exact RHS".into()
    }
    fn exact(&self) -> bool {
        true
    }
}

/// How the burst horizon is chosen (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TauMode {
    /// The given `τ` for every sample (paper).
    Fixed,
    /// `τ` halved until `τ·ρ(J) ≤ tau_scale`.
    Scaled,
    /// Richardson extrapolation over `τ` and `τ/2`.
    Richardson,
}

/// Paper Alg. 4: `(x(τ) - x(-τ)) / (2τ)` with high-accuracy forward and backward integrations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Burst {
    /// Burst horizon `τ` (paper: 1e-2).
    pub tau: f64,
    /// `fixed` (paper), `scaled` or `richardson`.
    pub mode: TauMode,
    /// Target `τ·ρ(J)` of the `scaled` mode.
    pub tau_scale: f64,
    /// Relative tolerance of the micro-integrations (paper: 1e-9).
    pub rtol: f64,
    /// Absolute tolerance of the micro-integrations (paper: 1e-12).
    pub atol: f64,
    /// Samples per batched integration.
    pub batch: i64,
}

impl Default for Burst {
    fn default() -> Self {
        Self { tau: 1e-2, mode: TauMode::Fixed, tau_scale: 0.02, rtol: 1e-9, atol: 1e-12, batch: 64 }
    }
}

impl Burst {
    /// The horizon used for a sample with spectral radius `rho`.
    pub fn tau_for(&self, rho: f64) -> f64 {
        match self.mode {
            TauMode::Fixed | TauMode::Richardson => self.tau,
            TauMode::Scaled => {
                let mut tau = self.tau;
                while tau * rho > self.tau_scale && tau > 1e-300 {
                    tau *= 0.5;
                }
                tau
            }
        }
    }

    /// Central-difference labels at horizon `tau` for the samples `idx` (all with stiffness `eps`).
    fn central(
        &self,
        system: &dyn StiffSystem,
        set: &SampleSet,
        idx: &[usize],
        eps: f64,
        tau: f64,
    ) -> Result<Vec<f64>> {
        let d = set.dim;
        let mut x0 = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            x0.extend_from_slice(set.state(i));
        }
        let plus = crate::ode::flow_batch(system, eps, &x0, tau, self.rtol, self.atol)?;
        let minus = crate::ode::flow_batch(system, eps, &x0, -tau, self.rtol, self.atol)?;
        Ok(plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * tau)).collect())
    }
}

#[typetag::serde(name = "burst")]
impl Labeller for Burst {
    fn validate(&self) -> Result<()> {
        Error::positive("labeller.tau", self.tau)?;
        Error::positive("labeller.tau_scale", self.tau_scale)?;
        Error::positive("labeller.rtol", self.rtol)?;
        Error::positive("labeller.atol", self.atol)?;
        Error::at_least_one("labeller.batch", self.batch)?;
        Ok(())
    }

    fn label(&self, system: &dyn StiffSystem, set: &SampleSet) -> Result<Vec<f64>> {
        self.validate()?;
        let d = set.dim;
        let n = set.len();
        // Group samples by (eps, tau) so that each batch shares its stiffness and horizon.
        let taus: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| match self.mode {
                TauMode::Scaled => {
                    let rho = system.reference_eigenvalues(set.state(i), set.eps[i])[0].norm();
                    self.tau_for(rho)
                }
                _ => self.tau,
            })
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| set.eps[a].total_cmp(&set.eps[b]).then(taus[a].total_cmp(&taus[b])).then(a.cmp(&b)));
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            match batches.last_mut() {
                Some(b) if b.len() < self.batch as usize && set.eps[b[0]] == set.eps[i] && taus[b[0]] == taus[i] => {
                    b.push(i)
                }
                _ => batches.push(vec![i]),
            }
        }
        let results: Vec<Result<Vec<f64>>> = batches
            .par_iter()
            .map(|idx| {
                let (eps, tau) = (set.eps[idx[0]], taus[idx[0]]);
                match self.mode {
                    TauMode::Richardson => {
                        let full = self.central(system, set, idx, eps, tau)?;
                        let half = self.central(system, set, idx, eps, 0.5 * tau)?;
                        Ok(full.iter().zip(&half).map(|(f, h)| (4.0 * h - f) / 3.0).collect())
                    }
                    _ => self.central(system, set, idx, eps, tau),
                }
            })
            .collect();
        let mut out = vec![0.0; n * d];
        for (idx, r) in batches.iter().zip(results) {
            let r = r?;
            for (j, &i) in idx.iter().enumerate() {
                out[i * d..(i + 1) * d].copy_from_slice(&r[j * d..(j + 1) * d]);
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        match self.mode {
            TauMode::Fixed => {
                format!("burst: fixed tau = {} (paper), rtol {}, atol {}", self.tau, self.rtol, self.atol)
            }
            TauMode::Scaled => format!(
                "burst: scaled tau <= {} with tau*rho(J) <= {} (bias <= {:.1e}), rtol {}, atol {}",
                self.tau,
                self.tau_scale,
                self.tau_scale * self.tau_scale / 6.0,
                self.rtol,
                self.atol
            ),
            TauMode::Richardson => {
                format!("burst: Richardson over tau = {} and tau/2, rtol {}, atol {}", self.tau, self.rtol, self.atol)
            }
        }
    }
}

/// Paper eq. 14: `(x(t+δt) - x(t-δt)) / (2δt)` along the stored trajectories (second-order one-sided
/// differences at the two ends; on non-uniform, e.g. log-spaced, times the second-order three-point
/// formulas of [`fd_weights`]). Only trajectory points can be labelled this way: the `trajectory`
/// sampler's integrations, or trajectories read from a data file (sampler `data`).
///
/// `order = 4` (or 6) uses the `order + 1` nearest points of the trajectory instead of 3 (Fornberg's
/// weights on the actual times, [`fd_stencil`]: centred inside, one-sided near the ends). The
/// truncation error of an order-`p` stencil of spacing `h` is `O(h^p x^{(p+1)})`: for a mode
/// `e^{λt}` sampled `h` apart the relative error is about `(λh)²/6` at order 2 and `(λh)⁴/30` at
/// order 4, so on data resolved to `|λ|h = 0.1` per step the labels are good to `1.7e-3` and
/// `3e-6`. Measured label errors against the exact RHS (when the system has one) are in the run's
/// `label_bias.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiniteDifference {
    /// Order of accuracy: 2 (eq. 14, three points), 4 or 6.
    #[serde(default = "FiniteDifference::default_order", skip_serializing_if = "FiniteDifference::is_default_order")]
    pub order: usize,
}

impl FiniteDifference {
    fn default_order() -> usize {
        2
    }
    fn is_default_order(order: &usize) -> bool {
        *order == 2
    }
}

impl Default for FiniteDifference {
    fn default() -> Self {
        Self { order: Self::default_order() }
    }
}

#[typetag::serde(name = "finite-difference")]
impl Labeller for FiniteDifference {
    fn validate(&self) -> Result<()> {
        if ![2, 4, 6].contains(&self.order) {
            return Err(Error::invalid("labeller.order", self.order, "2, 4 or 6"));
        }
        Ok(())
    }
    fn label(&self, _system: &dyn StiffSystem, set: &SampleSet) -> Result<Vec<f64>> {
        fd_labels(set, self.order)
    }
    fn describe(&self) -> String {
        if self.order == 2 {
            "finite-difference: central differences along stored trajectories (eq. 14)".into()
        } else {
            format!("finite-difference: order-{} differences along stored trajectories", self.order)
        }
    }
    fn uses_rhs(&self) -> bool {
        false
    }
}

/// The `finite-difference` labels of a set of trajectory points: the derivative at every point along its
/// trajectory from the `order + 1` nearest points ([`fd_stencil`]; order 2 uses [`fd_weights`]) — no
/// system involved, so `stiffx identify --data` labels a file with it alone.
pub fn fd_labels(set: &SampleSet, order: usize) -> Result<Vec<f64>> {
    let d = set.dim;
    let points = order + 1;
    let mut out = vec![0.0; set.len() * d];
    for (i, o) in set.origin.iter().enumerate() {
        let Origin::Trajectory { traj, index } = *o else {
            return Err(Error::Unsupported(
                "labeller `finite-difference` needs trajectory points, but the sampler produced cloud points; use labeller `burst` or `direct` with sampler `cloud`".into(),
            ));
        };
        let tr = &set.trajectories[traj as usize];
        let np = tr.states.len() / d;
        if np < points {
            return Err(Error::Unsupported(format!(
                "labeller `finite-difference` of order {} needs trajectories of at least {points} points; one has {np}",
                order
            )));
        }
        let j = index as usize;
        let (first, w) = if order == 2 {
            let (first, w) = fd_weights(&tr.times, j);
            (first, w.to_vec())
        } else {
            fd_stencil(&tr.times, j, points)
        };
        for k in 0..d {
            out[i * d + k] = w.iter().enumerate().map(|(m, wm)| wm * tr.states[(first + m) * d + k]).sum();
        }
    }
    Ok(out)
}

/// Weights of the first derivative at point `j` of the increasing `times` from the `points` nearest
/// points (centred where the trajectory allows, one-sided at its ends), by Fornberg's algorithm
/// (Math. Comp. 51, 1988), exact for polynomials of degree `points − 1` on any spacing. Returns the first
/// point used and the weights. `points` must be at most `times.len()`.
pub fn fd_stencil(times: &[f64], j: usize, points: usize) -> (usize, Vec<f64>) {
    let n = times.len();
    let first = j.saturating_sub(points / 2).min(n - points);
    let z = times[j];
    // Shifted abscissae (better conditioned); c[i][k]: weight of point i for derivative k ∈ {0, 1}
    // (Fornberg's recursion with its derivative loop unrolled for the first derivative only).
    let x: Vec<f64> = times[first..first + points].iter().map(|t| t - z).collect();
    let mut c = vec![[0.0f64; 2]; points];
    c[0][0] = 1.0;
    let (mut c1, mut c4) = (1.0, x[0]);
    for i in 1..points {
        let (mut c2, c5) = (1.0, c4);
        c4 = x[i];
        for jj in 0..i {
            let c3 = x[i] - x[jj];
            c2 *= c3;
            if jj == i - 1 {
                c[i][1] = c1 * (c[i - 1][0] - c5 * c[i - 1][1]) / c2;
                c[i][0] = -c1 * c5 * c[i - 1][0] / c2;
            }
            c[jj][1] = (c4 * c[jj][1] - c[jj][0]) / c3;
            c[jj][0] = c4 * c[jj][0] / c3;
        }
        c1 = c2;
    }
    (first, c.iter().map(|w| w[1]).collect())
}

/// Second-order three-point derivative weights at point `j` of the increasing `times`: returns the
/// first of the three points used and their weights. With `h1 = t_1 - t_0`, `h2 = t_2 - t_1` (the three
/// points), the derivative at the middle point is
/// `-h2/(h1(h1+h2)) x_0 + (h2-h1)/(h1 h2) x_1 + h1/(h2(h1+h2)) x_2`, at the first
/// `-(2h1+h2)/(h1(h1+h2)) x_0 + (h1+h2)/(h1 h2) x_1 - h1/(h2(h1+h2)) x_2` and at the last
/// `h2/(h1(h1+h2)) x_0 - (h1+h2)/(h1 h2) x_1 + (h1+2h2)/(h2(h1+h2)) x_2`; on a uniform grid these are
/// eq. 14 and the usual `(∓3, ±4, ∓1)/(2h)` end formulas.
pub fn fd_weights(times: &[f64], j: usize) -> (usize, [f64; 3]) {
    let n = times.len();
    let first = j.saturating_sub(1).min(n - 3);
    let (t0, t1, t2) = (times[first], times[first + 1], times[first + 2]);
    let (h1, h2) = (t1 - t0, t2 - t1);
    let s = h1 + h2;
    let w = match j - first {
        0 => [-(2.0 * h1 + h2) / (h1 * s), s / (h1 * h2), -h1 / (h2 * s)],
        1 => [-h2 / (h1 * s), (h2 - h1) / (h1 * h2), h1 / (h2 * s)],
        _ => [h2 / (h1 * s), -s / (h1 * h2), (h1 + 2.0 * h2) / (h2 * s)],
    };
    (first, w)
}
