//! Robertson's autocatalytic reaction (Hairer & Wanner's ROBER, the Bari test set's "Robertson"):
//!
//! ```text
//! y1' = -k1 y1 + k3 y2 y3
//! y2' =  k1 y1 - k3 y2 y3 - k2 y2²        k1 = 0.04, k2 = 3e7 / eps, k3 = 1e4 / eps
//! y3' =  k2 y2²
//! ```
//!
//! `eps` scales the two fast rate constants: `eps = 1` is the classic problem, smaller `eps` is
//! stiffer. Mass is conserved (`y1 + y2 + y3` is constant, the invariant `w = (1, 1, 1)`), so the
//! Jacobian always has an exact zero eigenvalue with left eigenvector `w`; the other two are the fast
//! relaxation of the intermediate `y2` (|λ| from ~0.04 at `t = 0` up to ~1e4/eps) and the slow
//! conversion `y1 → y3` (down to ~1e-5 at `t = 1e5`). The intermediate `y2` lives near 1e-5…1e-8: it
//! spans decades, like the time scales, which is why this system needs log-spaced times
//! (`spacing = "log"`), BDF references and rollouts, the `asinh` state input and the projection onto
//! the invariant (`configs/robertson*.toml`).
//!
//! Initial states for training ([`RobertsonInitial`]): mass 1, `y2 = 0` (off the slow manifold, which
//! is reached after ~1e-3), and by default `y3` log-uniform in `[1e-6, 0.8]`, `y1 = 1 - y3`. `y3` is
//! sampled on a log scale because the fast rate `k3·y3 + 2k2·y2` is set by `y3` until `y2` builds up:
//! the classic start `(1, 0, 0)` keeps `y3 ≈ 0` through the first millisecond, a region that
//! `y1 ~ U[0.2, 1]` (`initial = "uniform-y1"`, our first choice) reaches with almost no trajectory;
//! `initial = "mixed"` draws from either with probability ½.
//! Test initial states (fixed): the classic `(1, 0, 0)`, and `(0.7, 0, 0.3)`, `(0.4, 0, 0.6)`.

use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plugins::system::StiffSystem;

/// Robertson's reaction with the fast rate constants scaled by `1/eps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Robertson {
    /// Slow rate constant `k1`.
    pub k1: f64,
    /// Fast rate constant `k2` at `eps = 1`.
    pub k2: f64,
    /// Fast rate constant `k3` at `eps = 1`.
    pub k3: f64,
    /// Training stiffness grid.
    pub train_eps: Vec<f64>,
    /// Unseen stiffness grid.
    pub unseen_eps: Vec<f64>,
    /// Distribution of the training initial states.
    pub initial: RobertsonInitial,
}

/// How [`Robertson`] draws training initial states (all with mass 1 and `y2 = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RobertsonInitial {
    /// `y3 = 10^U[-6, log10 0.8]`, `y1 = 1 - y3`: every decade of `y3` alike, down to the classic start.
    #[default]
    LogY3,
    /// `y1 ~ U[0.2, 1]`, `y3 = 1 - y1`.
    UniformY1,
    /// Each draw from [`LogY3`](Self::LogY3) or [`UniformY1`](Self::UniformY1) with probability ½:
    /// the classic start's `y3 ≈ 0` region and the bulk of the late slow manifold both covered.
    Mixed,
}

impl Default for Robertson {
    fn default() -> Self {
        Self {
            k1: 0.04,
            k2: 3e7,
            k3: 1e4,
            train_eps: vec![0.25, 0.5, 1.0, 2.0, 4.0],
            unseen_eps: vec![0.35, 0.7, 1.4, 2.8],
            initial: RobertsonInitial::LogY3,
        }
    }
}

#[typetag::serde(name = "robertson")]
impl StiffSystem for Robertson {
    fn validate(&self) -> Result<()> {
        Error::positive("system.k1", self.k1)?;
        Error::positive("system.k2", self.k2)?;
        Error::positive("system.k3", self.k3)
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
        let (k2, k3) = (self.k2 / eps, self.k3 / eps);
        dx[0] = -self.k1 * y1 + k3 * y2 * y3;
        dx[2] = k2 * y2 * y2;
        dx[1] = -dx[0] - dx[2];
    }

    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        let (y2, y3) = (x[1], x[2]);
        let (k1, k2, k3) = (self.k1, self.k2 / eps, self.k3 / eps);
        DMatrix::from_row_slice(
            3,
            3,
            &[
                -k1,
                k3 * y3,
                k3 * y2,
                k1,
                -k3 * y3 - 2.0 * k2 * y2,
                -k3 * y2,
                0.0,
                2.0 * k2 * y2,
                0.0,
            ],
        )
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        let log_y3 = |rng: &mut StdRng| {
            let y3 = 10f64.powf(rng.random_range(-6.0..=0.8f64.log10()));
            vec![1.0 - y3, 0.0, y3]
        };
        let uniform_y1 = |rng: &mut StdRng| {
            let y1 = rng.random_range(0.2..=1.0);
            vec![y1, 0.0, 1.0 - y1]
        };
        match self.initial {
            RobertsonInitial::LogY3 => log_y3(rng),
            RobertsonInitial::UniformY1 => uniform_y1(rng),
            RobertsonInitial::Mixed if rng.random_bool(0.5) => log_y3(rng),
            RobertsonInitial::Mixed => uniform_y1(rng),
        }
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(1)
    }

    /// `mixed`: `u` below one half spreads over the log-uniform `y3`, above it over the uniform `y1`.
    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        let &[a] = u else { return None };
        let log_y3 = |a: f64| {
            let y3 = 10f64.powf(-6.0 + a * (0.8f64.log10() + 6.0));
            vec![1.0 - y3, 0.0, y3]
        };
        let uniform_y1 = |a: f64| {
            let y1 = 0.2 + 0.8 * a;
            vec![y1, 0.0, 1.0 - y1]
        };
        Some(match self.initial {
            RobertsonInitial::LogY3 => log_y3(a),
            RobertsonInitial::UniformY1 => uniform_y1(a),
            RobertsonInitial::Mixed if a < 0.5 => log_y3(2.0 * a),
            RobertsonInitial::Mixed => uniform_y1(2.0 * a - 1.0),
        })
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        vec![vec![1.0, 0.0, 0.0], vec![0.7, 0.0, 0.3], vec![0.4, 0.0, 0.6]]
    }

    fn invariants(&self) -> Vec<Vec<f64>> {
        vec![vec![1.0, 1.0, 1.0]]
    }
}

crate::register!(
    system,
    Robertson,
    "Robertson's reaction (ROBER), fast rates k2 = 3e7/eps, k3 = 1e4/eps; mass-conserving, zero eigenvalue"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::{Method, solve_at_with};
    use crate::plugins::system::fd_jacobian;

    #[test]
    fn rhs_and_jacobian_match_finite_differences_and_conserve_mass() {
        let s = Robertson::default();
        for &eps in &[0.25, 1.0, 4.0] {
            for x in [[1.0, 0.0, 0.0], [0.7, 3e-5, 0.3], [0.02, 1e-7, 0.98]] {
                let exact = s.jacobian(&x, eps);
                let fd = fd_jacobian(|x, dx| s.rhs(x, eps, dx), &x);
                let err = (&exact - &fd).abs().max() / exact.abs().max();
                assert!(err < 1e-7, "eps={eps} x={x:?} rel err {err}");
                let mut f = [0.0; 3];
                s.rhs(&x, eps, &mut f);
                assert!((f[0] + f[1] + f[2]).abs() < 1e-15 * f.iter().map(|v| v.abs()).sum::<f64>().max(1.0));
                // Column sums of J vanish: (1, 1, 1) is a left null vector.
                for c in 0..3 {
                    assert!(exact.column(c).sum().abs() < 1e-9 * exact.abs().max());
                }
            }
        }
    }

    /// Published references for the classic problem from `(1, 0, 0)`: Hairer & Wanner's ROBER solution
    /// at t = 40 (*Solving ODEs II*'s test set, 16 digits), the Bari test set's solution at t = 1e11
    /// (Mazzia & Magherini, *Test Set for IVP Solvers*, problem ROBER), and the values at t = 0.4 and
    /// 4e4 printed by SUNDIALS' `cvRoberts_dns` example (5 digits from a loose-tolerance run, hence the
    /// looser check). Our BDF reference solver reproduces them.
    #[test]
    // The published digits, verbatim.
    #[allow(clippy::excessive_precision)]
    fn classic_problem_matches_published_reference_values() {
        let s = Robertson::default();
        let times = [0.0, 0.4, 40.0, 4e4, 1e11];
        let y = solve_at_with(&s, 1.0, &[1.0, 0.0, 0.0], &times, 1e-10, 1e-20, false, Method::Bdf).unwrap();
        let at = |i: usize| &y[i * 3..i * 3 + 3];
        let published: [(usize, [f64; 3], f64); 4] = [
            (1, [9.8517e-01, 3.3864e-05, 1.4794e-02], 5e-4),
            (2, [0.7158270687193433, 0.9185534764529899e-5, 0.2841637457458620], 1e-8),
            (3, [3.8992e-02, 1.6221e-07, 9.6101e-01], 5e-4),
            (4, [0.2083340149701255e-07, 0.8333360770334713e-13, 0.9999999791665050], 1e-5),
        ];
        for (i, want, tol) in published {
            for (k, w) in want.iter().enumerate() {
                let rel = (at(i)[k] - w).abs() / w.abs();
                assert!(rel < tol, "t = {}: y{} = {:e}, published {w:e} (rel {rel:e})", times[i], k + 1, at(i)[k]);
            }
        }
    }

    #[test]
    fn initial_state_distributions_conserve_mass_and_log_y3_reaches_the_classic_start() {
        use rand::SeedableRng;
        for initial in [RobertsonInitial::LogY3, RobertsonInitial::UniformY1, RobertsonInitial::Mixed] {
            let s = Robertson { initial, ..Default::default() };
            let mut rng = StdRng::seed_from_u64(3);
            let x: Vec<Vec<f64>> = (0..400).map(|_| s.sample_initial(&mut rng)).collect();
            assert!(x.iter().all(|x| x[1] == 0.0 && (x[0] + x[2] - 1.0).abs() < 1e-15 && x[2] >= 0.0 && x[0] >= 0.2));
            let near_classic = x.iter().filter(|x| x[2] < 1e-4).count();
            match initial {
                // 2 of the 5.9 decades of y3 lie below 1e-4: about a third of the draws.
                RobertsonInitial::LogY3 => assert!((100..=170).contains(&near_classic), "{near_classic}"),
                RobertsonInitial::UniformY1 => assert_eq!(near_classic, 0),
                // Half the draws are log-y3, a third of those below 1e-4.
                RobertsonInitial::Mixed => assert!((40..=95).contains(&near_classic), "{near_classic}"),
            }
        }
        let cfg: Robertson = toml::from_str("initial = \"uniform-y1\"").unwrap();
        assert_eq!(cfg.initial, RobertsonInitial::UniformY1);
        let err = toml::from_str::<Robertson>("initial = \"uniform\"").unwrap_err().to_string();
        assert!(err.contains("log-y3") && err.contains("uniform-y1") && err.contains("mixed"), "{err}");
    }

    #[test]
    fn spectrum_has_an_exact_zero_and_fast_rates_scale_as_one_over_eps() {
        let s = Robertson::default();
        let x = [0.7158, 9.1838e-6, 0.2842];
        let ev1 = s.reference_eigenvalues(&x, 1.0);
        assert!(ev1[2].norm() < 1e-12 * ev1[0].norm(), "{ev1:?}");
        assert!(ev1[0].re < -1e3 && ev1[1].re < 0.0 && ev1[1].re > -1.0, "{ev1:?}");
        // The fast eigenvalue ≈ -(k3 y3 + 2 k2 y2)/eps at fixed state.
        let ev4 = s.reference_eigenvalues(&x, 0.25);
        assert!((ev4[0].re / ev1[0].re - 4.0).abs() < 0.01, "{ev1:?} {ev4:?}");
    }
}
