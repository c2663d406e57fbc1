//! Eigenvalue errors per window of time (one decade for log-spaced evaluations): per eps
//! ([`time_windows`]) and pooled over eps ([`pool_windows`]).

use nalgebra::Complex;
use serde::{Deserialize, Serialize};

use super::eigen::{WITHIN, point_rel_errors};

/// Eigenvalue errors over one window of time (one decade for log-spaced evaluations), at one eps:
/// where along the trajectories the learned spectrum is right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    /// Stiffness value.
    pub eps: f64,
    /// Window start (inclusive).
    pub t_from: f64,
    /// Window end (exclusive).
    pub t_to: f64,
    /// Evaluation points in the window (all test trajectories).
    pub points: usize,
    /// Fraction of points with the fast eigenvalue within 5 %.
    pub fast_within: f64,
    /// Fraction of points with the slow (smallest nonzero) eigenvalue within 5 %.
    pub slow_within: f64,
    /// Fraction of points with every nonzero eigenvalue within 5 %.
    pub all_within: f64,
    /// Median relative fast error.
    pub fast_rel_median: f64,
    /// Median relative slow error.
    pub slow_rel_median: f64,
}

/// Cuts evaluation times at powers of ten: the window index of every time and each window's
/// `(t_from, t_to)`. `t = 0` joins the first decade (whose `t_from` is 0) and a final time that is a
/// power of ten closes the last one rather than opening a window of its own.
pub fn decades(times: &[f64]) -> (Vec<usize>, Vec<(f64, f64)>) {
    let decade = |t: f64| if t > 0.0 { t.log10().floor() as i32 } else { i32::MIN };
    let first = times.iter().copied().filter(|t| *t > 0.0).map(decade).min().unwrap_or(0);
    let t_max = times.iter().copied().fold(0.0, f64::max);
    let mut last = decade(t_max).max(first);
    if t_max > 0.0 && last > first && (t_max.log10() - last as f64).abs() < 1e-12 {
        last -= 1;
    }
    let index = times.iter().map(|&t| (decade(t).clamp(first, last) - first) as usize).collect();
    let bounds = (first..=last).map(|k| (if k == first { 0.0 } else { 10f64.powi(k) }, 10f64.powi(k + 1))).collect();
    (index, bounds)
}

/// Per-decade eigenvalue errors: the evaluation times are cut at powers of ten (`t = 0` joins the
/// first decade, a final time that is a power of ten the last one); `learned[p]`, `reference[p]` are the eigenvalues at point `p = trajectory · n_t + i`
/// of trajectories at stiffness `eps[trajectory]`.
pub fn time_windows(
    times: &[f64],
    eps: &[f64],
    learned: &[Vec<Complex<f64>>],
    reference: &[Vec<Complex<f64>>],
    zeros: usize,
) -> Vec<WindowMetrics> {
    let n_t = times.len();
    let (windows, bounds) = decades(times);
    let mut eps_values: Vec<f64> = eps.to_vec();
    eps_values.dedup();
    let mut out = Vec::new();
    for &e in &eps_values {
        for (k, &(t_from, t_to)) in bounds.iter().enumerate() {
            let (mut f, mut sl, mut a) = (Vec::new(), Vec::new(), Vec::new());
            for (tr, _) in eps.iter().enumerate().filter(|(_, x)| **x == e) {
                for i in (0..n_t).filter(|&i| windows[i] == k) {
                    let p = tr * n_t + i;
                    let (fr, sr, ar) = point_rel_errors(&learned[p], &reference[p], zeros);
                    f.push(fr);
                    sl.push(sr);
                    a.push(ar);
                }
            }
            if !f.is_empty() {
                let within = |v: &[f64]| v.iter().filter(|x| **x <= WITHIN).count() as f64 / v.len() as f64;
                out.push(WindowMetrics {
                    eps: e,
                    t_from,
                    t_to,
                    points: f.len(),
                    fast_within: within(&f),
                    slow_within: within(&sl),
                    all_within: within(&a),
                    fast_rel_median: crate::stats::median(&f),
                    slow_rel_median: crate::stats::median(&sl),
                });
            }
        }
    }
    out
}

/// Eigenvalue errors over one window of time, pooled over every eps evaluated: one row of a
/// [`pool_windows`] summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PooledWindow {
    /// Window start (inclusive).
    pub t_from: f64,
    /// Window end (exclusive).
    pub t_to: f64,
    /// Evaluation points in the window, over all eps and test trajectories.
    pub points: usize,
    /// Fraction of points with the fast eigenvalue within 5 %.
    pub fast_within: f64,
    /// Fraction of points with the slow eigenvalue within 5 %.
    pub slow_within: f64,
    /// Fraction of points with every nonzero eigenvalue within 5 %.
    pub all_within: f64,
}

/// Pools [`time_windows`] rows over eps: per window, the point-weighted fractions within 5 %. Windows
/// come out in order of `t_from`, followed by one row over all points (`t_from = 0`, `t_to` = the last
/// window's end).
pub fn pool_windows(rows: &[WindowMetrics]) -> Vec<PooledWindow> {
    let mut keys: Vec<(f64, f64)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.t_from, r.t_to)) {
            keys.push((r.t_from, r.t_to));
        }
    }
    keys.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pool = |t_from: f64, t_to: f64, rows: &[&WindowMetrics]| {
        let points: usize = rows.iter().map(|r| r.points).sum();
        let frac = |f: fn(&WindowMetrics) -> f64| {
            rows.iter().map(|r| f(r) * r.points as f64).sum::<f64>() / points.max(1) as f64
        };
        PooledWindow {
            t_from,
            t_to,
            points,
            fast_within: frac(|r| r.fast_within),
            slow_within: frac(|r| r.slow_within),
            all_within: frac(|r| r.all_within),
        }
    };
    let mut out: Vec<PooledWindow> = keys
        .iter()
        .map(|&(a, b)| pool(a, b, &rows.iter().filter(|r| (r.t_from, r.t_to) == (a, b)).collect::<Vec<_>>()))
        .collect();
    if let Some(last) = keys.last() {
        out.push(pool(0.0, last.1, &rows.iter().collect::<Vec<_>>()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_windows_weight_each_eps_by_its_points_and_end_with_all_points() {
        let w = |eps: f64, t_from: f64, t_to: f64, points: usize, all: f64| WindowMetrics {
            eps,
            t_from,
            t_to,
            points,
            fast_within: 1.0,
            slow_within: all,
            all_within: all,
            fast_rel_median: 0.0,
            slow_rel_median: 0.0,
        };
        // Out of order on purpose: windows come out sorted by t_from.
        let rows = [
            w(1.0, 1.0, 10.0, 10, 0.5),
            w(1.0, 0.0, 1.0, 30, 1.0),
            w(2.0, 1.0, 10.0, 30, 0.0),
            w(2.0, 0.0, 1.0, 10, 0.0),
        ];
        let p = pool_windows(&rows);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].t_from, p[0].t_to, p[0].points), (0.0, 1.0, 40));
        assert!((p[0].all_within - 30.0 / 40.0).abs() < 1e-15);
        assert!((p[1].all_within - 5.0 / 40.0).abs() < 1e-15 && p[1].fast_within == 1.0);
        assert_eq!((p[2].t_from, p[2].t_to, p[2].points), (0.0, 10.0, 80));
        assert!((p[2].all_within - 35.0 / 80.0).abs() < 1e-15);
        assert!(pool_windows(&[]).is_empty());
    }

    #[test]
    fn time_windows_split_log_times_by_decade() {
        let c = |re: f64| Complex::new(re, 0.0);
        let times = [0.0, 1e-3, 5e-3, 0.02, 0.5, 3.0, 10.0];
        let reference: Vec<Vec<Complex<f64>>> = (0..7).map(|_| vec![c(-100.0), c(-1.0)]).collect();
        // Fast eigenvalue 10 % off before t = 0.01, exact after.
        let learned: Vec<Vec<Complex<f64>>> =
            times.iter().map(|&t| vec![c(if t < 0.01 { -110.0 } else { -100.0 }), c(-1.0)]).collect();
        let w = time_windows(&times, &[0.1], &learned, &reference, 0);
        let spans: Vec<(f64, f64, usize)> = w.iter().map(|m| (m.t_from, m.t_to, m.points)).collect();
        assert_eq!(spans, vec![(0.0, 1e-2, 3), (1e-2, 1e-1, 1), (1e-1, 1.0, 1), (1.0, 10.0, 2)]);
        assert!(w[0].fast_within == 0.0 && w[0].slow_within == 1.0 && (w[0].fast_rel_median - 0.1).abs() < 1e-12);
        assert!(w[1..].iter().all(|m| m.all_within == 1.0));
    }
}
