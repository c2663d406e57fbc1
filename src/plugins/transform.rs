//! The [`TargetTransform`] plugin trait and its built-ins, `identity` and `asinh`.
//!
//! The network is trained on `a = T(F)` component by component; physical predictions are
//! `F = T⁻¹(a)` and the physical Jacobian follows from the chain rule (paper eq. 24, Alg. 1):
//!
//! ```text
//! J_phys = diag(dT⁻¹/da (a)) · J_net
//! ```
//!
//! `asinh` (paper eqs. 25, 28): `T(F_i) = asinh(F_i / s_i)`, `T⁻¹(a_i) = s_i sinh(a_i)`,
//! `dT⁻¹/da_i = s_i cosh(a_i)`. The scale is a robust standard deviation of the training targets:
//!
//! ```text
//! s_i = MAD_i / 0.67448975,   MAD_i = median_j |F_ij - median_j F_ij|
//! ```
//!
//! i.e. the median-centred median absolute deviation, made consistent with σ for a normal sample
//! (Φ⁻¹(0.75) = 0.67448975). We centre on the median because the paper's footnote assumes a zero median,
//! which is false here (ẏ = -y < 0 everywhere). The estimator is computed on the training split only
//! (never on validation points). If a component's MAD is zero (constant targets), the mean absolute
//! value is used, and 1 if that is zero too.
//!
//! # Example
//! ```
//! use stiffx::plugins::transform::{Asinh, TargetTransform};
//! let mut t = Asinh::default();
//! t.fit(&[1.0, -10.0, 2.0, 30.0, 3.0, -50.0], &[0.1, 0.1, 0.1], 2).unwrap();
//! let a = t.forward(1, 30.0, 0.1);
//! assert!((t.inverse(1, a, 0.1) - 30.0).abs() < 1e-12);
//! ```

use crate::stats::{median, quantile};
use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A componentwise, invertible transform of the regression targets.
#[typetag::serde(tag = "type")]
pub trait TargetTransform: Debug + Send + Sync + dyn_clone::DynClone {
    /// Fits the transform's parameters on training targets (`n × dim`, row-major) with the stiffness
    /// value of each row.
    fn fit(&mut self, targets: &[f64], eps: &[f64], dim: usize) -> Result<()>;
    /// `a = T(F)` for component `k` at stiffness `eps`.
    fn forward(&self, k: usize, f: f64, eps: f64) -> f64;
    /// `F = T⁻¹(a)` for component `k` at stiffness `eps`.
    fn inverse(&self, k: usize, a: f64, eps: f64) -> f64;
    /// `dT⁻¹/da` at `a` for component `k` (the diagonal of `D` in eq. 24).
    fn inverse_derivative(&self, k: usize, a: f64, eps: f64) -> f64;
    /// Human-readable parameters (e.g. the fitted scales), for reports.
    fn describe(&self) -> String;
    /// Checks the transform's configured fields before any work, naming them as `transform.NAME`.
    /// Default: nothing to check.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

// A plugin is `Clone` by contract (the supertrait `DynClone`): boxed ones clone field by field, losslessly.
dyn_clone::clone_trait_object!(TargetTransform);

/// Applies `T` to every row of an `n × dim` target array.
pub fn forward_all(t: &dyn TargetTransform, f: &[f64], eps: &[f64], dim: usize) -> Vec<f64> {
    f.iter().enumerate().map(|(i, &v)| t.forward(i % dim, v, eps[i / dim])).collect()
}

/// Applies `T⁻¹` to every row of an `n × dim` array of network outputs.
pub fn inverse_all(t: &dyn TargetTransform, a: &[f64], eps: &[f64], dim: usize) -> Vec<f64> {
    a.iter().enumerate().map(|(i, &v)| t.inverse(i % dim, v, eps[i / dim])).collect()
}

/// Chain rule of eq. 24 in place: `jac` holds `n` row-major `dim × dim` network Jacobians
/// `∂a/∂x`; row `k` of sample `j` is multiplied by `dT⁻¹/da (a_jk)`.
pub fn chain_rule(t: &dyn TargetTransform, a: &[f64], eps: &[f64], jac: &mut [f64], dim: usize) {
    for (j, jm) in jac.chunks_mut(dim * dim).enumerate() {
        for k in 0..dim {
            let s = t.inverse_derivative(k, a[j * dim + k], eps[j]);
            for v in &mut jm[k * dim..(k + 1) * dim] {
                *v *= s;
            }
        }
    }
}

/// No transform: the network regresses the raw RHS (the paper's `baseline` and `cloud`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {}

#[typetag::serde(name = "identity")]
impl TargetTransform for Identity {
    fn fit(&mut self, _targets: &[f64], _eps: &[f64], _dim: usize) -> Result<()> {
        Ok(())
    }
    fn forward(&self, _k: usize, f: f64, _eps: f64) -> f64 {
        f
    }
    fn inverse(&self, _k: usize, a: f64, _eps: f64) -> f64 {
        a
    }
    fn inverse_derivative(&self, _k: usize, _a: f64, _eps: f64) -> f64 {
        1.0
    }
    fn describe(&self) -> String {
        "identity".into()
    }
}

/// `asinh(F_i / s_i)` with per-component robust scales (see the module docs for the estimator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Asinh {
    /// Per-component scales `s_i`. Empty (the default) = fit `MAD/0.6745` on the training targets;
    /// given in a config, they are used as they are.
    pub scales: Vec<f64>,
    /// Fit one scale per component *and per stiffness value* (`s_i(eps)`, the robust scale of the
    /// targets at that eps), instead of one global scale. A global scale makes the transformed fast
    /// component a near-step of slope `≈ 1/(eps·s)` across the slow manifold at small eps; per-eps
    /// scales remove that. Between fitted eps values `ln s` is interpolated linearly in `ln eps`
    /// (constant beyond the ends).
    pub per_eps: bool,
    /// Fitted `(eps, scales)` pairs of the `per_eps` mode, sorted by eps.
    pub eps_scales: Vec<(f64, Vec<f64>)>,
    /// How `per_eps` scales are used between and beyond the fitted eps values: `power-law` (default) fits
    /// `ln s = α + β ln eps` by least squares per component and uses that smooth law everywhere (so the
    /// inverse transform at an unseen eps is consistent with its neighbours); `interpolate` uses the
    /// fitted values at the grid and interpolates `ln s` linearly in `ln eps` between them.
    pub eps_fit: EpsFit,
    /// Per-component `(α, β)` of the `power-law` fit.
    pub power_law: Vec<(f64, f64)>,
    /// Quantile `q` of the absolute deviations used for the scale: `s = Q_q(|F - med F|) / Φ⁻¹((1+q)/2)`
    /// (σ-consistent for normal data). `0.5` (the default) is the MAD of the paper; a larger `q` picks
    /// the scale of the off-manifold (fast) samples when most samples sit on the slow manifold.
    pub quantile: f64,
}

/// Median-centred median absolute deviation divided by Φ⁻¹(0.75) = 0.67448975 (σ for normal data).
pub fn robust_scale(v: &[f64]) -> f64 {
    let m = median(v);
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let s = median(&dev) / 0.674_489_750_196_081_7;
    if s > 0.0 && s.is_finite() {
        return s;
    }
    let mean_abs = v.iter().map(|x| x.abs()).sum::<f64>() / v.len().max(1) as f64;
    if mean_abs > 0.0 && mean_abs.is_finite() { mean_abs } else { 1.0 }
}

/// See [`Asinh::eps_fit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EpsFit {
    /// Smooth `s = e^α eps^β`.
    #[default]
    PowerLaw,
    /// Piecewise log-log interpolation of the per-eps values.
    Interpolate,
}

impl Default for Asinh {
    fn default() -> Self {
        Self {
            scales: Vec::new(),
            per_eps: false,
            eps_scales: Vec::new(),
            eps_fit: EpsFit::PowerLaw,
            power_law: Vec::new(),
            quantile: 0.5,
        }
    }
}

/// `Q_q(|v - median v|) / Φ⁻¹((1+q)/2)`: the median-centred MAD/0.6745 at `q = 0.5`.
pub fn robust_scale_q(v: &[f64], q: f64) -> f64 {
    if (q - 0.5).abs() < 1e-15 {
        return robust_scale(v);
    }
    let m = median(v);
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let s = quantile(dev, q).unwrap_or(0.0) / crate::stats::normal_quantile(0.5 * (1.0 + q));
    if s > 0.0 && s.is_finite() { s } else { robust_scale(v) }
}

impl Asinh {
    /// The scale of component `k` at stiffness `eps`.
    pub fn scale(&self, k: usize, eps: f64) -> f64 {
        if !self.per_eps || self.eps_scales.is_empty() {
            return self.scales[k];
        }
        if self.eps_fit == EpsFit::PowerLaw && self.power_law.len() > k {
            let (a, b) = self.power_law[k];
            return (a + b * eps.ln()).exp();
        }
        let t = &self.eps_scales;
        if eps <= t[0].0 {
            return t[0].1[k];
        }
        if eps >= t[t.len() - 1].0 {
            return t[t.len() - 1].1[k];
        }
        let i = t.partition_point(|(e, _)| *e <= eps);
        let ((e0, s0), (e1, s1)) = (&t[i - 1], &t[i]);
        let w = (eps.ln() - e0.ln()) / (e1.ln() - e0.ln());
        (s0[k].ln() * (1.0 - w) + s1[k].ln() * w).exp()
    }
}

#[typetag::serde(name = "asinh")]
impl TargetTransform for Asinh {
    fn validate(&self) -> Result<()> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(Error::invalid("transform.quantile", self.quantile, "a number in (0, 1); 0.5 = MAD"));
        }
        for (i, s) in self.scales.iter().enumerate() {
            Error::positive(format!("transform.scales[{i}]"), *s)?;
        }
        for (j, (e, sc)) in self.eps_scales.iter().enumerate() {
            Error::positive(format!("transform.eps_scales[{j}][0]"), *e)?;
            for (i, s) in sc.iter().enumerate() {
                Error::positive(format!("transform.eps_scales[{j}][1][{i}]"), *s)?;
            }
        }
        for (i, (a, b)) in self.power_law.iter().enumerate() {
            if !(a.is_finite() && b.is_finite()) {
                return Err(Error::invalid(
                    format!("transform.power_law[{i}]"),
                    format!("[{a}, {b}]"),
                    "two finite numbers (α, β)",
                ));
            }
        }
        Ok(())
    }

    fn fit(&mut self, targets: &[f64], eps: &[f64], dim: usize) -> Result<()> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(Error::invalid("transform.quantile", self.quantile, "a number in (0, 1); 0.5 = MAD"));
        }
        if self.per_eps && self.eps_scales.is_empty() {
            let mut grid: Vec<f64> = eps.to_vec();
            grid.sort_by(f64::total_cmp);
            grid.dedup();
            self.eps_scales = grid
                .iter()
                .map(|&e| {
                    let s = (0..dim)
                        .map(|k| {
                            let col: Vec<f64> =
                                (0..eps.len()).filter(|&i| eps[i] == e).map(|i| targets[i * dim + k]).collect();
                            robust_scale_q(&col, self.quantile)
                        })
                        .collect();
                    (e, s)
                })
                .collect();
        }
        if self.per_eps && self.power_law.is_empty() && !self.eps_scales.is_empty() {
            let xs: Vec<f64> = self.eps_scales.iter().map(|(e, _)| e.ln()).collect();
            let n = xs.len() as f64;
            let mx = xs.iter().sum::<f64>() / n;
            let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
            self.power_law = (0..dim)
                .map(|k| {
                    let ys: Vec<f64> = self.eps_scales.iter().map(|(_, s)| s[k].ln()).collect();
                    let my = ys.iter().sum::<f64>() / n;
                    let b = if sxx > 0.0 {
                        xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / sxx
                    } else {
                        0.0
                    };
                    (my - b * mx, b)
                })
                .collect();
        }
        if !self.scales.is_empty() {
            if self.scales.len() != dim {
                return Err(Error::invalid(
                    "transform.scales",
                    format!("{:?}", self.scales),
                    format!("one positive scale per state component ({dim}), or empty to fit them"),
                ));
            }
            if let Some(s) = self.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(Error::invalid("transform.scales", s, "finite numbers > 0"));
            }
            return Ok(());
        }
        self.scales = (0..dim)
            .map(|k| {
                let col: Vec<f64> = targets.iter().skip(k).step_by(dim).copied().collect();
                robust_scale_q(&col, self.quantile)
            })
            .collect();
        Ok(())
    }
    fn forward(&self, k: usize, f: f64, eps: f64) -> f64 {
        (f / self.scale(k, eps)).asinh()
    }
    fn inverse(&self, k: usize, a: f64, eps: f64) -> f64 {
        self.scale(k, eps) * a.sinh()
    }
    fn inverse_derivative(&self, k: usize, a: f64, eps: f64) -> f64 {
        self.scale(k, eps) * a.cosh()
    }
    fn describe(&self) -> String {
        if self.per_eps && self.eps_fit == EpsFit::PowerLaw {
            let s: Vec<String> = self.power_law.iter().map(|(a, b)| format!("{:.3e}·eps^{b:.3}", a.exp())).collect();
            format!(
                "asinh(F/s(eps)), power-law fit of per-eps robust scales (q = {}): s = [{}]",
                self.quantile,
                s.join(", ")
            )
        } else if self.per_eps {
            let s: Vec<String> = self
                .eps_scales
                .iter()
                .map(|(e, s)| format!("{e}: [{}]", s.iter().map(|v| format!("{v:.3e}")).collect::<Vec<_>>().join(", ")))
                .collect();
            format!("asinh(F/s(eps)), per-eps s (median-centred MAD / 0.6745) = {{{}}}", s.join(", "))
        } else {
            format!(
                "asinh(F/s), s = [{}] (median-centred MAD / 0.6745)",
                self.scales.iter().map(|v| format!("{v:.4e}")).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asinh_round_trip_and_derivative() {
        let mut t = Asinh::default();
        let data: Vec<f64> = (0..200).map(|i| ((i as f64) * 0.37).sin() * 10f64.powi(i % 4)).collect();
        let eps: Vec<f64> = (0..100).map(|i| [0.01, 0.1][i % 2]).collect();
        let mut p = Asinh { per_eps: true, eps_fit: EpsFit::Interpolate, ..Default::default() };
        let mut q = Asinh { per_eps: true, ..Default::default() };
        q.fit(&data, &eps, 2).unwrap();
        // two eps values: the power law passes through both fitted scales
        for (e, sc) in &q.eps_scales.clone() {
            assert!((q.scale(1, *e) / sc[1] - 1.0).abs() < 1e-9);
        }
        t.fit(&data, &eps, 2).unwrap();
        p.fit(&data, &eps, 2).unwrap();
        assert_eq!(t.scales.len(), 2);
        assert_eq!(p.eps_scales.len(), 2);
        for t in [&t, &p] {
            for &e in &[0.01, 0.03, 0.1, 0.5] {
                for &f in &[-1e4, -3.0, -1e-6, 0.0, 2.5, 7e3] {
                    for k in 0..2 {
                        let a = t.forward(k, f, e);
                        assert!((t.inverse(k, a, e) - f).abs() <= 1e-12 * f.abs().max(1.0));
                        let h = 1e-6;
                        let fd = (t.inverse(k, a + h, e) - t.inverse(k, a - h, e)) / (2.0 * h);
                        assert!((fd - t.inverse_derivative(k, a, e)).abs() < 1e-6 * fd.abs().max(1.0));
                    }
                }
            }
        }
        // interpolation in ln eps between the two fitted values, constant outside
        let mid = p.scale(1, (0.01f64 * 0.1).sqrt());
        let expect = (p.eps_scales[0].1[1] * p.eps_scales[1].1[1]).sqrt();
        assert!((mid - expect).abs() < 1e-12 * expect);
        assert_eq!(p.scale(1, 1.0), p.eps_scales[1].1[1]);
    }

    #[test]
    fn robust_scale_is_sigma_for_normal_like_data() {
        // Symmetric, evenly spread quantiles of N(3, 2²): the estimator returns ~2.
        let n = 2001;
        let q: Vec<f64> = (1..=n)
            .map(|i| {
                let p = i as f64 / (n as f64 + 1.0);
                3.0 + 2.0 * crate::stats::normal_quantile(p)
            })
            .collect();
        let s = robust_scale(&q);
        assert!((s - 2.0).abs() < 0.01, "s = {s}");
    }

    #[test]
    fn given_scales_are_checked() {
        let mut t = Asinh { scales: vec![1.0, -2.0], ..Default::default() };
        let err = t.fit(&[1.0, 2.0], &[0.1], 2).unwrap_err().to_string();
        assert!(err.contains("transform.scales"), "{err}");
    }
}
