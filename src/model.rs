//! The network `F_θ(x, eps)` (paper eqs. 9–12): inputs standardised by training statistics,
//! `L` hidden layers of width `W` with SiLU, a linear output layer.
//!
//! ```text
//! h_0 = ((x - μ_x)/σ_x, (eps - μ_ε)/σ_ε),   h_{l+1} = SiLU(W_l h_l + b_l),   a = W_L h_L + b_L
//! ```
//!
//! The canonical, backend-independent form of a trained network is [`Weights`] (host `f64`, which holds
//! an f32-trained network exactly and an f64-trained one without rounding it): it is what checkpoints
//! store, what initialisation produces (from the run's seed, so that every backend and precision starts
//! from the same network), and what [`Mlp::from_weights`] loads onto any device and precision.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Input standardisation `(v - mean) / std` per input column (states then eps), after an optional
/// per-species input map `φ_i(x_i) = asinh(x_i / c_i)` (`model.state_input = "asinh"`): linear for
/// `|x_i| ≪ c_i`, logarithmic above, so that a species spanning decades (Robertson's `y2` from 1e-10 to
/// 4e-5) is resolved at every scale, and smooth through 0 (unlike `ln`), so cloud perturbations may
/// cross it. Its slope `φ_i' = 1/sqrt(c_i² + x_i²)` enters the Jacobian's chain rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column standard deviations (1 where a column is constant).
    pub std: Vec<f64>,
    /// Scales `c_i` of the state input map; empty: the state enters linearly (paper eq. 9).
    #[serde(default)]
    pub state_scale: Vec<f64>,
}

/// Scales of the `asinh` state input map: `c_i` = the `q(i)`-quantile of `|x_i|` over `rows` (`n × cols`,
/// states first), floored at 1e-12 of the largest `|x_i|` (1 for a column that is all zero). A low
/// quantile puts the linear-to-logarithmic crossover below most of the data, so the map is
/// logarithmic over the decades the species actually spans.
pub fn state_scales(rows: &[f64], cols: usize, d: usize, q: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..d)
        .map(|i| {
            let v: Vec<f64> = rows.iter().skip(i).step_by(cols).map(|x| x.abs()).collect();
            let max = v.iter().copied().fold(0.0, f64::max);
            if max == 0.0 {
                return 1.0;
            }
            crate::transform::quantile(v, q(i)).unwrap_or(max).max(1e-12 * max)
        })
        .collect()
}

impl Normalizer {
    /// Replaces the states in `rows` (`n × cols`, states first) by their input features `φ_i(x_i)`.
    pub fn map_states(scale: &[f64], rows: &mut [f64], cols: usize) {
        if scale.is_empty() {
            return;
        }
        for r in rows.chunks_mut(cols) {
            for (v, c) in r.iter_mut().zip(scale) {
                *v = (*v / c).asinh();
            }
        }
    }

    /// `dφ_i/dx_i` at `x` (one state): 1 for linear inputs.
    pub fn state_slopes(&self, x: &[f64]) -> Vec<f64> {
        if self.state_scale.is_empty() {
            return vec![1.0; x.len()];
        }
        x.iter().zip(&self.state_scale).map(|(v, c)| 1.0 / c.hypot(*v)).collect()
    }

    /// Fits mean and standard deviation of each column of `rows` (`n × cols`, row-major).
    pub fn fit(rows: &[f64], cols: usize) -> Self {
        let n = (rows.len() / cols).max(1) as f64;
        let mut mean = vec![0.0; cols];
        for r in rows.chunks(cols) {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / n;
            }
        }
        let mut var = vec![0.0; cols];
        for r in rows.chunks(cols) {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let std = var.into_iter().map(|v| if v > 0.0 { v.sqrt() } else { 1.0 }).collect();
        Self { mean, std, state_scale: Vec::new() }
    }

    /// Standardises `rows` into network inputs.
    pub fn apply(&self, rows: &[f64]) -> Vec<f64> {
        let c = self.mean.len();
        rows.iter().enumerate().map(|(i, v)| (v - self.mean[i % c]) / self.std[i % c]).collect()
    }
}

/// One dense layer on the host: `w` is `d_in × d_out` row-major (burn's layout), `b` has `d_out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerWeights {
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
    /// Weight matrix, `d_in × d_out`, row-major.
    pub w: Vec<f64>,
    /// Bias, `d_out`.
    pub b: Vec<f64>,
}

/// All layers of an MLP on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Layers, input first.
    pub layers: Vec<LayerWeights>,
}

impl Weights {
    /// PyTorch's default initialisation (`U(-1/√d_in, 1/√d_in)` for weights and biases), drawn in
    /// `f32` from a seeded generator so that every backend and both training precisions start from the
    /// same network.
    pub fn init(d_in: usize, hidden: usize, width: usize, d_out: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_CAFE_F00D_u64);
        let mut dims = vec![d_in];
        dims.extend(std::iter::repeat_n(width, hidden));
        dims.push(d_out);
        let layers = dims
            .windows(2)
            .map(|w| {
                let k = 1.0 / (w[0] as f32).sqrt();
                let u = Uniform::new_inclusive(-k, k).expect("k > 0");
                LayerWeights {
                    d_in: w[0],
                    d_out: w[1],
                    w: (0..w[0] * w[1]).map(|_| f64::from(u.sample(&mut rng))).collect(),
                    b: (0..w[1]).map(|_| f64::from(u.sample(&mut rng))).collect(),
                }
            })
            .collect();
        Self { layers }
    }

    /// Checks that consecutive layers fit and the arrays have their stated sizes.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.layers.is_empty() {
            return Err("no layers".into());
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.w.len() != l.d_in * l.d_out || l.b.len() != l.d_out {
                return Err(format!("layer {i}: weight/bias sizes do not match {} × {}", l.d_in, l.d_out));
            }
            if i > 0 && self.layers[i - 1].d_out != l.d_in {
                return Err(format!(
                    "layer {i}: input width {} ≠ previous output width {}",
                    l.d_in,
                    self.layers[i - 1].d_out
                ));
            }
            if l.w.iter().chain(&l.b).any(|v| !v.is_finite()) {
                return Err(format!("layer {i}: non-finite parameter"));
            }
        }
        Ok(())
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.w.len() + l.b.len()).sum()
    }
}

/// The MLP as a burn module.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Dense layers; SiLU after every one but the last.
    pub layers: Vec<Linear>,
}

/// Reads a float tensor back to host `f64`, whatever its dtype.
pub fn to_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_into_vec_as::<f64>().expect("float tensors convert to f64")
}

/// A `[rows, cols]` f32 tensor from host data (converted to f32 when `E` is another type).
pub fn tensor2<E: burn::tensor::Element>(data: Vec<E>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    tensor2_as(data, rows, cols, device, DType::F32)
}

/// A `[rows, cols]` tensor of float type `dtype` from host data.
pub fn tensor2_as<E: burn::tensor::Element>(
    data: Vec<E>,
    rows: usize,
    cols: usize,
    device: &Device,
    dtype: DType,
) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), (device, dtype))
}

impl Mlp {
    /// Loads host weights onto `device` as `dtype` tensors (any backend, f32 or f64).
    pub fn from_weights(w: &Weights, device: &Device, dtype: DType) -> Result<Self> {
        w.check().map_err(|m| Error::Checkpoint { path: "<weights>".into(), message: m })?;
        let layers = w
            .layers
            .iter()
            .map(|l| Linear {
                weight: Param::from_tensor(tensor2_as(l.w.clone(), l.d_in, l.d_out, device, dtype)),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(l.b.clone(), [l.d_out]),
                    (device, dtype),
                ))),
            })
            .collect();
        Ok(Self { layers })
    }

    /// Float type of the parameters (f32 or f64).
    pub fn dtype(&self) -> DType {
        self.layers[0].weight.val().dtype()
    }

    /// Copies the parameters back to the host (exactly, whatever their precision).
    pub fn weights(&self) -> Weights {
        Weights {
            layers: self
                .layers
                .iter()
                .map(|l| {
                    let [d_in, d_out] = l.weight.val().dims();
                    LayerWeights {
                        d_in,
                        d_out,
                        w: to_f64(l.weight.val()),
                        b: l.bias.as_ref().map(|b| to_f64(b.val())).unwrap_or_else(|| vec![0.0; d_out]),
                    }
                })
                .collect(),
        }
    }

    /// Network output `a` for standardised inputs.
    ///
    /// # Shapes
    /// - `h0`: `[n, d + 1]` (standardised states and eps)
    /// - output: `[n, d]`
    pub fn forward(&self, h0: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = h0;
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(h);
            if i < last {
                h = silu(h);
            }
        }
        h
    }

    /// Forward-mode Jacobian of the network output with respect to its (standardised) inputs: the
    /// primal and `m` input tangents are pushed through the layers together,
    ///
    /// ```text
    /// z = h W + b,  ż = ḣ W,  h' = SiLU(z),  ḣ' = SiLU'(z) ⊙ ż,  SiLU'(z) = σ(z) (1 + z (1 - σ(z)))
    /// ```
    ///
    /// so one pass costs about `1 + m` forward matmuls instead of `m` reverse sweeps (and needs no
    /// autodiff graph).
    ///
    /// # Shapes
    /// - `h0`: `[n, d_in]`; `tangents`: `m` tensors `[n, d_in]` (the input directions)
    /// - returns `(a, ȧ)`: `a` is `[n, d_out]`, `ȧ` is `m` tensors `[n, d_out]`
    pub fn forward_tangents(&self, h0: Tensor<2>, tangents: Vec<Tensor<2>>) -> (Tensor<2>, Vec<Tensor<2>>) {
        let last = self.layers.len() - 1;
        let mut h = h0;
        let mut t = tangents;
        for (i, l) in self.layers.iter().enumerate() {
            let w = l.weight.val();
            let z = l.forward(h);
            let zt: Vec<Tensor<2>> = t.into_iter().map(|ti| ti.matmul(w.clone())).collect();
            if i < last {
                let s = burn::tensor::activation::sigmoid(z.clone());
                let ds = s.clone().mul(z.clone().mul(s.clone().neg().add_scalar(1.0)).add_scalar(1.0));
                h = z.mul(s);
                t = zt.into_iter().map(|ti| ti.mul(ds.clone())).collect();
            } else {
                h = z;
                t = zt;
            }
        }
        (h, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `c_i` is the quantile of species `i`'s `|x_i|` (one quantile for all, or one per species), the
    /// eps column is ignored, and an all-zero column gets scale 1.
    #[test]
    fn state_scales_take_each_species_quantile() {
        // 5 rows of (x0, x1, x2, eps): x0 = 1…5, x1 = -10…-50, x2 = 0.
        let rows: Vec<f64> = (1..=5).flat_map(|k| [k as f64, -10.0 * k as f64, 0.0, 0.3]).collect();
        assert_eq!(state_scales(&rows, 4, 3, |_| 0.5), vec![3.0, 30.0, 1.0]);
        let per = crate::config::PerComponent::Each(vec![0.0, 1.0, 0.5]);
        assert_eq!(state_scales(&rows, 4, 3, |i| per.of(i)), vec![1.0, 50.0, 1.0]);
        assert!(per.validate(3).is_ok());
        assert!(per.validate(2).unwrap_err().to_string().contains("model.state_quantile"));
        let bad = crate::config::PerComponent::Each(vec![0.1, 1.5, 0.5]);
        assert!(bad.validate(3).unwrap_err().to_string().contains("1.5"));
    }
}
