//! Davis–Skodje, in the form of the paper (eqs. 3–4):
//!
//! ```text
//! y' = -y,        z' = -(z - h(y)) / eps,        h(y) = y / (1 + y)
//! ```
//!
//! The Jacobian `[[-1, 0], [h'(y)/eps, -1/eps]]` with `h'(y) = 1/(1+y)²` is lower triangular, so the
//! eigenvalues are exactly `-1` (slow) and `-1/eps` (fast) at every state. Note (see PAPER-NOTES): with
//! this RHS the curve `z = h(y)` is not invariant; the true slow manifold is
//! `z = h(y) + eps·y/(1+y)² + O(eps²)`. [`slow_manifold`](StiffSystem::slow_manifold) returns the
//! first-order approximation.
//!
//! Initial states for training: `y0 ~ U[y0_min, y0_max]`, `z0 = h(y0) + U[dz_min, dz_max]` (defaults
//! `U[0.5, 2.5]` and `U[0.25, 1.25]`: away from the slow manifold, as in the paper's Alg. 2).
//! Test initial states (fixed): `(0.75, h(0.75) + 0.5)`, `(1.5, h(1.5) + 1.0)`, `(2.25, h(2.25) + 0.35)`.

use nalgebra::{Complex, DMatrix};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::system::{StiffSystem, sort_by_magnitude};

/// The Davis–Skodje slow–fast system with stiffness `eps` (fast eigenvalue `-1/eps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DavisSkodje {
    /// Lower bound of the initial `y0`.
    pub y0_min: f64,
    /// Upper bound of the initial `y0`.
    pub y0_max: f64,
    /// Lower bound of the initial offset `z0 - h(y0)`.
    pub dz_min: f64,
    /// Upper bound of the initial offset `z0 - h(y0)`.
    pub dz_max: f64,
    /// Training stiffness grid (paper eq. 30).
    pub train_eps: Vec<f64>,
    /// Unseen stiffness grid (paper eq. 33).
    pub unseen_eps: Vec<f64>,
}

impl Default for DavisSkodje {
    fn default() -> Self {
        Self {
            y0_min: 0.5,
            y0_max: 2.5,
            dz_min: 0.25,
            dz_max: 1.25,
            train_eps: vec![0.010, 0.020, 0.030, 0.040, 0.050, 0.075, 0.100, 0.200, 0.300],
            unseen_eps: vec![0.015, 0.025, 0.035, 0.045, 0.060, 0.090, 0.150, 0.250],
        }
    }
}

/// The (non-invariant) manifold of the paper, `h(y) = y / (1 + y)`.
pub fn h(y: f64) -> f64 {
    y / (1.0 + y)
}

#[typetag::serde(name = "davis-skodje")]
impl StiffSystem for DavisSkodje {
    fn validate(&self) -> Result<()> {
        Error::finite_range("system.y0_min", self.y0_min, "system.y0_max", self.y0_max)?;
        if self.y0_min <= -1.0 {
            return Err(Error::invalid("system.y0_min", self.y0_min, "a number > -1 (the slow manifold z = y/(1+y) has a pole at y = -1)"));
        }
        Error::finite_range("system.dz_min", self.dz_min, "system.dz_max", self.dz_max)
    }

    fn dim(&self) -> usize {
        2
    }

    fn state_names(&self) -> Vec<String> {
        vec!["y".into(), "z".into()]
    }

    fn train_grid(&self) -> Vec<f64> {
        self.train_eps.clone()
    }

    fn unseen_grid(&self) -> Vec<f64> {
        self.unseen_eps.clone()
    }

    fn check_param(&self, eps: f64) -> Result<()> {
        if eps.is_finite() && eps > 0.0 {
            Ok(())
        } else {
            Err(Error::invalid("eps", eps, "a finite number > 0 (the fast eigenvalue is -1/eps)"))
        }
    }

    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        let (y, z) = (x[0], x[1]);
        dx[0] = -y;
        dx[1] = -(z - h(y)) / eps;
    }

    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        let y = x[0];
        let dh = 1.0 / ((1.0 + y) * (1.0 + y));
        DMatrix::from_row_slice(2, 2, &[-1.0, 0.0, dh / eps, -1.0 / eps])
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        let y0 = rng.random_range(self.y0_min..=self.y0_max);
        let dz = rng.random_range(self.dz_min..=self.dz_max);
        vec![y0, h(y0) + dz]
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(2)
    }

    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let &[a, b] = u else { return None };
        let y0 = self.y0_min + a * (self.y0_max - self.y0_min);
        Some(vec![y0, h(y0) + self.dz_min + b * (self.dz_max - self.dz_min)])
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        [(0.75, 0.5), (1.5, 1.0), (2.25, 0.35)].iter().map(|&(y, dz)| vec![y, h(y) + dz]).collect()
    }

    fn reference_eigenvalues(&self, _x: &[f64], eps: f64) -> Vec<Complex<f64>> {
        let mut ev = vec![Complex::new(-1.0 / eps, 0.0), Complex::new(-1.0, 0.0)];
        sort_by_magnitude(&mut ev);
        ev
    }

    fn slow_manifold(&self, y: f64, eps: f64) -> Option<Vec<f64>> {
        Some(vec![y, h(y) + eps * y / ((1.0 + y) * (1.0 + y))])
    }
}

crate::register!(
    system,
    DavisSkodje,
    "Davis–Skodje (paper form): y' = -y, z' = -(z - y/(1+y))/eps; eigenvalues -1, -1/eps"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhs_known_values() {
        let ds = DavisSkodje::default();
        let mut f = [0.0; 2];
        ds.rhs(&[1.0, 1.0], 0.01, &mut f);
        assert_eq!(f[0], -1.0);
        assert!((f[1] - (-(1.0 - 0.5) / 0.01)).abs() < 1e-12);
    }

    #[test]
    fn reference_eigenvalues_are_exact() {
        let ds = DavisSkodje::default();
        for &eps in &ds.train_eps {
            let ev = ds.reference_eigenvalues(&[1.3, 0.4], eps);
            assert_eq!(ev[0], Complex::new(-1.0 / eps, 0.0));
            assert_eq!(ev[1], Complex::new(-1.0, 0.0));
            // and they agree with the eigenvalues of the exact Jacobian
            let num = crate::plugins::system::eigenvalues_by_magnitude(&ds.jacobian(&[1.3, 0.4], eps));
            assert!((num[0] - ev[0]).norm() < 1e-9 && (num[1] - ev[1]).norm() < 1e-12);
        }
    }
}
