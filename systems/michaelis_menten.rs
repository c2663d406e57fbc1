//! Michaelis–Menten enzyme kinetics in singular-perturbation form (Segel & Slemrod 1989; Murray,
//! *Mathematical Biology I*, sec. 6.3): substrate `u` and complex `v`, dimensionless,
//!
//! ```text
//! u' = -u + (u + K - lam) v
//! v' = (u - (u + K) v) / eps          (eps = e0/s0, the enzyme-to-substrate ratio)
//! ```
//!
//! with `K = (k₋₁ + k₂)/(k₁ s₀)` and `lam = k₂/(k₁ s₀)` (defaults 1 and 0.5, Murray's values).
//! Jacobian `[[-1 + v, u + K - lam], [(1 - v)/eps, -(u + K)/eps]]`; the fast eigenvalue is
//! ≈ `-(u + K)/eps`. The slow (quasi-steady-state) manifold is `v = u/(u + K) + O(eps)`, on which the
//! substrate obeys the Michaelis–Menten law `u' = -lam·u/(u + K)`.
//!
//! Initial states for training: `u0 ~ U[0.3, 1.5]`, `v0 ~ U[0, 0.2]` (the classic experiment starts
//! with no complex, `v0 = 0`, far from the manifold). Test initial states (fixed): `(1, 0)` (the
//! classic), `(0.6, 0.05)`, `(1.4, 0.1)`. The default grids keep `|λ_fast| · 0.01 < 2.78` (RK4 at the
//! default evaluation step) for `u ≤ 1.5`.

use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::system::StiffSystem;

/// Michaelis–Menten kinetics with stiffness `eps = e0/s0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MichaelisMenten {
    /// `K = (k₋₁ + k₂)/(k₁ s₀)`.
    pub k: f64,
    /// `lam = k₂/(k₁ s₀)`, with `0 < lam < K`.
    pub lam: f64,
    /// Training stiffness grid.
    pub train_eps: Vec<f64>,
    /// Unseen stiffness grid.
    pub unseen_eps: Vec<f64>,
}

impl Default for MichaelisMenten {
    fn default() -> Self {
        Self {
            k: 1.0,
            lam: 0.5,
            train_eps: vec![0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2],
            unseen_eps: vec![0.015, 0.025, 0.04, 0.06, 0.15],
        }
    }
}

impl MichaelisMenten {
    /// The leading-order slow manifold `v = u/(u + K)`.
    pub fn qssa(&self, u: f64) -> f64 {
        u / (u + self.k)
    }
}

#[typetag::serde(name = "michaelis-menten")]
impl StiffSystem for MichaelisMenten {
    fn validate(&self) -> Result<()> {
        Error::positive("system.k", self.k)?;
        if !(self.lam > 0.0 && self.lam < self.k) {
            return Err(Error::invalid("system.lam", self.lam, format!("a number in (0, system.k = {})", self.k)));
        }
        Ok(())
    }

    fn dim(&self) -> usize {
        2
    }

    fn state_names(&self) -> Vec<String> {
        vec!["u".into(), "v".into()]
    }

    fn train_grid(&self) -> Vec<f64> {
        self.train_eps.clone()
    }

    fn unseen_grid(&self) -> Vec<f64> {
        self.unseen_eps.clone()
    }

    fn check_param(&self, eps: f64) -> Result<()> {
        if !(self.k > 0.0 && self.lam > 0.0 && self.lam < self.k) {
            return Err(Error::invalid("system.lam", self.lam, format!("0 < lam < K = {}", self.k)));
        }
        if eps.is_finite() && eps > 0.0 {
            Ok(())
        } else {
            Err(Error::invalid("eps", eps, "a finite number > 0 (the enzyme-to-substrate ratio)"))
        }
    }

    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        let (u, v) = (x[0], x[1]);
        dx[0] = -u + (u + self.k - self.lam) * v;
        dx[1] = (u - (u + self.k) * v) / eps;
    }

    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        let (u, v) = (x[0], x[1]);
        DMatrix::from_row_slice(2, 2, &[-1.0 + v, u + self.k - self.lam, (1.0 - v) / eps, -(u + self.k) / eps])
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(0.3..=1.5), rng.random_range(0.0..=0.2)]
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(2)
    }

    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let &[a, b] = u else { return None };
        Some(vec![0.3 + 1.2 * a, 0.2 * b])
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        vec![vec![1.0, 0.0], vec![0.6, 0.05], vec![1.4, 0.1]]
    }

    fn slow_manifold(&self, u: f64, _eps: f64) -> Option<Vec<f64>> {
        (u > 0.0).then(|| vec![u, self.qssa(u)])
    }
}

crate::register!(
    system,
    MichaelisMenten,
    "Michaelis–Menten kinetics, singular-perturbation form: u' = -u + (u+K-lam)v, v' = (u - (u+K)v)/eps"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Published reference: on the QSSA manifold the substrate follows the Michaelis–Menten law
    /// `u' = -lam·u/(u + K)` exactly, and after the initial layer the solution from `(1, 0)` follows its
    /// outer solution `u + K ln u = 1 - lam·t` (Murray, eq. 6.44) to O(eps).
    #[test]
    fn qssa_and_outer_solution_match_the_michaelis_menten_law() {
        let s = MichaelisMenten::default();
        let mut f = [0.0; 2];
        for u in [0.2, 0.7, 1.3] {
            s.rhs(&[u, s.qssa(u)], 0.05, &mut f);
            assert!((f[0] + s.lam * u / (u + s.k)).abs() < 1e-14);
        }
        let eps = 1e-3;
        let times = [0.0, 0.5, 1.0, 2.0];
        let y = crate::ode::solve_at(&s, eps, &[1.0, 0.0], &times, 1e-10, 1e-12, false).unwrap();
        for (i, &t) in times.iter().enumerate().skip(1) {
            let u = y[2 * i];
            let outer = u + s.k * u.ln() - (1.0 - s.lam * t);
            assert!(outer.abs() < 5.0 * eps, "t={t} u={u} residual {outer}");
        }
    }

    #[test]
    fn fast_eigenvalue_is_minus_u_plus_k_over_eps() {
        let s = MichaelisMenten::default();
        for &eps in &s.train_eps {
            let u = 0.8;
            let ev = s.reference_eigenvalues(&[u, s.qssa(u)], eps);
            assert!((ev[0].re * eps + (u + s.k)).abs() < 2.0 * eps, "eps={eps} {ev:?}");
        }
    }

    #[test]
    fn bad_rate_constants_are_rejected() {
        let s = MichaelisMenten { lam: 2.0, ..Default::default() };
        assert!(s.check_param(0.1).unwrap_err().to_string().contains("system.lam"));
    }
}
