//! Van der Pol oscillator in the scaled form of Hairer & Wanner's stiff test set (problem VDPOL):
//!
//! ```text
//! y1' = y2
//! y2' = ((1 - y1²) y2 - y1) / eps            (eps = 1/μ²; eps = 1 is the classic μ = 1 oscillator)
//! ```
//!
//! Jacobian `[[0, 1], [-(2 y1 y2 + 1)/eps, (1 - y1²)/eps]]`. On the attracting branches of the
//! critical manifold `y2 = y1/(1 - y1²)` (|y1| > 1) the fast eigenvalue is ≈ `(1 - y1²)/eps`, so the
//! stiffness grows as `1/eps`; near |y1| = 1 the relaxation oscillation jumps between the branches and
//! the eigenvalues can be complex or positive. Reference eigenvalues are those of the exact Jacobian.
//!
//! Initial states for training: `|y1| ~ U[1.2, 2.4]` with a random sign, `y2` = critical manifold
//! `+ U[-1, 1]`. Test initial states (fixed): `(2, 0)` (the test set's), `(-1.5, 0.8)`, `(1.3, -1.5)`.
//!
//! The default grids keep `|λ_fast| · 0.01 < 2.78` (RK4's stability bound at the default evaluation
//! step) on the test trajectories: eps ≥ 0.02 for |y1| ≤ 2.

use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::plugins::system::StiffSystem;

/// The Van der Pol oscillator with stiffness `eps = 1/μ²`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VanDerPol {
    /// Training stiffness grid.
    pub train_eps: Vec<f64>,
    /// Unseen stiffness grid.
    pub unseen_eps: Vec<f64>,
}

impl Default for VanDerPol {
    fn default() -> Self {
        Self {
            train_eps: vec![0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.3],
            unseen_eps: vec![0.025, 0.04, 0.06, 0.15, 0.25],
        }
    }
}

/// The critical manifold `y2 = y1/(1 - y1²)` (where `y2' = 0`), attracting for |y1| > 1.
pub fn critical_manifold(y1: f64) -> f64 {
    y1 / (1.0 - y1 * y1)
}

#[typetag::serde(name = "van-der-pol")]
impl StiffSystem for VanDerPol {
    fn dim(&self) -> usize {
        2
    }

    fn state_names(&self) -> Vec<String> {
        vec!["y1".into(), "y2".into()]
    }

    fn train_grid(&self) -> Vec<f64> {
        self.train_eps.clone()
    }

    fn unseen_grid(&self) -> Vec<f64> {
        self.unseen_eps.clone()
    }

    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        let (y1, y2) = (x[0], x[1]);
        dx[0] = y2;
        dx[1] = ((1.0 - y1 * y1) * y2 - y1) / eps;
    }

    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        let (y1, y2) = (x[0], x[1]);
        DMatrix::from_row_slice(2, 2, &[0.0, 1.0, -(2.0 * y1 * y2 + 1.0) / eps, (1.0 - y1 * y1) / eps])
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let y1 = sign * rng.random_range(1.2..=2.4);
        vec![y1, critical_manifold(y1) + rng.random_range(-1.0..=1.0)]
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(2)
    }

    /// `u[0]` below one half: the branch `y1 < 0`, above: `y1 > 0`, each spread over `|y1| ∈ [1.2, 2.4]`.
    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let &[a, b] = u else { return None };
        let y1 = if a < 0.5 { -(1.2 + 2.4 * a) } else { 1.2 + 2.4 * (a - 0.5) };
        Some(vec![y1, critical_manifold(y1) + (2.0 * b - 1.0)])
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        vec![vec![2.0, 0.0], vec![-1.5, 0.8], vec![1.3, -1.5]]
    }

    fn slow_manifold(&self, y1: f64, _eps: f64) -> Option<Vec<f64>> {
        (y1.abs() > 1.05).then(|| vec![y1, critical_manifold(y1)])
    }
}

crate::register!(
    system,
    VanDerPol,
    "Van der Pol, Hairer–Wanner scaled form: y1' = y2, y2' = ((1-y1²)y2 - y1)/eps (eps = 1/mu²)"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Published reference: the limit cycle of the classic μ = 1 oscillator has period
    /// T = 6.6632868593… (e.g. Hairer, Nørsett & Wanner, *Solving ODEs I*, sec. I.16). Our high-accuracy
    /// solver reproduces it from the period between upward zero crossings of y1.
    #[test]
    fn mu_one_limit_cycle_has_the_published_period() {
        let s = VanDerPol::default();
        let dt = 1e-3;
        let times: Vec<f64> = (0..=40_000).map(|i| i as f64 * dt).collect();
        let y = crate::ode::solve_at(&s, 1.0, &[2.0, 0.0], &times, 1e-10, 1e-12, false).unwrap();
        // Upward zero crossings of y1 (no hysteresis), linearly interpolated: the evaluation's detector.
        let ups = crate::eval::metrics::upward_crossings(&y, &times, 2, 0, 0.0, 0.0);
        assert!(ups.len() >= 4, "{ups:?}");
        let period = ups[ups.len() - 1] - ups[ups.len() - 2];
        assert!((period - 6.663_286_859).abs() < 1e-4, "period {period}");
    }

    #[test]
    fn fast_eigenvalue_on_the_slow_branch_scales_as_one_over_eps() {
        let s = VanDerPol::default();
        for &eps in &s.train_eps {
            let x = [2.0, critical_manifold(2.0)];
            let ev = s.reference_eigenvalues(&x, eps);
            // λ_fast ≈ (1 - y1²)/eps = -3/eps up to O(1).
            assert!((ev[0].re * eps + 3.0).abs() < 2.0 * eps, "eps={eps} {ev:?}");
        }
    }
}
