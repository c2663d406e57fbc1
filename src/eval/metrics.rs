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

use crate::stats::mean_std;
use nalgebra::Complex;
use serde::{Deserialize, Serialize};

/// Relative rollout error of one trajectory: `max_{i,j} |x_θ,i(t_j) - x*_i(t_j)| / max_j |x*_i(t_j)|`,
/// each species' error relative to its own range along the reference (`b`), so that a species that
/// stays near 1e-5 (Robertson's `y2`) counts as much as one of order 1. `a`, `b`: `(N+1) × d`.
pub fn rollout_rel(a: &[f64], b: &[f64], d: usize) -> f64 {
    (0..d)
        .map(|i| {
            let range = b.iter().skip(i).step_by(d).fold(0.0f64, |m, v| m.max(v.abs()));
            let err = a
                .iter()
                .skip(i)
                .step_by(d)
                .zip(b.iter().skip(i).step_by(d))
                .fold(0.0f64, |m, (x, y)| if (x - y).is_nan() { f64::INFINITY } else { m.max((x - y).abs()) });
            if range > 0.0 { err / range } else { err }
        })
        .fold(0.0, f64::max)
}

/// Times at which component `k` of a trajectory (`(N+1) × d`, at `times`) crosses `level` upwards,
/// linearly interpolated between samples. A crossing counts only after the component has been more than
/// `hysteresis` below `level` since the previous one, so that a trajectory lingering at the level is
/// not counted many times. Stops at the first non-finite sample (a diverged rollout) or the end of
/// `traj`, whichever comes first.
pub fn upward_crossings(traj: &[f64], times: &[f64], d: usize, k: usize, level: f64, hysteresis: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut armed = false;
    for j in 0..times.len().min(traj.len() / d) {
        let v = traj[j * d + k];
        if !v.is_finite() {
            break;
        }
        if v < level - hysteresis {
            armed = true;
        } else if armed && v >= level {
            // Armed means the previous sample was below the level (it disarms at the first sample at or
            // above it), so `u < level <= v` and the interpolation weight lies in (0, 1].
            let u = traj[(j - 1) * d + k];
            out.push(times[j - 1] + (level - u) / (v - u) * (times[j] - times[j - 1]));
            armed = false;
        }
    }
    out
}

/// The period of an oscillation from its upward [crossings](upward_crossings): the mean spacing of the
/// crossings after the first one (`(c_{n-1} - c_1)/(n - 2)`; the first cycle may still be a transient
/// from the initial state), or `None` with fewer than 3 crossings (less than one full cycle after the
/// first).
pub fn oscillation_period(crossings: &[f64]) -> Option<f64> {
    let n = crossings.len();
    (n >= 3).then(|| (crossings[n - 1] - crossings[1]) / (n - 2) as f64)
}

/// Relative period error of a learned rollout `a` against its reference `b` (`(N+1) × d` at `times`),
/// for a system that oscillates: a relaxation oscillation whose learned period is off by a fraction δ
/// drifts by δ·t in phase, and once the drift exceeds a jump's width the pointwise [`rollout_rel`] is
/// O(1) whatever the fit — the period is then the measure of whether the learned oscillator is right.
///
/// For each component `k` that varies along the reference (range above 1e-8 of its magnitude), the
/// level is the midpoint of the reference's range of `x_k`, with a hysteresis of 10 % of the range. The
/// component oscillates when the reference crosses it upwards at least 4 times (two full cycles after
/// the first crossing, which may be a transient); its period `T*_k` is then
/// [`oscillation_period`]. The learned rollout's period `T_k` comes from its own crossings of the same
/// level, and the error is `|T_k/T*_k - 1|` — or infinite when the learned rollout has stopped
/// oscillating: fewer than 3 crossings, or none in the last `1.5·max(T_k, T*_k)` of the horizon (it
/// decayed to a fixed point, or diverged: a rollout that turns non-finite ends its crossings there).
/// One cycle less within the horizon (a learned period slightly longer) still leaves 3 crossings, so
/// the error does not jump there. Returns the largest error over the oscillating components, or `None`
/// when no component oscillates (a relaxing system, or a horizon too short for the reference's cycles).
///
/// # Panics
/// If `a`, `b` and `times` do not hold the same `(N+1) × d` samples.
pub fn period_rel(a: &[f64], b: &[f64], times: &[f64], d: usize) -> Option<f64> {
    assert!(
        a.len() == b.len() && b.len() == times.len() * d,
        "period_rel: {} / {} samples at {} times × {d}",
        a.len(),
        b.len(),
        times.len()
    );
    let t_end = *times.last()?;
    let mut worst: Option<f64> = None;
    for k in 0..d {
        let (lo, hi) =
            b.iter().skip(k).step_by(d).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        if hi - lo <= 1e-8 * lo.abs().max(hi.abs()) {
            continue;
        }
        let (level, hyst) = (0.5 * (lo + hi), 0.1 * (hi - lo));
        let reference = upward_crossings(b, times, d, k, level, hyst);
        if reference.len() < 4 {
            continue;
        }
        let t_ref = oscillation_period(&reference).expect("4 crossings");
        let learned = upward_crossings(a, times, d, k, level, hyst);
        let err = match (oscillation_period(&learned), learned.last()) {
            (Some(t), Some(&last)) if t_end - last <= 1.5 * t.max(t_ref) => (t / t_ref - 1.0).abs(),
            _ => f64::INFINITY,
        };
        worst = Some(worst.map_or(err, |w| w.max(err)));
    }
    worst
}

/// The tolerance of [`EpsMetrics::all_within`]: every nonzero eigenvalue within 5 % of the true one.
pub const WITHIN: f64 = 0.05;

/// Reference eigenvalues below this fraction of the spectral radius count as exact zeros.
pub const ZERO_TOL: f64 = 1e-12;

/// How many of the `reference` eigenvalues (sorted by decreasing modulus) are nonzero: all but the
/// `zeros` declared ones and those below [`ZERO_TOL`] × the spectral radius (at least one).
pub fn nonzero_count(reference: &[Complex<f64>], zeros: usize) -> usize {
    let d = reference.len();
    let radius = reference[0].norm();
    let small = reference.iter().filter(|l| l.norm() <= ZERO_TOL * radius).count();
    d - zeros.max(small).min(d - 1)
}

/// Relative errors at one point, eigenvalues matched by modulus order with zeros excluded (see
/// [`EigenErrors::add`]): `(fast, slow, worst over all nonzero)`.
pub fn point_rel_errors(learned: &[Complex<f64>], reference: &[Complex<f64>], zeros: usize) -> (f64, f64, f64) {
    rel_errors(learned, reference, nonzero_count(reference, zeros))
}

/// [`point_rel_errors`] given the number of nonzero reference eigenvalues.
fn rel_errors(learned: &[Complex<f64>], reference: &[Complex<f64>], nonzero: usize) -> (f64, f64, f64) {
    let rel = |k: usize| (learned[k] - reference[k]).norm() / reference[k].norm();
    let (s, ss) = (learned[nonzero - 1], reference[nonzero - 1]);
    (rel(0), (s - ss).norm() / ss.norm().max(f64::MIN_POSITIVE), (0..nonzero).map(rel).fold(0.0, f64::max))
}

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

/// Eq. 17 for one trajectory: `a`, `b` are `(N+1) × d` row-major.
pub fn rollout_l2(a: &[f64], b: &[f64], d: usize) -> f64 {
    let n = a.len() / d;
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (s / n as f64).sqrt()
}

/// Running sums of eq. 18 over evaluation points.
#[derive(Debug, Clone, Default)]
pub struct EigenErrors {
    n: usize,
    fast_abs: f64,
    slow_abs: f64,
    fast_rel: f64,
    slow_rel: f64,
    fast_rel_max: f64,
    complex: usize,
    angle: f64,
    angles: usize,
    all_rel: f64,
    all_rel_max: f64,
    all_within: usize,
    zero_rel: f64,
    zero_points: usize,
}

/// The largest principal angle (radians) between the subspaces spanned by `a` and by `b` (vectors of
/// equal length): `acos` of the smallest singular value of `Qaᵀ Qb` for orthonormal bases `Qa`, `Qb`.
/// For subspaces of different dimension it measures how far the smaller one lies from the larger.
pub fn subspace_angle(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    fn orthonormal(v: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut q: Vec<Vec<f64>> = Vec::new();
        for x in v {
            let mut y = x.clone();
            for b in &q {
                let dot: f64 = y.iter().zip(b).map(|(p, r)| p * r).sum();
                y.iter_mut().zip(b).for_each(|(p, r)| *p -= dot * r);
            }
            let n = y.iter().map(|p| p * p).sum::<f64>().sqrt();
            if n > 1e-12 {
                q.push(y.iter().map(|p| p / n).collect());
            }
        }
        q
    }
    let (qa, qb) = (orthonormal(a), orthonormal(b));
    if qa.is_empty() || qb.is_empty() {
        return f64::NAN;
    }
    let m = nalgebra::DMatrix::<f64>::from_fn(qa.len(), qb.len(), |i, j| {
        qa[i].iter().zip(&qb[j]).map(|(p, r)| p * r).sum::<f64>()
    });
    let smallest = m.singular_values().iter().copied().fold(f64::INFINITY, f64::min);
    smallest.clamp(0.0, 1.0).acos()
}

impl EigenErrors {
    /// Adds one point: learned and reference eigenvalues, both sorted by decreasing modulus, matched by
    /// that order. `zeros` is the number of exact zero eigenvalues the system has everywhere (its linear
    /// invariants, [`StiffSystem::invariants`](crate::plugins::system::StiffSystem::invariants)); reference
    /// eigenvalues below [`ZERO_TOL`] × the spectral radius count as zeros too. Zeros take the last
    /// (smallest) slots: *slow* is the smallest nonzero eigenvalue, relative errors are taken over the
    /// nonzero ones only, and a learned eigenvalue in a zero slot is measured by `|λ| / |λ*_fast|`.
    pub fn add(&mut self, learned: &[Complex<f64>], reference: &[Complex<f64>], zeros: usize) {
        let d = learned.len();
        let radius = reference[0].norm();
        let nonzero = nonzero_count(reference, zeros);
        let (fr, sr, all) = rel_errors(learned, reference, nonzero);
        self.n += 1;
        self.fast_abs += (learned[0] - reference[0]).norm();
        self.slow_abs += (learned[nonzero - 1] - reference[nonzero - 1]).norm();
        self.fast_rel += fr;
        self.fast_rel_max = self.fast_rel_max.max(fr);
        self.slow_rel += sr;
        self.all_rel += all;
        self.all_rel_max = self.all_rel_max.max(all);
        if all <= WITHIN {
            self.all_within += 1;
        }
        if nonzero < d {
            self.zero_rel += learned[nonzero..].iter().map(|l| l.norm()).fold(0.0, f64::max) / radius;
            self.zero_points += 1;
        }
        if learned.iter().any(|l| l.im != 0.0) {
            self.complex += 1;
        }
    }
    /// Adds the angle (radians) between the learned and the reference fast eigenvector subspaces at a
    /// point (see [`subspace_angle`]).
    pub fn add_angle(&mut self, angle: f64) {
        if angle.is_finite() {
            self.angle += angle;
            self.angles += 1;
        }
    }
    /// Number of points added.
    pub fn len(&self) -> usize {
        self.n
    }
    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    fn mean(&self, v: f64) -> f64 {
        v / self.n.max(1) as f64
    }
}

/// Metrics at one stiffness value, averaged over the test initial states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpsMetrics {
    /// Stiffness value.
    #[serde(with = "crate::io::float")]
    pub eps: f64,
    /// Mean over test trajectories of eq. 17.
    #[serde(with = "crate::io::float")]
    pub rollout_l2: f64,
    /// Eq. 18, fast eigenvalue.
    #[serde(with = "crate::io::float")]
    pub fast_abs: f64,
    /// Eq. 18, slow eigenvalue.
    #[serde(with = "crate::io::float")]
    pub slow_abs: f64,
    /// Mean `|λ_fast/λ*_fast - 1|`.
    #[serde(with = "crate::io::float")]
    pub fast_rel: f64,
    /// Max `|λ_fast/λ*_fast - 1|` over the evaluation points.
    #[serde(with = "crate::io::float")]
    pub fast_rel_max: f64,
    /// Mean `|λ_slow/λ*_slow - 1|`.
    #[serde(with = "crate::io::float")]
    pub slow_rel: f64,
    /// Fraction of points whose learned Jacobian has a complex pair.
    #[serde(with = "crate::io::float")]
    pub complex_fraction: f64,
    /// Number of evaluation points.
    pub points: usize,
    /// Fast-subspace fidelity: mean angle (degrees) between the learned and the true fast eigenvector
    /// subspaces (dimension 1: the eigenvector of the fastest eigenvalue, or the real plane of a fastest
    /// complex pair). NaN in results written before it existed.
    #[serde(default = "nan", with = "crate::io::float")]
    pub fast_angle_deg: f64,
    /// Mean over points of the worst relative error over *all* nonzero eigenvalues,
    /// `max_k |λ_k/λ*_k - 1|` (n-D systems: every time scale, not only the fastest and slowest).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel: f64,
    /// Its maximum over the evaluation points.
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel_max: f64,
    /// Fraction of evaluation points where every nonzero eigenvalue is within [`WITHIN`] (5 %) of the
    /// true one: robust to a few outlying points where a mean of relative errors is not (a reference
    /// eigenvalue near zero makes one point's relative error arbitrarily large).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_within: f64,
    /// Mean over points with exact zero eigenvalues of the largest learned `|λ|` in a zero slot, relative
    /// to `|λ*_fast|` (how well a conservation law is learned); 0 when no point has a zero eigenvalue
    /// (NaN in results written before it existed).
    #[serde(default = "nan", with = "crate::io::float")]
    pub zero_rel: f64,
    /// Mean over test trajectories of [`rollout_rel`] (per-species relative rollout error).
    #[serde(default = "nan", with = "crate::io::float")]
    pub rollout_rel: f64,
    /// Mean over the test trajectories whose reference oscillates of [`period_rel`] (relative error of
    /// the learned oscillation period; infinite when a learned rollout stops oscillating); `None` when
    /// no reference trajectory oscillates over the evaluation horizon (and in results written before it
    /// existed).
    #[serde(default, with = "crate::io::float_opt")]
    pub period_rel: Option<f64>,
}

fn nan() -> f64 {
    f64::NAN
}

/// The mean of `v`, `None` when it is empty (a metric that applies to none of the runs or trajectories).
fn mean_of(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl EpsMetrics {
    /// Builds the per-eps record from the rollout errors of each test trajectory (eq. 17 and
    /// [`rollout_rel`]), the [`period_rel`] of those whose reference oscillates, and the eigen sums.
    pub fn new(eps: f64, rollouts: &[f64], rollouts_rel: &[f64], periods: &[f64], e: &EigenErrors) -> Self {
        Self {
            period_rel: mean_of(periods),
            all_rel: e.mean(e.all_rel),
            all_rel_max: e.all_rel_max,
            all_within: e.all_within as f64 / e.n.max(1) as f64,
            zero_rel: if e.zero_points > 0 { e.zero_rel / e.zero_points as f64 } else { 0.0 },
            rollout_rel: rollouts_rel.iter().sum::<f64>() / rollouts_rel.len().max(1) as f64,
            eps,
            rollout_l2: rollouts.iter().sum::<f64>() / rollouts.len().max(1) as f64,
            fast_abs: e.mean(e.fast_abs),
            slow_abs: e.mean(e.slow_abs),
            fast_rel: e.mean(e.fast_rel),
            fast_rel_max: e.fast_rel_max,
            slow_rel: e.mean(e.slow_rel),
            complex_fraction: e.complex as f64 / e.n.max(1) as f64,
            points: e.n,
            fast_angle_deg: if e.angles > 0 { (e.angle / e.angles as f64).to_degrees() } else { f64::NAN },
        }
    }
}

/// The headline numbers of a run: at a reference stiffness (Table 1) and averaged over a grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rollout L2 (eq. 17).
    #[serde(with = "crate::io::float")]
    pub rollout_l2: f64,
    /// Fast eigenvalue error (eq. 18).
    #[serde(with = "crate::io::float")]
    pub fast_abs: f64,
    /// Slow eigenvalue error (eq. 18).
    #[serde(with = "crate::io::float")]
    pub slow_abs: f64,
    /// Fast eigenvalue relative error.
    #[serde(with = "crate::io::float")]
    pub fast_rel: f64,
    /// Worst per-eps mean relative fast error.
    #[serde(with = "crate::io::float")]
    pub fast_rel_worst: f64,
    /// Slow eigenvalue relative error.
    #[serde(with = "crate::io::float")]
    pub slow_rel: f64,
    /// Worst relative error over all nonzero eigenvalues (see [`EpsMetrics::all_rel`]).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel: f64,
    /// Per-species relative rollout error (see [`rollout_rel`]).
    #[serde(default = "nan", with = "crate::io::float")]
    pub rollout_rel: f64,
    /// Fraction of points with every nonzero eigenvalue within 5 % (see [`EpsMetrics::all_within`]).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_within: f64,
    /// Mean of [`EpsMetrics::period_rel`] over the eps where the reference oscillates (infinite when a
    /// learned rollout stops oscillating at one of them); `None` when it oscillates at none (and in
    /// results written before it existed).
    #[serde(default, with = "crate::io::float_opt")]
    pub period_rel: Option<f64>,
}

impl Summary {
    /// Mean of per-eps metrics (each eps weighs the same).
    pub fn mean(per_eps: &[EpsMetrics]) -> Self {
        let n = per_eps.len().max(1) as f64;
        let m = |f: fn(&EpsMetrics) -> f64| per_eps.iter().map(f).sum::<f64>() / n;
        Self {
            rollout_l2: m(|e| e.rollout_l2),
            fast_abs: m(|e| e.fast_abs),
            slow_abs: m(|e| e.slow_abs),
            fast_rel: m(|e| e.fast_rel),
            fast_rel_worst: per_eps.iter().map(|e| e.fast_rel).fold(0.0, f64::max),
            slow_rel: m(|e| e.slow_rel),
            all_rel: m(|e| e.all_rel),
            rollout_rel: m(|e| e.rollout_rel),
            all_within: m(|e| e.all_within),
            period_rel: mean_of(&per_eps.iter().filter_map(|e| e.period_rel).collect::<Vec<_>>()),
        }
    }
}

/// Eq. 32 for each run, given `(E_roll, E_fast, E_slow)` of every run compared.
pub fn s_comb(runs: &[(f64, f64, f64)]) -> Vec<f64> {
    let med = |f: fn(&(f64, f64, f64)) -> f64| crate::stats::median(&runs.iter().map(f).collect::<Vec<_>>());
    let (mr, mf, ms) = (med(|r| r.0), med(|r| r.1), med(|r| r.2));
    runs.iter().map(|r| (r.0 / mr + r.1 / mf + r.2 / ms) / 3.0).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn subspace_angles() {
        let deg = |a: f64| a.to_degrees();
        assert!((deg(subspace_angle(&[vec![1.0, 0.0]], &[vec![1.0, 1.0]])) - 45.0).abs() < 1e-9);
        assert!(deg(subspace_angle(&[vec![0.0, 2.0]], &[vec![0.0, -1.0]])).abs() < 1e-6);
        let a = [vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let b = [vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 1.0]];
        assert!((deg(subspace_angle(&a, &b)) - 45.0).abs() < 1e-9);
    }

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

    #[test]
    fn rollout_l2_is_rms_of_pointwise_norms() {
        let a = [0.0, 0.0, 1.0, 1.0];
        let b = [0.0, 0.0, 0.0, 0.0];
        assert!((rollout_l2(&a, &b, 2) - (2.0f64 / 2.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn s_comb_of_identical_runs_is_one() {
        let s = s_comb(&[(1.0, 2.0, 3.0), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0)]);
        assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-15));
        let s = s_comb(&[(1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (4.0, 4.0, 4.0)]);
        assert!((s[0] - 0.5).abs() < 1e-15 && (s[2] - 2.0).abs() < 1e-15);
    }

    #[test]
    fn eigen_errors() {
        let mut e = EigenErrors::default();
        let r = [Complex::new(-100.0, 0.0), Complex::new(-1.0, 0.0)];
        e.add(&[Complex::new(-110.0, 0.0), Complex::new(-1.01, 0.0)], &r, 0);
        let m = EpsMetrics::new(0.01, &[1e-3], &[0.5], &[], &e);
        assert!((m.fast_abs - 10.0).abs() < 1e-12 && (m.fast_rel - 0.1).abs() < 1e-12);
        assert!((m.slow_abs - 0.01).abs() < 1e-12 && m.complex_fraction == 0.0);
        assert!((m.all_rel - 0.1).abs() < 1e-12 && (m.all_rel_max - 0.1).abs() < 1e-12 && m.all_within == 0.0);
        assert!(m.zero_rel == 0.0 && m.rollout_rel == 0.5);
    }

    #[test]
    fn zero_eigenvalues_are_not_the_slow_one() {
        // A conservation law (one declared zero) and a second, structural zero at this point.
        let c = |re: f64| Complex::new(re, 0.0);
        let mut e = EigenErrors::default();
        e.add(&[c(-1000.0), c(-0.0105), c(2e-3)], &[c(-1000.0), c(-0.01), c(0.0)], 1);
        let m = EpsMetrics::new(1.0, &[0.0], &[0.0], &[], &e);
        assert!((m.slow_rel - 0.05).abs() < 1e-12, "{m:?}");
        assert!((m.all_rel - 0.05).abs() < 1e-12 && (m.zero_rel - 2e-6).abs() < 1e-15, "{m:?}");
        let mut e = EigenErrors::default();
        e.add(&[c(-0.04), c(1e-9), c(0.0)], &[c(-0.04), c(0.0), c(0.0)], 1);
        let m = EpsMetrics::new(1.0, &[0.0], &[0.0], &[], &e);
        assert!(m.slow_rel == 0.0 && m.fast_rel == 0.0 && (m.zero_rel - 2.5e-8).abs() < 1e-20, "{m:?}");
        assert!(m.all_within == 1.0, "{m:?}");
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

    #[test]
    fn rollout_rel_weighs_each_species_by_its_range() {
        // Two points of a 2-D state: species 2 is tiny, its error dominates once made relative.
        let reference = [1.0, 1e-5, 0.5, 2e-5];
        let learned = [1.01, 1e-5, 0.5, 2.2e-5];
        let r = rollout_rel(&learned, &reference, 2);
        assert!((r - 0.1).abs() < 1e-9, "{r}");
        assert!(rollout_rel(&[f64::NAN, 0.0, 0.0, 0.0], &reference, 2).is_infinite());
    }

    /// `(N+1) × 2` samples of `(sin(2πt/T)·damp(t), e^{-t})` on `[0, 21.99]`, dt = 0.01.
    fn wave_with(period: f64, damp: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let times: Vec<f64> = (0..2200).map(|j| j as f64 * 0.01).collect();
        let x =
            times.iter().flat_map(|&t| [(std::f64::consts::TAU * t / period).sin() * damp(t), (-t).exp()]).collect();
        (times, x)
    }

    fn wave(period: f64) -> (Vec<f64>, Vec<f64>) {
        wave_with(period, |_| 1.0)
    }

    #[test]
    fn upward_crossings_are_interpolated_and_debounced() {
        let (times, x) = wave(4.0);
        // sin crosses 0 upwards at t = 4, 8, 12, 16, 20 (t = 0 starts *at* the level: not armed yet).
        let c = upward_crossings(&x, &times, 2, 0, 0.0, 0.1);
        assert_eq!(c.len(), 5, "{c:?}");
        for (i, t) in c.iter().enumerate() {
            assert!((t - 4.0 * (i + 1) as f64).abs() < 1e-4, "{c:?}");
        }
        let p = oscillation_period(&c).unwrap();
        assert!((p - 4.0).abs() < 1e-4, "{p}");
        // A signal that wiggles around the level by less than the hysteresis counts once.
        let wiggle = [-1.0, 0.01, -0.01, 0.01, -0.01, 0.01, -1.0, 1.0];
        let t: Vec<f64> = (0..wiggle.len()).map(|j| j as f64).collect();
        assert_eq!(upward_crossings(&wiggle, &t, 1, 0, 0.0, 0.1), vec![1.0 / 1.01, 6.5]);
        // A non-finite sample ends the crossings; so does the end of a short trajectory.
        assert_eq!(
            upward_crossings(&[-1.0, 1.0, f64::NAN, -1.0, 1.0], &[0.0, 1.0, 2.0, 3.0, 4.0], 1, 0, 0.0, 0.1),
            vec![0.5]
        );
        assert_eq!(upward_crossings(&[-1.0, 1.0], &[0.0, 1.0, 2.0], 1, 0, 0.0, 0.1), vec![0.5]);
        assert_eq!(oscillation_period(&[1.0, 2.0]), None);
    }

    #[test]
    fn period_rel_compares_the_learned_and_reference_periods() {
        let (times, reference) = wave(4.0);
        let (_, learned) = wave(4.1);
        let r = period_rel(&learned, &reference, &times, 2).unwrap();
        // The learned wave's crossings sit on its own 4.1 grid (interpolation error ~1e-5).
        assert!((r - 0.025).abs() < 1e-4, "{r}");
        assert!(period_rel(&reference, &reference, &times, 2).unwrap() < 1e-12);
        // A learned period long enough for one cycle less in the horizon (3 crossings: 5.5, 11, 16.5)
        // is still measured, not infinite.
        let r = period_rel(&wave(5.5).1, &reference, &times, 2).unwrap();
        assert!((r - 0.375).abs() < 1e-4, "{r}");
        // A learned rollout that stops oscillating: infinite error, whether it never starts or dies out
        // after three cycles (crossings at 4, 8, 12, then none in the last 1.5 periods).
        let flat: Vec<f64> = times.iter().flat_map(|_| [0.5, 0.0]).collect();
        assert!(period_rel(&flat, &reference, &times, 2).unwrap().is_infinite());
        let dying = wave_with(4.0, |t| if t < 13.0 { 1.0 } else { (-5.0 * (t - 13.0)).exp() }).1;
        assert!(period_rel(&dying, &reference, &times, 2).unwrap().is_infinite());
        // No period: a relaxing reference, and one that only varies by round-off.
        let relaxing: Vec<f64> = reference.iter().skip(1).step_by(2).flat_map(|&v| [v, v]).collect();
        assert_eq!(period_rel(&learned, &relaxing, &times, 2), None);
        let still: Vec<f64> = reference.iter().step_by(2).map(|v| 1.0 + 1e-12 * v).collect();
        assert_eq!(period_rel(&still, &still, &times, 1), None);
        // A metric record averages the oscillating trajectories and has none without any.
        let e = EigenErrors::default();
        assert_eq!(EpsMetrics::new(1.0, &[0.0; 2], &[0.0; 2], &[0.01, 0.03], &e).period_rel, Some(0.02));
        assert_eq!(EpsMetrics::new(1.0, &[0.0], &[0.0], &[], &e).period_rel, None);
        // The grid mean averages the eps that have one (here 0.02 and 0.04), and has none without any.
        let per_eps = [
            EpsMetrics::new(1.0, &[0.0], &[0.0], &[0.01, 0.03], &e),
            EpsMetrics::new(2.0, &[0.0], &[0.0], &[], &e),
            EpsMetrics::new(3.0, &[0.0], &[0.0], &[0.04], &e),
        ];
        assert!((Summary::mean(&per_eps).period_rel.unwrap() - 0.03).abs() < 1e-15);
        assert_eq!(Summary::mean(&per_eps[1..2]).period_rel, None);
    }

    #[test]
    #[should_panic(expected = "period_rel")]
    fn period_rel_rejects_trajectories_of_different_lengths() {
        let (times, reference) = wave(4.0);
        period_rel(&reference[..10], &reference, &times, 2);
    }
}

/// One point of an error-vs-stiffness curve (Fig. 10): mean ± sample standard deviation over seeds
/// of the per-eps metrics at one stiffness value.
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
    #[serde(default = "nan", with = "crate::io::float")]
    pub fast_angle_deg: f64,
    /// Its standard deviation.
    #[serde(default = "nan", with = "crate::io::float")]
    pub fast_angle_deg_std: f64,
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
            let ms = |f: fn(&EpsMetrics) -> f64| mean_std(&at.iter().map(|m| f(m)).collect::<Vec<_>>());
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
            }
        })
        .collect()
}
