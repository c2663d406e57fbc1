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
//! use stiffx::transform::{Asinh, TargetTransform};
//! let mut t = Asinh::default();
//! t.fit(&[1.0, -10.0, 2.0, 30.0, 3.0, -50.0], 2).unwrap();
//! let a = t.forward(1, 30.0);
//! assert!((t.inverse(1, a) - 30.0).abs() < 1e-12);
//! ```

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A componentwise, invertible transform of the regression targets.
#[typetag::serde(tag = "type")]
pub trait TargetTransform: Debug + Send + Sync {
    /// Fits the transform's parameters on training targets (`n × dim`, row-major).
    fn fit(&mut self, targets: &[f64], dim: usize) -> Result<()>;
    /// `a = T(F)` for component `k`.
    fn forward(&self, k: usize, f: f64) -> f64;
    /// `F = T⁻¹(a)` for component `k`.
    fn inverse(&self, k: usize, a: f64) -> f64;
    /// `dT⁻¹/da` at `a` for component `k` (the diagonal of `D` in eq. 24).
    fn inverse_derivative(&self, k: usize, a: f64) -> f64;
    /// Human-readable parameters (e.g. the fitted scales), for reports.
    fn describe(&self) -> String;
}

impl Clone for Box<dyn TargetTransform> {
    fn clone(&self) -> Self {
        let v = serde_json::to_value(self).expect("transforms serialise to JSON");
        serde_json::from_value(v).expect("transforms deserialise from their own JSON")
    }
}

/// Applies `T` to every row of an `n × dim` target array.
pub fn forward_all(t: &dyn TargetTransform, f: &[f64], dim: usize) -> Vec<f64> {
    f.iter().enumerate().map(|(i, &v)| t.forward(i % dim, v)).collect()
}

/// Applies `T⁻¹` to every row of an `n × dim` array of network outputs.
pub fn inverse_all(t: &dyn TargetTransform, a: &[f64], dim: usize) -> Vec<f64> {
    a.iter().enumerate().map(|(i, &v)| t.inverse(i % dim, v)).collect()
}

/// Chain rule of eq. 24 in place: `jac` holds `n` row-major `dim × dim` network Jacobians
/// `∂a/∂x`; row `k` of sample `j` is multiplied by `dT⁻¹/da (a_jk)`.
pub fn chain_rule(t: &dyn TargetTransform, a: &[f64], jac: &mut [f64], dim: usize) {
    for (j, jm) in jac.chunks_mut(dim * dim).enumerate() {
        for k in 0..dim {
            let s = t.inverse_derivative(k, a[j * dim + k]);
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
    fn fit(&mut self, _targets: &[f64], _dim: usize) -> Result<()> {
        Ok(())
    }
    fn forward(&self, _k: usize, f: f64) -> f64 {
        f
    }
    fn inverse(&self, _k: usize, a: f64) -> f64 {
        a
    }
    fn inverse_derivative(&self, _k: usize, _a: f64) -> f64 {
        1.0
    }
    fn describe(&self) -> String {
        "identity".into()
    }
}

crate::register_transform!(Identity, "identity", "no target transform: regress the raw RHS");

/// `asinh(F_i / s_i)` with per-component robust scales (see the module docs for the estimator).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Asinh {
    /// Per-component scales `s_i`. Empty (the default) = fit `MAD/0.6745` on the training targets;
    /// given in a config, they are used as they are.
    pub scales: Vec<f64>,
}

/// Median of a slice (sorted copy; mean of the two middle values for even lengths).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) }
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

#[typetag::serde(name = "asinh")]
impl TargetTransform for Asinh {
    fn fit(&mut self, targets: &[f64], dim: usize) -> Result<()> {
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
                robust_scale(&col)
            })
            .collect();
        Ok(())
    }
    fn forward(&self, k: usize, f: f64) -> f64 {
        (f / self.scales[k]).asinh()
    }
    fn inverse(&self, k: usize, a: f64) -> f64 {
        self.scales[k] * a.sinh()
    }
    fn inverse_derivative(&self, k: usize, a: f64) -> f64 {
        self.scales[k] * a.cosh()
    }
    fn describe(&self) -> String {
        format!("asinh(F/s), s = {:?} (median-centred MAD / 0.6745)", self.scales)
    }
}

crate::register_transform!(Asinh, "asinh", "asinh(F_i/s_i), s_i = median-centred MAD/0.6745 of the training targets");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asinh_round_trip_and_derivative() {
        let mut t = Asinh::default();
        let data: Vec<f64> = (0..200).map(|i| ((i as f64) * 0.37).sin() * 10f64.powi(i % 4)).collect();
        t.fit(&data, 2).unwrap();
        assert_eq!(t.scales.len(), 2);
        for &f in &[-1e4, -3.0, -1e-6, 0.0, 2.5, 7e3] {
            for k in 0..2 {
                let a = t.forward(k, f);
                assert!((t.inverse(k, a) - f).abs() <= 1e-12 * f.abs().max(1.0));
                let h = 1e-6;
                let fd = (t.inverse(k, a + h) - t.inverse(k, a - h)) / (2.0 * h);
                assert!((fd - t.inverse_derivative(k, a)).abs() < 1e-6 * fd.abs().max(1.0));
            }
        }
    }

    #[test]
    fn robust_scale_is_sigma_for_normal_like_data() {
        // Symmetric, evenly spread quantiles of N(3, 2²): the estimator returns ~2.
        let n = 2001;
        let q: Vec<f64> = (1..=n)
            .map(|i| {
                let p = i as f64 / (n as f64 + 1.0);
                3.0 + 2.0 * crate::diagnostics::normal_quantile(p)
            })
            .collect();
        let s = robust_scale(&q);
        assert!((s - 2.0).abs() < 0.01, "s = {s}");
    }

    #[test]
    fn given_scales_are_checked() {
        let mut t = Asinh { scales: vec![1.0, -2.0] };
        let err = t.fit(&[1.0, 2.0], 2).unwrap_err().to_string();
        assert!(err.contains("transform.scales"), "{err}");
    }
}
