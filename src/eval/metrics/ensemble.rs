//! What an ensemble's members say about the learned spectrum ([`EnsembleMetrics`]: their spread,
//! agreement and coverage), per eps and per decade of time ([`ensemble_metrics`]).

use nalgebra::Complex;
use serde::{Deserialize, Serialize};

use super::eigen::{WITHIN, nonzero_count, rel_errors};
use super::windows::decades;

/// What an ensemble's members say about the learned spectrum over a set of points (one eps over the
/// whole evaluation, or every eps over one decade of time), and whether it holds.
///
/// At every point, with `λ_m,k` member `m`'s `k`-th eigenvalue (by decreasing modulus) and `λ_k` the
/// eigenvalue of the mean Jacobian, the *spread* is `σ_k = sqrt( (1/M) Σ_m |λ_m,k - λ̄_k|² )` with
/// `λ̄_k` the members' mean, and the relative spread `σ_k / |λ̄_k|`: computed from the networks alone,
/// without the true spectrum. The members *agree* at a point when `2 σ_k / |λ̄_k| ≤ 5 %` for every
/// nonzero eigenvalue. The true spectrum then says whether that trust is earned: the share of agreeing
/// points where every eigenvalue of the mean is within 5 % (`agreed_within`, ideally 1), against the
/// same share where they do not agree (`disagreed_within`); and whether the error lies within the
/// `2σ` band (`fast_coverage`, `slow_coverage`; ≈ 0.95 for a calibrated Gaussian spread).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleMetrics {
    /// Stiffness value (NaN: every eps evaluated, pooled).
    pub eps: f64,
    /// Start of the time window (inclusive).
    pub t_from: f64,
    /// End of the time window (inclusive for the whole evaluation, exclusive for a decade).
    pub t_to: f64,
    /// Ensemble members.
    pub members: usize,
    /// Evaluation points.
    pub points: usize,
    /// Fraction of points where the ensemble mean has every nonzero eigenvalue within 5 %.
    pub all_within: f64,
    /// Median over points of the fast eigenvalue's relative spread `σ / |λ̄|`.
    pub fast_spread_median: f64,
    /// Median over points of the slow eigenvalue's relative spread.
    pub slow_spread_median: f64,
    /// Fraction of points where the mean's fast eigenvalue is within `2σ` of the true one.
    pub fast_coverage: f64,
    /// Fraction of points where the mean's slow eigenvalue is within `2σ` of the true one.
    pub slow_coverage: f64,
    /// Fraction of points where the members agree to 5 % on every nonzero eigenvalue.
    pub agreed: f64,
    /// Among agreeing points, the fraction where every nonzero eigenvalue of the mean is within 5 % of
    /// the true one (NaN when no point agrees).
    pub agreed_within: f64,
    /// Among the other points, the same fraction (NaN when every point agrees).
    pub disagreed_within: f64,
}

/// [`EnsembleMetrics`] per eps (whole evaluation) and per decade of time (every eps pooled), for
/// trajectories at stiffness `eps[trajectory]` sampled at `times`: point `p = trajectory · n_t + i`.
/// `members[m][p]`: member `m`'s eigenvalues at point `p` (by decreasing modulus); `mean[p]`: those of
/// the mean Jacobian; `reference[p]`: the true ones; `zeros`: exact zero eigenvalues of the system.
pub fn ensemble_metrics(
    times: &[f64],
    eps: &[f64],
    members: &[Vec<Vec<Complex<f64>>>],
    mean: &[Vec<Complex<f64>>],
    reference: &[Vec<Complex<f64>>],
    zeros: usize,
) -> (Vec<EnsembleMetrics>, Vec<EnsembleMetrics>) {
    let n_t = times.len();
    let m = members.len() as f64;
    let frac =
        |v: &[bool]| if v.is_empty() { f64::NAN } else { v.iter().filter(|b| **b).count() as f64 / v.len() as f64 };
    let stats = |eps: f64, t_from: f64, t_to: f64, points: &mut dyn Iterator<Item = usize>| {
        let (mut fs, mut ss, mut fc, mut sc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut within, mut agreed, mut agreed_ok, mut other_ok) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in points {
            let nonzero = nonzero_count(&reference[p], zeros);
            // Per slot: relative spread, and whether the mean's error lies within 2σ.
            let slot = |k: usize| {
                let avg = members.iter().map(|l| l[p][k]).sum::<Complex<f64>>() / m;
                let sigma = (members.iter().map(|l| (l[p][k] - avg).norm_sqr()).sum::<f64>() / m).sqrt();
                (sigma / avg.norm().max(f64::MIN_POSITIVE), (mean[p][k] - reference[p][k]).norm() <= 2.0 * sigma)
            };
            let slots: Vec<(f64, bool)> = (0..nonzero).map(slot).collect();
            fs.push(slots[0].0);
            fc.push(slots[0].1);
            ss.push(slots[nonzero - 1].0);
            sc.push(slots[nonzero - 1].1);
            let agree = slots.iter().all(|s| 2.0 * s.0 <= WITHIN);
            let ok = rel_errors(&mean[p], &reference[p], nonzero).2 <= WITHIN;
            within.push(ok);
            agreed.push(agree);
            if agree { agreed_ok.push(ok) } else { other_ok.push(ok) }
        }
        EnsembleMetrics {
            eps,
            t_from,
            t_to,
            members: members.len(),
            points: fs.len(),
            all_within: frac(&within),
            fast_spread_median: crate::stats::median(&fs),
            slow_spread_median: crate::stats::median(&ss),
            fast_coverage: frac(&fc),
            slow_coverage: frac(&sc),
            agreed: frac(&agreed),
            agreed_within: frac(&agreed_ok),
            disagreed_within: frac(&other_ok),
        }
    };
    let mut eps_values: Vec<f64> = Vec::new();
    for &e in eps {
        if !eps_values.contains(&e) {
            eps_values.push(e);
        }
    }
    let (t0, t1) = (times.iter().copied().fold(f64::INFINITY, f64::min), times.iter().copied().fold(0.0, f64::max));
    let per_eps = eps_values
        .iter()
        .map(|&e| {
            let trajs: Vec<usize> = (0..eps.len()).filter(|&t| eps[t] == e).collect();
            stats(e, t0, t1, &mut trajs.iter().flat_map(|t| t * n_t..(t + 1) * n_t))
        })
        .collect();
    let (index, bounds) = decades(times);
    let per_window = bounds
        .iter()
        .enumerate()
        .map(|(k, &(a, b))| {
            let sel: Vec<usize> = (0..eps.len() * n_t).filter(|p| index[p % n_t] == k).collect();
            stats(f64::NAN, a, b, &mut sel.into_iter())
        })
        .filter(|w| w.points > 0)
        .collect();
    (per_eps, per_window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensemble_spread_coverage_and_agreement() {
        let c = |re: f64| Complex::new(re, 0.0);
        // One trajectory at eps = 0.5, two times in different decades.
        let times = [0.5, 5.0];
        let reference = vec![vec![c(-100.0), c(-1.0)]; 2];
        // Point 0: members agree (spread 1 % and 2 %), the mean is right. Point 1: they disagree on the
        // slow eigenvalue (spread 0.2 / 1.3) and the mean is 45 % off, outside 2σ = 0.4.
        let members = vec![
            vec![vec![c(-101.0), c(-1.02)], vec![c(-100.0), c(-1.5)]],
            vec![vec![c(-99.0), c(-0.98)], vec![c(-100.0), c(-1.1)]],
        ];
        let mean = vec![vec![c(-100.0), c(-1.0)], vec![c(-100.0), c(-1.45)]];
        let (per_eps, per_window) = ensemble_metrics(&times, &[0.5], &members, &mean, &reference, 0);
        assert_eq!(per_eps.len(), 1);
        let m = &per_eps[0];
        assert_eq!((m.eps, m.t_from, m.t_to, m.members, m.points), (0.5, 0.5, 5.0, 2, 2));
        // Fast spreads 1 % and 0 %, slow 2 % and 0.2/1.3.
        assert!((m.fast_spread_median - 0.005).abs() < 1e-12, "{m:?}");
        assert!((m.slow_spread_median - 0.5 * (0.02 + 0.2 / 1.3)).abs() < 1e-12, "{m:?}");
        // Fast: error 0 ≤ 2σ at both points; slow: 0 ≤ 2·0.02 at point 0, 0.45 > 2·0.2 at point 1.
        assert_eq!((m.fast_coverage, m.slow_coverage), (1.0, 0.5));
        assert_eq!((m.all_within, m.agreed, m.agreed_within, m.disagreed_within), (0.5, 0.5, 1.0, 0.0));
        // Per decade: [0, 1) holds the agreeing point, [1, 10) the other.
        assert_eq!(per_window.len(), 2);
        assert!(per_window[0].eps.is_nan() && (per_window[0].t_from, per_window[0].t_to) == (0.0, 1.0));
        assert_eq!((per_window[0].agreed, per_window[0].agreed_within, per_window[0].all_within), (1.0, 1.0, 1.0));
        assert!(per_window[0].disagreed_within.is_nan());
        assert_eq!((per_window[1].agreed, per_window[1].disagreed_within, per_window[1].all_within), (0.0, 0.0, 0.0));
        // An exact zero of the system is left out of the spread.
        let z = ensemble_metrics(
            &[1.0],
            &[1.0],
            &[vec![vec![c(-5.0), c(1.0)]]],
            &[vec![c(-5.0), c(1.0)]],
            &[vec![c(-5.0), c(0.0)]],
            1,
        )
        .0;
        assert_eq!((z[0].agreed, z[0].agreed_within), (1.0, 1.0));
        assert!(z[0].disagreed_within.is_nan());
    }
}
