//! The paper's metrics.
//!
//! - Rollout error (eq. 17): `E_roll = sqrt( 1/(N+1) Σ_j ‖x_θ(t_j) - x*(t_j)‖² )` per trajectory.
//! - Eigenvalue errors (eq. 18, a mean *absolute* error, not the "L2" of section 5.4):
//!   `E_λ = 1/(N+1) Σ_j |λ(t_j) - λ*(t_j)|`, eigenvalues sorted by decreasing modulus, fast = first,
//!   slow = last; `|·|` is the complex modulus. We also report the relative error `|λ/λ* - 1|`, which is
//!   what matters across stiffness values (an absolute grid mean is dominated by the stiffest eps).
//! - Oscillation period (ours, for relaxation oscillators where a pointwise rollout error says little):
//!   [`period_rel`] `= |T_θ/T* − 1|`, periods from the spacing of upward mid-range crossings.
//! - Combined score (eq. 32): `S = (E_roll/med(E_roll) + E_fast/med(E_fast) + E_slow/med(E_slow)) / 3`,
//!   medians over the runs being compared (implemented as written; it does not reproduce the printed
//!   Table 1 values, see PAPER-NOTES).
//!
//! One submodule per topic, every item re-exported here (`crate::eval::metrics::X`):
//!
//! - [`rollout`]: eq. 17 ([`rollout_l2`]), the per-species [`rollout_rel`] and the oscillation period
//!   ([`upward_crossings`], [`oscillation_period`], [`period_rel`]);
//! - [`eigen`]: eq. 18 summed over points ([`EigenErrors`]), the per-eps record ([`EpsMetrics`]) and
//!   the run's headline numbers ([`Summary`]), relative errors with zero eigenvalues excluded
//!   ([`nonzero_count`], [`point_rel_errors`]) and the fast-subspace angle ([`subspace_angle`]);
//! - [`windows`]: eigenvalue errors per decade of time ([`time_windows`]) and pooled over eps
//!   ([`pool_windows`]);
//! - [`ensemble`]: what an ensemble's spread says, and whether it holds ([`ensemble_metrics`]);
//! - [`curve`]: the seed-averaged error-vs-eps curve ([`eps_curve`], Fig. 10) and eq. 32 ([`s_comb`]).

pub mod curve;
pub mod eigen;
pub mod ensemble;
pub mod pointwise;
pub mod rollout;
pub mod windows;

pub use curve::{CurvePoint, eps_curve, s_comb};
pub use eigen::{
    EigenErrors, EpsMetrics, Pointwise, Quantiles, Summary, WITHIN, WorstPoint, ZERO_TOL, nonzero_count,
    point_rel_errors, subspace_angle,
};
pub use ensemble::{EnsembleMetrics, ensemble_metrics};
pub use rollout::{oscillation_period, period_rel, rollout_l2, rollout_rel, upward_crossings};
pub use windows::{PooledWindow, WindowMetrics, decades, pool_windows, time_windows};
