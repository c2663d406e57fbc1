//! The Oregonator (Field & Noyes' model of the Belousov–Zhabotinsky reaction) in the form of Hairer &
//! Wanner's stiff test set (problem OREGO):
//!
//! ```text
//! y1' = (y2 - y1 y2 + y1 - q y1²) / eps
//! y2' = eps (-y2 - y1 y2 + y3)                 q = 8.375e-6, w = 0.161
//! y3' = w (y1 - y3)
//! ```
//!
//! The test set writes `s = 77.27` where we write `1/eps`: `eps = 1/77.27` is the classic problem, a
//! relaxation oscillation (period ≈ 303) whose species swing over four to five decades (`y1` from 1 to
//! 1.2e5, `y2` from 0.013 to 1.8e3, `y3` from 1 to 3.1e4 on the classic cycle); the fast eigenvalue,
//! `≈ -y2/eps` on the slow branch `y1 ≈ 1 + 1/y2`, reaches `|λ| ≈ 1.4e5` in the classic problem. Smaller
//! `eps` is stiffer.
//! Reference eigenvalues are those of the exact Jacobian; they can be complex.
//!
//! Initial states for training: `y1 ~ logU[1, 1e4]`, `y2 ~ logU[1, 1e3]`, `y3 ~ logU[1, 1e4]`.
//! Test initial states (fixed): the test set's `(1, 2, 3)`, and `(100, 10, 1000)`, `(1e4, 1, 1e3)`.

use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::system::StiffSystem;

/// The Oregonator with stiffness `eps = 1/s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Oregonator {
    /// `q`.
    pub q: f64,
    /// `w`.
    pub w: f64,
    /// Training stiffness grid.
    pub train_eps: Vec<f64>,
    /// Unseen stiffness grid.
    pub unseen_eps: Vec<f64>,
}

impl Default for Oregonator {
    fn default() -> Self {
        Self {
            q: 8.375e-6,
            w: 0.161,
            train_eps: vec![1.0 / 77.27, 0.02, 0.03, 0.05],
            unseen_eps: vec![0.016, 0.025, 0.04],
        }
    }
}

#[typetag::serde(name = "oregonator")]
impl StiffSystem for Oregonator {
    fn validate(&self) -> Result<()> {
        Error::positive("system.q", self.q)?;
        Error::positive("system.w", self.w)
    }

    fn dim(&self) -> usize {
        3
    }

    fn state_names(&self) -> Vec<String> {
        vec!["y1".into(), "y2".into(), "y3".into()]
    }

    fn train_grid(&self) -> Vec<f64> {
        self.train_eps.clone()
    }

    fn unseen_grid(&self) -> Vec<f64> {
        self.unseen_eps.clone()
    }

    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        let (y1, y2, y3) = (x[0], x[1], x[2]);
        dx[0] = (y2 - y1 * y2 + y1 - self.q * y1 * y1) / eps;
        dx[1] = eps * (-y2 - y1 * y2 + y3);
        dx[2] = self.w * (y1 - y3);
    }

    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        let (y1, y2) = (x[0], x[1]);
        DMatrix::from_row_slice(
            3,
            3,
            &[
                (1.0 - y2 - 2.0 * self.q * y1) / eps,
                (1.0 - y1) / eps,
                0.0,
                -eps * y2,
                -eps * (1.0 + y1),
                eps,
                self.w,
                0.0,
                -self.w,
            ],
        )
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        let mut log_u = |hi: f64| 10f64.powf(rng.random_range(0.0..=hi));
        vec![log_u(4.0), log_u(3.0), log_u(4.0)]
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(3)
    }

    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let &[a, b, c] = u else { return None };
        Some(vec![10f64.powf(4.0 * a), 10f64.powf(3.0 * b), 10f64.powf(4.0 * c)])
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        vec![vec![1.0, 2.0, 3.0], vec![100.0, 10.0, 1000.0], vec![1e4, 1.0, 1e3]]
    }
}

crate::register!(
    system,
    Oregonator,
    "Oregonator (OREGO, Belousov–Zhabotinsky), eps = 1/s: relaxation oscillation over four decades"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::{Method, solve_at_with};

    /// Published reference: the test set's solution at t = 360 from `(1, 2, 3)` (Mazzia & Magherini,
    /// *Test Set for IVP Solvers*, problem OREGO; Hairer & Wanner, *Solving ODEs II*). Our BDF reference
    /// solver reproduces it through a full oscillation with its four-decade swings.
    #[test]
    fn classic_problem_matches_the_published_reference_at_t_360() {
        let s = Oregonator::default();
        let y = solve_at_with(&s, 1.0 / 77.27, &[1.0, 2.0, 3.0], &[0.0, 360.0], 1e-11, 1e-11, false, Method::Bdf)
            .unwrap();
        let want = [0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3];
        for k in 0..3 {
            let rel = (y[3 + k] - want[k]).abs() / want[k];
            assert!(rel < 1e-5, "y{} = {:e}, published {:e} (rel {rel:e})", k + 1, y[3 + k], want[k]);
        }
    }
}
