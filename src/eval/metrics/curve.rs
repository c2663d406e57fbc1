//! Comparing runs: the seed-averaged error-vs-stiffness curve ([`eps_curve`], Fig. 10) and the
//! combined score of eq. 32 ([`s_comb`]).

use serde::{Deserialize, Serialize};

use crate::stats::finite_mean_std;

use super::eigen::EpsMetrics;

/// Eq. 32 for each run, given `(E_roll, E_fast, E_slow)` of every run compared.
pub fn s_comb(runs: &[(f64, f64, f64)]) -> Vec<f64> {
    let med = |f: fn(&(f64, f64, f64)) -> f64| crate::stats::median(&runs.iter().map(f).collect::<Vec<_>>());
    let (mr, mf, ms) = (med(|r| r.0), med(|r| r.1), med(|r| r.2));
    runs.iter().map(|r| (r.0 / mr + r.1 / mf + r.2 / ms) / 3.0).collect()
}

/// One point of an error-vs-stiffness curve (Fig. 10): mean ± sample standard deviation over seeds
/// of the per-eps metrics at one stiffness value, over the runs whose value is finite: a diverged run
/// is counted in [`diverged`](Self::diverged), never averaged as a number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    /// Configuration (or run) label.
    pub config: String,
    /// Stiffness value.
    #[serde(with = "crate::io::float")]
    pub eps: f64,
    /// Whether `eps` is in the system's unseen grid (else a training or user-given value).
    pub unseen: bool,
    /// Number of seeds averaged.
    pub seeds: usize,
    /// Mean relative fast-eigenvalue error `|λ_fast/λ*_fast − 1|`.
    #[serde(with = "crate::io::float")]
    pub fast_rel: f64,
    /// Its standard deviation over seeds.
    #[serde(with = "crate::io::float")]
    pub fast_rel_std: f64,
    /// Mean absolute fast-eigenvalue error (eq. 18).
    #[serde(with = "crate::io::float")]
    pub fast_abs: f64,
    /// Its standard deviation.
    #[serde(with = "crate::io::float")]
    pub fast_abs_std: f64,
    /// Mean absolute slow-eigenvalue error (eq. 18).
    #[serde(with = "crate::io::float")]
    pub slow_abs: f64,
    /// Its standard deviation.
    #[serde(with = "crate::io::float")]
    pub slow_abs_std: f64,
    /// Mean rollout L2 error (eq. 17).
    #[serde(with = "crate::io::float")]
    pub rollout_l2: f64,
    /// Its standard deviation.
    #[serde(with = "crate::io::float")]
    pub rollout_l2_std: f64,
    /// Mean fast-subspace angle (degrees).
    #[serde(default = "super::eigen::nan", with = "crate::io::float")]
    pub fast_angle_deg: f64,
    /// Its standard deviation.
    #[serde(default = "super::eigen::nan", with = "crate::io::float")]
    pub fast_angle_deg_std: f64,
    /// Runs (of `seeds`) whose rollout diverged at this eps (left out of every mean).
    #[serde(default)]
    pub diverged: usize,
}

/// The seed-averaged error curve of one configuration: for every eps evaluated by all `runs`, the
/// mean ± std over runs of each per-eps metric. `unseen` marks the held-out grid.
pub fn eps_curve(config: &str, runs: &[&[EpsMetrics]], unseen: &[f64]) -> Vec<CurvePoint> {
    let Some(first) = runs.first() else { return Vec::new() };
    let mut eps: Vec<f64> =
        first.iter().map(|m| m.eps).filter(|e| runs.iter().all(|r| r.iter().any(|m| m.eps == *e))).collect();
    eps.sort_by(f64::total_cmp);
    eps.dedup();
    eps.iter()
        .map(|&e| {
            let at: Vec<&EpsMetrics> = runs.iter().filter_map(|r| r.iter().find(|m| m.eps == e)).collect();
            let ms = |f: fn(&EpsMetrics) -> f64| {
                let (m, s, _) = finite_mean_std(&at.iter().map(|m| f(m)).collect::<Vec<_>>());
                (m, s)
            };
            let diverged = at.iter().filter(|m| !m.rollout_l2.is_finite()).count();
            let (fast_rel, fast_rel_std) = ms(|m| m.fast_rel);
            let (fast_abs, fast_abs_std) = ms(|m| m.fast_abs);
            let (slow_abs, slow_abs_std) = ms(|m| m.slow_abs);
            let (rollout_l2, rollout_l2_std) = ms(|m| m.rollout_l2);
            let (fast_angle_deg, fast_angle_deg_std) = ms(|m| m.fast_angle_deg);
            CurvePoint {
                config: config.into(),
                eps: e,
                unseen: unseen.contains(&e),
                seeds: at.len(),
                fast_rel,
                fast_rel_std,
                fast_abs,
                fast_abs_std,
                slow_abs,
                slow_abs_std,
                rollout_l2,
                rollout_l2_std,
                fast_angle_deg,
                fast_angle_deg_std,
                diverged,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s_comb_of_identical_runs_is_one() {
        let s = s_comb(&[(1.0, 2.0, 3.0), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0)]);
        assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-15));
        let s = s_comb(&[(1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (4.0, 4.0, 4.0)]);
        assert!((s[0] - 0.5).abs() < 1e-15 && (s[2] - 2.0).abs() < 1e-15);
    }
}
