//! The [`StiffSystem`] plugin trait: a parametric stiff ODE `x' = F(x, eps)` with everything the
//! pipeline needs to learn it and to judge the learned operator — its stiffness grids (paper eqs. 30 and
//! 33), its exact Jacobian (finite differences by default), a distribution of initial states, a fixed
//! set of test initial states, and the reference eigenvalues (eigenvalues of the true Jacobian).
//!
//! Implementations live in `systems/`, one file each, and register themselves with
//! `stiffx::register!(system, …)`; nothing in training, spectral evaluation or rollouts
//! names a concrete system.
//!
//! # Example
//! ```
//! use stiffx::plugins::system::StiffSystem;
//! let ds = stiffx::plugins::registry::system("davis-skodje").unwrap();
//! let mut f = vec![0.0; 2];
//! ds.rhs(&[1.0, 0.0], 0.1, &mut f);
//! assert!((f[0] + 1.0).abs() < 1e-15 && (f[1] - 5.0).abs() < 1e-12);
//! let lam = ds.reference_eigenvalues(&[1.0, 0.0], 0.1);
//! assert!((lam[0].re + 10.0).abs() < 1e-6 && (lam[1].re + 1.0).abs() < 1e-6);
//! ```

use std::fmt::Debug;

use nalgebra::{Complex, DMatrix};
use rand::rngs::StdRng;

use crate::error::{Error, Result};

/// A parametric stiff ODE system `x' = F(x, eps)`, `x` in R^d, with a scalar stiffness parameter.
///
/// All methods work in f64 on the CPU. The trait is object-safe and serialised in configs through
/// `typetag` (`[system] type = "davis-skodje"`), so a config file can carry a system's own parameters.
#[typetag::serde(tag = "type")]
pub trait StiffSystem: Debug + Send + Sync + dyn_clone::DynClone {
    /// State dimension `d`.
    fn dim(&self) -> usize;

    /// Names of the state components (length `d`), used in outputs and figures.
    fn state_names(&self) -> Vec<String>;

    /// Name of the stiffness parameter (default `eps`).
    fn param_name(&self) -> String {
        "eps".to_string()
    }

    /// Stiffness values used for training (paper eq. 30 for Davis–Skodje).
    fn train_grid(&self) -> Vec<f64>;

    /// Stiffness values held out for generalisation tests (paper eq. 33 for Davis–Skodje).
    fn unseen_grid(&self) -> Vec<f64>;

    /// Checks the system's own fields (rate constants, initial-state ranges) before any work, naming
    /// the field as `system.NAME` and what is allowed ([`Error::invalid`], [`Error::positive`],
    /// [`Error::finite_range`]). Default: nothing to check. Config validation calls it first, so a NaN
    /// or an inverted range never reaches a sampler or a solver.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Whether [`rhs`](Self::rhs) and [`jacobian`](Self::jacobian) are the true ones (default `true`).
    /// A system known only from data (`[system] type = "data"`, `plugins::data_system`) has none:
    /// the config then refuses every sampler and labeller that would call them, and a run evaluates
    /// the learned operator on trajectories instead of against a reference.
    fn has_reference(&self) -> bool {
        true
    }

    /// Completes the system from the config's data file, `(sampler.path, sampler.eps)` when the
    /// sampler reads one (the data system takes its species, grid and first states from it).
    /// Config loading calls it once; a system already complete does nothing. Default: nothing.
    fn bind(&mut self, _data: Option<(&str, Option<f64>)>) -> Result<()> {
        Ok(())
    }

    /// Checks that a stiffness value is admissible (default: finite and > 0).
    fn check_param(&self, eps: f64) -> Result<()> {
        if eps.is_finite() && eps > 0.0 {
            Ok(())
        } else {
            Err(Error::invalid(self.param_name(), eps, "a finite number > 0"))
        }
    }

    /// The right-hand side `F(x, eps)`, written into `dx` (length `d`).
    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]);

    /// The RHS at `n` points at once: `x` is `n × d` row-major with one stiffness value per point in
    /// `eps`, `dx` (`n × d`) receives `F`. Default: [`rhs`](Self::rhs) point by point. Labelling calls
    /// this, so a system that is cheaper in batches (vectorised NumPy through the Python package, a
    /// GPU kernel) overrides it.
    fn rhs_batch(&self, x: &[f64], eps: &[f64], dx: &mut [f64]) {
        let d = self.dim();
        for ((x, e), f) in x.chunks(d).zip(eps).zip(dx.chunks_mut(d)) {
            self.rhs(x, *e, f);
        }
    }

    /// The exact Jacobian `dF/dx` (d × d). Default: central finite differences of [`rhs`](Self::rhs)
    /// with step `h_i = 1e-6 · max(1, |x_i|)` (error O(h²) ≈ 1e-12 relative for smooth F).
    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        fd_jacobian(|x, dx| self.rhs(x, eps, dx), x)
    }

    /// Draws one initial state for a training trajectory (typically away from the slow manifold).
    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64>;

    /// A fixed, documented set of initial states for rollouts and spectral evaluation.
    fn test_initial_states(&self) -> Vec<Vec<f64>>;

    /// How many numbers in `[0, 1)` make one initial state through
    /// [`initial_from_unit`](Self::initial_from_unit), when the system can place its initial states
    /// from points of a unit cube (`sampler.placement = "sobol"`: evenly spread initial states instead
    /// of independent draws). Default `None`: it cannot, and that placement is refused for it.
    fn initial_unit_dims(&self) -> Option<usize> {
        None
    }

    /// The initial state at the point `u` of the unit cube `[0, 1)^k`, `k` =
    /// [`initial_unit_dims`](Self::initial_unit_dims): the map that turns independent uniforms into the
    /// distribution [`sample_initial`](Self::sample_initial) draws from (its inverse CDF), so that
    /// evenly spread points give evenly spread initial states. Default `None` (see `initial_unit_dims`).
    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let _ = u;
        None
    }

    /// Reference eigenvalues at `x`: eigenvalues of the true Jacobian, sorted by decreasing magnitude
    /// (fastest first). Systems with closed forms (Davis–Skodje: `-1/eps`, `-1`) override this.
    fn reference_eigenvalues(&self, x: &[f64], eps: f64) -> Vec<Complex<f64>> {
        eigenvalues_by_magnitude(&self.jacobian(x, eps))
    }

    /// Linear invariants `wᵀx = const` of the flow (`wᵀF = 0` everywhere), e.g. Robertson's mass
    /// conservation `w = (1, 1, 1)`. Each one is an exact zero eigenvalue of the Jacobian (left
    /// eigenvector `w`): the metrics treat those as zeros rather than as the slow eigenvalue, and, with
    /// `model.project_invariants`, the learned RHS is projected onto `wᵀF = 0`. Default: none.
    fn invariants(&self) -> Vec<Vec<f64>> {
        Vec::new()
    }

    /// A point on (an approximation of) the slow manifold for plotting, given the first coordinate;
    /// `None` when the system has no such closed form.
    fn slow_manifold(&self, _first: f64, _eps: f64) -> Option<Vec<f64>> {
        None
    }
}

// A plugin is `Clone` by contract (the supertrait `DynClone`): boxed ones clone field by field, losslessly.
dyn_clone::clone_trait_object!(StiffSystem);

/// The point `u` of the unit cube mapped onto the box `ranges` (one `[lo, hi]` per component, `lo`
/// for a fixed one): the `initial_from_unit` of systems that draw each component uniformly; `None`
/// when `u` has not one number per component.
pub fn from_unit_box(ranges: &[[f64; 2]], u: &[f64]) -> Option<Vec<f64>> {
    (u.len() == ranges.len())
        .then(|| ranges.iter().zip(u).map(|(&[lo, hi], a)| if hi > lo { lo + a * (hi - lo) } else { lo }).collect())
}

/// Central finite-difference Jacobian of `f: R^d -> R^d` at `x`, with `h_i = 1e-6 · max(1, |x_i|)`.
pub fn fd_jacobian(f: impl Fn(&[f64], &mut [f64]), x: &[f64]) -> DMatrix<f64> {
    let d = x.len();
    let mut j = DMatrix::zeros(d, d);
    let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
    let (mut fp, mut fm) = (vec![0.0; d], vec![0.0; d]);
    for i in 0..d {
        let h = 1e-6 * x[i].abs().max(1.0);
        xp[i] = x[i] + h;
        xm[i] = x[i] - h;
        f(&xp, &mut fp);
        f(&xm, &mut fm);
        for k in 0..d {
            j[(k, i)] = (fp[k] - fm[k]) / (2.0 * h);
        }
        xp[i] = x[i];
        xm[i] = x[i];
    }
    j
}

/// Eigenvalues of a real square matrix, sorted by decreasing modulus (ties: by real part, then
/// imaginary part, so that the order is deterministic). 2 × 2 matrices use the closed form, which is
/// exact for triangular matrices and much faster than a general QR iteration.
pub fn eigenvalues_by_magnitude(m: &DMatrix<f64>) -> Vec<Complex<f64>> {
    let mut ev: Vec<Complex<f64>> = if m.nrows() == 2 {
        eig2(m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]).to_vec()
    } else {
        m.clone().complex_eigenvalues().iter().copied().collect()
    };
    sort_by_magnitude(&mut ev);
    ev
}

/// Sorts eigenvalues by decreasing modulus (fastest first), deterministic on ties.
pub fn sort_by_magnitude(ev: &mut [Complex<f64>]) {
    ev.sort_by(|a, b| b.norm().total_cmp(&a.norm()).then(a.re.total_cmp(&b.re)).then(a.im.total_cmp(&b.im)));
}

/// Eigenvalues of `[[a, b], [c, d]]`: `tr/2 ± sqrt((a-d)²/4 + bc)`, computed without cancellation
/// (the larger root from the sum of same-signed terms, the smaller from `det / larger`).
pub fn eig2(a: f64, b: f64, c: f64, d: f64) -> [Complex<f64>; 2] {
    let half_tr = 0.5 * (a + d);
    let disc = 0.25 * (a - d) * (a - d) + b * c;
    if disc >= 0.0 {
        let s = disc.sqrt();
        let big = if half_tr >= 0.0 { half_tr + s } else { half_tr - s };
        let det = a * d - b * c;
        let small = if big != 0.0 { det / big } else { 0.0 };
        [Complex::new(big, 0.0), Complex::new(small, 0.0)]
    } else {
        let s = (-disc).sqrt();
        [Complex::new(half_tr, s), Complex::new(half_tr, -s)]
    }
}
