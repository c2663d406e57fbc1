//! Eigenvalue errors (eq. 18): running sums over evaluation points ([`EigenErrors`]), the per-eps
//! record ([`EpsMetrics`]) and a run's headline numbers ([`Summary`]); pointwise quantiles of the
//! relative errors `|λ_k − λ*_k| / |λ*_k|` (nearest rank, p50/p95/p99/max: [`Quantiles`],
//! [`Pointwise`]) and the point where the worst eigenvalue is worst ([`WorstPoint`]: eps, t, state); relative errors matched by
//! modulus order with zero eigenvalues excluded ([`nonzero_count`], [`point_rel_errors`]) and the
//! fast-subspace angle ([`subspace_angle`]).

use nalgebra::Complex;
use serde::{Deserialize, Serialize};

use super::pointwise::pointwise;
pub use super::pointwise::{Pointwise, Quantiles, WorstPoint};

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
pub(super) fn rel_errors(learned: &[Complex<f64>], reference: &[Complex<f64>], nonzero: usize) -> (f64, f64, f64) {
    let rel = |k: usize| (learned[k] - reference[k]).norm() / reference[k].norm();
    let (s, ss) = (learned[nonzero - 1], reference[nonzero - 1]);
    (rel(0), (s - ss).norm() / ss.norm().max(f64::MIN_POSITIVE), (0..nonzero).map(rel).fold(0.0, f64::max))
}
/// Running sums of eq. 18 over evaluation points.
#[derive(Debug, Clone, Default)]
pub struct EigenErrors {
    n: usize,
    fast_abs: f64,
    slow_abs: f64,
    fast_rel: f64,
    slow_rel: f64,
    complex: usize,
    angle: f64,
    angles: usize,
    all_rel: f64,
    all_within: usize,
    zero_rel: f64,
    zero_points: usize,
    /// The pointwise errors, one per point: fast, slow, worst over all nonzero eigenvalues.
    fast_points: Vec<f64>,
    slow_points: Vec<f64>,
    all_points: Vec<f64>,
    /// The point with the largest worst-over-all error.
    worst: Option<WorstPoint>,
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
        self.add_at(learned, reference, zeros, f64::NAN, f64::NAN, &[]);
    }

    /// [`add`](Self::add) for the point `state` at time `t` and stiffness `eps`, which is recorded when
    /// it is the worst point so far ([`WorstPoint`]).
    pub fn add_at(
        &mut self,
        learned: &[Complex<f64>],
        reference: &[Complex<f64>],
        zeros: usize,
        eps: f64,
        t: f64,
        state: &[f64],
    ) {
        let d = learned.len();
        let radius = reference[0].norm();
        let nonzero = nonzero_count(reference, zeros);
        let (fr, sr, all) = rel_errors(learned, reference, nonzero);
        // Pointwise, a NaN error (a diverged Jacobian) counts as infinite: the worst, not skipped.
        let worst = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        let rel = |k: usize| worst((learned[k] - reference[k]).norm() / reference[k].norm());
        let k = (0..nonzero).max_by(|&a, &b| rel(a).total_cmp(&rel(b))).unwrap_or(0);
        let all_point = rel(k).max(worst(sr));
        self.fast_points.push(worst(fr));
        self.slow_points.push(worst(sr));
        self.all_points.push(all_point);
        if self.worst.as_ref().is_none_or(|w| all_point > w.rel) {
            self.worst = Some(WorstPoint {
                eps,
                t,
                state: state.to_vec(),
                eigenvalue: k + 1,
                learned: [learned[k].re, learned[k].im],
                reference: [reference[k].re, reference[k].im],
                rel: all_point,
            });
        }
        self.n += 1;
        self.fast_abs += (learned[0] - reference[0]).norm();
        self.slow_abs += (learned[nonzero - 1] - reference[nonzero - 1]).norm();
        self.fast_rel += fr;
        self.slow_rel += sr;
        self.all_rel += all;
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
    /// The pointwise errors of the points added ([`Pointwise`]).
    pub fn pointwise(&self) -> Pointwise {
        Pointwise::of(&self.fast_points, &self.slow_points, &self.all_points, self.worst.clone())
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Max `|λ_fast/λ*_fast - 1|` over the evaluation points (pointwise; a NaN error, from a diverged
    /// Jacobian, counts as infinite).
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
    /// Mean over test trajectories of [`rollout_rel`](super::rollout::rollout_rel) (per-species relative
    /// rollout error).
    #[serde(default = "nan", with = "crate::io::float")]
    pub rollout_rel: f64,
    /// Mean over the test trajectories whose reference oscillates of
    /// [`period_rel`](super::rollout::period_rel) (relative error of the learned oscillation period;
    /// infinite when a learned rollout stops oscillating); `None` when no reference trajectory
    /// oscillates over the evaluation horizon (and in results written before it existed).
    #[serde(default, with = "crate::io::float_opt")]
    pub period_rel: Option<f64>,
    /// Pointwise quantiles (nearest rank) of the fast eigenvalue's relative error over the evaluation
    /// points: median, 95th and 99th percentile ([`fast_rel_max`](Self::fast_rel_max) is the 100th).
    /// NaN in results written before they existed; the same for every quantile below.
    #[serde(default = "nan", with = "crate::io::float")]
    pub fast_rel_p50: f64,
    /// See [`fast_rel_p50`](Self::fast_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub fast_rel_p95: f64,
    /// See [`fast_rel_p50`](Self::fast_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub fast_rel_p99: f64,
    /// Pointwise quantiles and maximum of the slow (smallest nonzero) eigenvalue's relative error.
    #[serde(default = "nan", with = "crate::io::float")]
    pub slow_rel_p50: f64,
    /// See [`slow_rel_p50`](Self::slow_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub slow_rel_p95: f64,
    /// See [`slow_rel_p50`](Self::slow_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub slow_rel_p99: f64,
    /// See [`slow_rel_p50`](Self::slow_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub slow_rel_max: f64,
    /// Pointwise quantiles of the worst relative error over all nonzero eigenvalues
    /// ([`all_rel_max`](Self::all_rel_max) is the maximum).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel_p50: f64,
    /// See [`all_rel_p50`](Self::all_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel_p95: f64,
    /// See [`all_rel_p50`](Self::all_rel_p50).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel_p99: f64,
    /// The worst point ([`WorstPoint`]) at this eps, in flat columns for `per_eps.csv`: its time,
    #[serde(default = "nan", with = "crate::io::float")]
    pub worst_t: f64,
    /// its state (space-separated),
    #[serde(default)]
    pub worst_state: String,
    /// the eigenvalue (1-based, by decreasing modulus) whose relative error is
    /// [`all_rel_max`](Self::all_rel_max) there, 0 when unknown,
    #[serde(default)]
    pub worst_eigenvalue: usize,
    /// and that eigenvalue, learned and true (`re` or `re±imi`).
    #[serde(default)]
    pub worst_learned: String,
    /// See [`worst_learned`](Self::worst_learned).
    #[serde(default)]
    pub worst_true: String,
}

/// A complex number as `per_eps.csv` writes it: `re`, or `re±imi`.
fn complex_text(v: [f64; 2]) -> String {
    if v[1] == 0.0 { format!("{:e}", v[0]) } else { format!("{:e}{:+e}i", v[0], v[1]) }
}

pub(super) fn nan() -> f64 {
    f64::NAN
}

/// The mean of `v`, `None` when it is empty (a metric that applies to none of the runs or trajectories).
fn mean_of(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl EpsMetrics {
    /// Builds the per-eps record from the rollout errors of each test trajectory (eq. 17 and
    /// [`rollout_rel`](super::rollout::rollout_rel)), the [`period_rel`](super::rollout::period_rel) of
    /// those whose reference oscillates, and the eigen sums.
    pub fn new(eps: f64, rollouts: &[f64], rollouts_rel: &[f64], periods: &[f64], e: &EigenErrors) -> Self {
        let [fast_rel_p50, fast_rel_p95, fast_rel_p99, fast_rel_max] = pointwise(&e.fast_points);
        let [slow_rel_p50, slow_rel_p95, slow_rel_p99, slow_rel_max] = pointwise(&e.slow_points);
        let [all_rel_p50, all_rel_p95, all_rel_p99, all_rel_max] = pointwise(&e.all_points);
        let w = e.worst.as_ref();
        Self {
            fast_rel_p50,
            fast_rel_p95,
            fast_rel_p99,
            slow_rel_p50,
            slow_rel_p95,
            slow_rel_p99,
            slow_rel_max,
            all_rel_p50,
            all_rel_p95,
            all_rel_p99,
            worst_t: w.map_or(f64::NAN, |w| w.t),
            worst_state: w
                .map_or(String::new(), |w| w.state.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(" ")),
            worst_eigenvalue: w.map_or(0, |w| w.eigenvalue),
            worst_learned: w.map_or(String::new(), |w| complex_text(w.learned)),
            worst_true: w.map_or(String::new(), |w| complex_text(w.reference)),
            period_rel: mean_of(periods),
            all_rel: e.mean(e.all_rel),
            all_rel_max: if e.n == 0 { 0.0 } else { all_rel_max },
            all_within: e.all_within as f64 / e.n.max(1) as f64,
            zero_rel: if e.zero_points > 0 { e.zero_rel / e.zero_points as f64 } else { 0.0 },
            rollout_rel: rollouts_rel.iter().sum::<f64>() / rollouts_rel.len().max(1) as f64,
            eps,
            rollout_l2: rollouts.iter().sum::<f64>() / rollouts.len().max(1) as f64,
            fast_abs: e.mean(e.fast_abs),
            slow_abs: e.mean(e.slow_abs),
            fast_rel: e.mean(e.fast_rel),
            fast_rel_max: if e.n == 0 { 0.0 } else { fast_rel_max },
            slow_rel: e.mean(e.slow_rel),
            complex_fraction: e.complex as f64 / e.n.max(1) as f64,
            points: e.n,
            fast_angle_deg: if e.angles > 0 { (e.angle / e.angles as f64).to_degrees() } else { f64::NAN },
        }
    }
}

/// The headline numbers of a run: at a reference stiffness (Table 1) and averaged over a grid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The largest of the per-eps *means* of the fast relative error (a mean, not a point: see
    /// [`pointwise`](Self::pointwise) for the worst point). Read from `fast_rel_worst` in results
    /// written before the rename.
    #[serde(alias = "fast_rel_worst", with = "crate::io::float")]
    pub fast_rel_worst_eps_mean: f64,
    /// Slow eigenvalue relative error.
    #[serde(with = "crate::io::float")]
    pub slow_rel: f64,
    /// Worst relative error over all nonzero eigenvalues (see [`EpsMetrics::all_rel`]).
    #[serde(default = "nan", with = "crate::io::float")]
    pub all_rel: f64,
    /// Per-species relative rollout error (see [`rollout_rel`](super::rollout::rollout_rel)).
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
    /// Pointwise errors over every evaluation point of the listed eps pooled ([`Pointwise`]); absent
    /// in results written before it existed.
    #[serde(default)]
    pub pointwise: Option<Pointwise>,
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
            fast_rel_worst_eps_mean: per_eps.iter().map(|e| e.fast_rel).fold(0.0, f64::max),
            slow_rel: m(|e| e.slow_rel),
            all_rel: m(|e| e.all_rel),
            rollout_rel: m(|e| e.rollout_rel),
            all_within: m(|e| e.all_within),
            period_rel: mean_of(&per_eps.iter().filter_map(|e| e.period_rel).collect::<Vec<_>>()),
            pointwise: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subspace_angles() {
        let deg = |a: f64| a.to_degrees();
        assert!((deg(subspace_angle(&[vec![1.0, 0.0]], &[vec![1.0, 1.0]])) - 45.0).abs() < 1e-9);
        assert!(deg(subspace_angle(&[vec![0.0, 2.0]], &[vec![0.0, -1.0]])).abs() < 1e-6);
        let a = [vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let b = [vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 1.0]];
        assert!((deg(subspace_angle(&a, &b)) - 45.0).abs() < 1e-9);
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
    fn period_rel_is_averaged_over_oscillating_trajectories_and_eps() {
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
}
