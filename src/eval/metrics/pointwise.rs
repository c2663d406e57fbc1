//! Pointwise eigenvalue errors: nearest-rank quantiles (p50, p95, p99, max) of the relative errors
//! `|λ_k − λ*_k| / |λ*_k|` over a set of evaluation points ([`Quantiles`], [`Pointwise`]) and the point
//! where the worst eigenvalue is worst ([`WorstPoint`]: eps, t, state). "Can I trust λ at this state?" is
//! a pointwise question, which a mean over points does not answer. A NaN error (a diverged learned
//! Jacobian) counts as infinite, so it shows in the upper quantiles and the maximum.

use serde::{Deserialize, Serialize};

/// Where an evaluation's spectrum is worst: the point with the largest relative error over all
/// nonzero eigenvalues (`all_rel`), and that eigenvalue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstPoint {
    /// Stiffness value.
    #[serde(with = "crate::io::float")]
    pub eps: f64,
    /// Time along the reference trajectory.
    #[serde(with = "crate::io::float")]
    pub t: f64,
    /// The state (on the reference trajectory).
    pub state: Vec<f64>,
    /// Which eigenvalue, 1-based in the order of decreasing modulus (1: the fastest).
    pub eigenvalue: usize,
    /// The learned eigenvalue `[re, im]` (`"NaN"`/`"inf"` strings where not finite, as everywhere).
    #[serde(with = "crate::io::float_pair")]
    pub learned: [f64; 2],
    /// The true eigenvalue `[re, im]`.
    #[serde(with = "crate::io::float_pair")]
    pub reference: [f64; 2],
    /// Its relative error `|λ − λ*| / |λ*|`.
    #[serde(with = "crate::io::float")]
    pub rel: f64,
}

impl WorstPoint {
    /// One line for people: `eps 0.05, t 0.01, state [1.2e0, 3.4e-1]: eigenvalue 1 learned …, true … (rel 1.2e-2)`.
    pub fn describe(&self) -> String {
        let c = |v: [f64; 2]| if v[1] == 0.0 { format!("{:.6e}", v[0]) } else { format!("{:.6e}{:+.6e}i", v[0], v[1]) };
        format!(
            "eps {}, t {:e}, state [{}]: eigenvalue {} learned {}, true {} (rel {:.3e})",
            self.eps,
            self.t,
            self.state.iter().map(|v| format!("{v:.6e}")).collect::<Vec<_>>().join(", "),
            self.eigenvalue,
            c(self.learned),
            c(self.reference),
            self.rel
        )
    }
}

/// The `q`-quantiles (nearest rank, [`crate::stats::quantile`]) and the maximum of pointwise errors;
/// NaN when there are none. Non-finite errors (a diverged Jacobian) sort last, so they show in the
/// upper quantiles and the maximum.
pub(super) fn pointwise(v: &[f64]) -> [f64; 4] {
    let clean: Vec<f64> = v.iter().map(|e| if e.is_nan() { f64::INFINITY } else { *e }).collect();
    let q = crate::stats::quantiles(clean, &[0.5, 0.95, 0.99, 1.0]);
    std::array::from_fn(|i| q[i].unwrap_or(f64::NAN))
}

/// Pointwise relative eigenvalue errors over a set of evaluation points: nearest-rank quantiles of the
/// fast, the slow and the worst-over-all-nonzero error, and the point where the last is largest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pointwise {
    /// Number of points.
    pub points: usize,
    /// Fast eigenvalue.
    pub fast_rel: Quantiles,
    /// Slow (smallest nonzero) eigenvalue.
    pub slow_rel: Quantiles,
    /// Worst over all nonzero eigenvalues.
    pub all_rel: Quantiles,
    /// Where `all_rel` is largest.
    pub worst_point: Option<WorstPoint>,
}

/// Nearest-rank quantiles ([`crate::stats::quantile`]) of pointwise errors; NaN without points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    #[serde(with = "crate::io::float")]
    pub p50: f64,
    /// 95th percentile.
    #[serde(with = "crate::io::float")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(with = "crate::io::float")]
    pub p99: f64,
    /// Maximum.
    #[serde(with = "crate::io::float")]
    pub max: f64,
}

impl Quantiles {
    fn of(v: &[f64]) -> Self {
        let [p50, p95, p99, max] = pointwise(v);
        Self { p50, p95, p99, max }
    }
}

impl Pointwise {
    /// From the pointwise errors of a set of points (fast, slow, worst over all nonzero; one per point)
    /// and its worst point.
    pub fn of(fast: &[f64], slow: &[f64], all: &[f64], worst_point: Option<WorstPoint>) -> Self {
        Self {
            points: all.len(),
            fast_rel: Quantiles::of(fast),
            slow_rel: Quantiles::of(slow),
            all_rel: Quantiles::of(all),
            worst_point,
        }
    }
}
