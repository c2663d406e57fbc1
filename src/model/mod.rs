//! The network `F_θ(x, eps)` (paper eqs. 9–12): inputs standardised by training statistics,
//! `L` hidden layers of width `W` with SiLU, a linear output layer.
//!
//! ```text
//! h_0 = ((x - μ_x)/σ_x, (eps - μ_ε)/σ_ε),   h_{l+1} = σ(W_l h_l + b_l),   a = W_L h_L + b_L
//! ```
//!
//! The activation `σ` is SiLU (the paper) or `exp` ([`Activation`]). With `exp`, logarithmic state and
//! stiffness inputs (`model.state_input = "log"`, `model.eps_input = "log"`) and one hidden layer, the
//! network is a *chemical reaction neural network* (CRNN, Ji & Deng 2021): hidden unit `j` is a
//! mass-action rate and the output layer its stoichiometry,
//!
//! ```text
//! r_j = exp(b_j + Σ_i ν_ij ln x_i + β_j ln eps) = k_j eps^β_j Π_i x_i^ν_ij,    F_k = Σ_j S_kj r_j + b_k
//! ```
//!
//! (`ν_ij = W_ij/σ_i` after the standardisation), a model class that contains every mass-action
//! mechanism (Robertson's, with `width ≥ 3`) exactly.
//!
//! The canonical, backend-independent form of a trained network is [`Weights`] (host `f64`, which holds
//! an f32-trained network exactly and an f64-trained one without rounding it): it is what checkpoints
//! store, what initialisation produces (from the run's seed, so that every backend and precision starts
//! from the same network), and what [`Mlp::from_weights`] loads onto any device and precision.

pub mod config;

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
/// per-species input map `φ_i` ([`StateMap`]) with scales `c_i`: `asinh(x_i / c_i)`
/// (`model.state_input = "asinh"`) or `ln(x_i + c_i)` (`"log"`). Its slope `φ_i'` enters the Jacobian's
/// chain rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column standard deviations (1 where a column is constant).
    pub std: Vec<f64>,
    /// Scales `c_i` of the state input map; empty: the state enters linearly (paper eq. 9).
    #[serde(default)]
    pub state_scale: Vec<f64>,
    /// Which map the scales belong to (checkpoints written before `log` existed: `asinh`).
    #[serde(default)]
    pub state_map: StateMap,
}

/// The per-species state input map `φ_i` of a [`Normalizer`] with scales `c_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateMap {
    /// `φ(x) = asinh(x/c)`, `φ' = 1/sqrt(c² + x²)`: linear for `|x| ≪ c`, logarithmic above, so that a
    /// species spanning decades (Robertson's `y2` from 1e-10 to 4e-5) is resolved at every scale, and
    /// smooth through 0 (unlike `ln`), so cloud perturbations may cross it.
    #[default]
    Asinh,
    /// `φ(x) = ln(max(x, 0) + c)`, `φ' = 1/(x + c)` for `x ≥ 0` and 0 below (a negative concentration,
    /// a solver's round-off, counts as none; a continuation with slope `1/c` would map `x = -1e-10` to
    /// `-1e6` for `c = 1e-16`). For concentrations: with an
    /// `exp` activation, `exp(ν ln(x + c)) = (x + c)^ν` is a mass-action factor, exact as `c → 0`, and
    /// unlike `asinh` its slope at `x = 0` gives a first-order rate the exact derivative `∂(x + c)/∂x = 1`.
    Log,
}

impl StateMap {
    /// `φ(x)` with scale `c`.
    pub fn apply(self, x: f64, c: f64) -> f64 {
        match self {
            StateMap::Asinh => (x / c).asinh(),
            StateMap::Log => (x.max(0.0) + c).ln(),
        }
    }

    /// Replaces the states in `rows` (`n × cols`, states first) by `φ_i(x_i)` with scales `scale`
    /// (nothing when `scale` is empty: linear inputs).
    pub fn map_rows(self, scale: &[f64], rows: &mut [f64], cols: usize) {
        if scale.is_empty() {
            return;
        }
        for r in rows.chunks_mut(cols) {
            for (v, c) in r.iter_mut().zip(scale) {
                *v = self.apply(*v, *c);
            }
        }
    }

    /// `φ'(x)` with scale `c`.
    pub fn slope(self, x: f64, c: f64) -> f64 {
        match self {
            StateMap::Asinh => 1.0 / c.hypot(x),
            StateMap::Log if x >= 0.0 => 1.0 / (x + c),
            StateMap::Log => 0.0,
        }
    }
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
            crate::stats::quantile(v, q(i)).unwrap_or(max).max(1e-12 * max)
        })
        .collect()
}

/// Offsets `c_i` of the `log` state input: `LOG_OFFSET` × the largest `|x_i|` over `rows` (`n × cols`,
/// states first; 1 for a column that is all zero): far below any value a species takes while it
/// matters, so that `ln(x + c)` is `ln x` to within `c/x`, and a mass-action rate built on it is exact.
pub fn log_offsets(rows: &[f64], cols: usize, d: usize) -> Vec<f64> {
    (0..d)
        .map(|i| {
            let max = rows.iter().skip(i).step_by(cols).fold(0.0f64, |m, x| m.max(x.abs()));
            if max == 0.0 { 1.0 } else { LOG_OFFSET * max }
        })
        .collect()
}

/// Relative offset of the `log` state input ([`log_offsets`]).
pub const LOG_OFFSET: f64 = 1e-12;

impl Normalizer {
    /// Replaces the states in `rows` (`n × cols`, states first) by their input features `φ_i(x_i)`
    /// (nothing for linear inputs, `state_scale` empty).
    pub fn map_states(&self, rows: &mut [f64], cols: usize) {
        self.state_map.map_rows(&self.state_scale, rows, cols);
    }

    /// `dφ_i/dx_i` at `x` (one state): 1 for linear inputs.
    pub fn state_slopes(&self, x: &[f64]) -> Vec<f64> {
        if self.state_scale.is_empty() {
            return vec![1.0; x.len()];
        }
        x.iter().zip(&self.state_scale).map(|(v, c)| self.state_map.slope(*v, *c)).collect()
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
        Self { mean, std, state_scale: Vec::new(), state_map: StateMap::Asinh }
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

/// All layers of an MLP on the host, and its hidden activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Layers, input first.
    pub layers: Vec<LayerWeights>,
    /// Activation after every hidden layer (checkpoints written before it existed: SiLU).
    #[serde(default)]
    pub activation: Activation,
    /// A mass-action reaction network (CRNN): the first layer's state weights (every input row but the
    /// last, eps) are kept `≥ 0` and the output layer has no bias. With `log` state inputs and the
    /// `exp` activation these weights are the reaction orders `ν_ij`, and a rate cannot grow as a
    /// reactant vanishes (a negative order makes `exp(ν ln(x + c))` blow up towards `c^ν` at `x = 0`);
    /// an output bias would be a constant source term, which no reaction is. Training projects onto
    /// the orders' constraint after every Adam step and every L-BFGS round ([`Mlp::project`]).
    #[serde(default)]
    pub mass_action: bool,
}

/// One reaction of a trained mass-action network ([`Weights::reactions`]), in physical units:
///
/// ```text
/// r = k · eps^β · Π_i (x_i + c_i)^ν_i,    dx/dt += s · r
/// ```
///
/// with the standardisation folded in (`ν_i = W_i/σ_i`, `β = W_eps/σ_eps`,
/// `ln k = b − Σ W_i μ_i/σ_i`) and the scale shared by `k` and `s` fixed by `max_i |s_i| = 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    /// Rate constant `k` (0 for a reaction that changes nothing).
    pub rate_constant: f64,
    /// Reaction order `ν_i` in each species.
    pub orders: Vec<f64>,
    /// Exponent `β` of eps (with a linear eps input, the coefficient of eps in `ln r`).
    pub eps_exponent: f64,
    /// Stoichiometry `s_i`: the change of each species per unit of rate, largest `|s_i|` 1.
    pub stoichiometry: Vec<f64>,
}

/// The hidden activation `σ` (`model.activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `SiLU(z) = z σ(z)`, `SiLU'(z) = σ(z) (1 + z (1 - σ(z)))` (paper).
    #[default]
    Silu,
    /// `exp(z)`, its own derivative: with `log` inputs, a hidden unit is a mass-action rate (CRNN).
    Exp,
}

impl Activation {
    /// Name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Silu => "SiLU",
            Activation::Exp => "exp",
        }
    }

    /// `σ(z)` on a tensor.
    pub fn apply(self, z: Tensor<2>) -> Tensor<2> {
        match self {
            Activation::Silu => silu(z),
            Activation::Exp => z.exp(),
        }
    }

    /// `(σ(z), σ'(z))` on a tensor.
    pub fn with_derivative(self, z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self {
            Activation::Silu => {
                let s = burn::tensor::activation::sigmoid(z.clone());
                let ds = s.clone().mul(z.clone().mul(s.clone().neg().add_scalar(1.0)).add_scalar(1.0));
                (z.mul(s), ds)
            }
            Activation::Exp => {
                let e = z.exp();
                (e.clone(), e)
            }
        }
    }
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
        Self { layers, activation: Activation::Silu, mass_action: false }
    }

    /// The same network with hidden activation `activation`.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// The same network as a mass-action reaction network (see [`mass_action`](Self::mass_action)),
    /// projected onto its constraints now: negative orders set to 0, the output bias to 0.
    pub fn with_mass_action(mut self) -> Self {
        self.mass_action = true;
        if let Some(l) = self.layers.first_mut() {
            let state_rows = l.d_in.saturating_sub(1) * l.d_out;
            l.w[..state_rows].iter_mut().for_each(|v| *v = v.max(0.0));
        }
        if let Some(l) = self.layers.last_mut() {
            l.b.iter_mut().for_each(|v| *v = 0.0);
        }
        self
    }

    /// The reactions of a mass-action network (one hidden layer, `exp`, `log` state inputs; see
    /// [`Reaction`]), one per hidden unit in unit order; `None` for any other network.
    pub fn reactions(&self, norm: &Normalizer) -> Option<Vec<Reaction>> {
        let [l0, l1] = self.layers.as_slice() else { return None };
        let d = l1.d_out;
        let network = self.mass_action && self.activation == Activation::Exp && norm.state_map == StateMap::Log;
        if !network || norm.state_scale.len() != d || l0.d_in != d + 1 || norm.mean.len() != d + 1 {
            return None;
        }
        let reactions = (0..l0.d_out)
            .map(|j| {
                let w = |i: usize| l0.w[i * l0.d_out + j];
                let ln_k = l0.b[j] - (0..=d).map(|i| w(i) * norm.mean[i] / norm.std[i]).sum::<f64>();
                let s: Vec<f64> = (0..d).map(|k| l1.w[j * d + k]).collect();
                let m = s.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                Reaction {
                    rate_constant: ln_k.exp() * m,
                    orders: (0..d).map(|i| w(i) / norm.std[i]).collect(),
                    eps_exponent: w(d) / norm.std[d],
                    stoichiometry: s.iter().map(|v| if m > 0.0 { v / m } else { 0.0 }).collect(),
                }
            })
            .collect();
        Some(reactions)
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
    /// Dense layers; the activation after every one but the last.
    pub layers: Vec<Linear>,
    /// Hidden activation (not a parameter).
    #[module(skip)]
    pub activation: Activation,
    /// See [`Weights::mass_action`].
    #[module(skip)]
    pub mass_action: bool,
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
        let mut layers = w
            .layers
            .iter()
            .map(|l| Linear {
                weight: Param::from_tensor(tensor2_as(l.w.clone(), l.d_in, l.d_out, device, dtype)),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(l.b.clone(), [l.d_out]),
                    (device, dtype),
                ))),
            })
            .collect::<Vec<_>>();
        if w.mass_action {
            if w.layers.last().is_some_and(|l| l.b.iter().any(|v| *v != 0.0)) {
                return Err(Error::Checkpoint {
                    path: "<weights>".into(),
                    message: "a mass-action network has no output bias, but it is nonzero".into(),
                });
            }
            layers.last_mut().expect("checked: at least one layer").bias = None;
        }
        Ok(Self { layers, activation: w.activation, mass_action: w.mass_action })
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
            activation: self.activation,
            mass_action: self.mass_action,
        }
    }

    /// Projects onto the constraints, keeping each parameter's id and whether it requires a gradient,
    /// so the optimiser's state still applies (projected gradient descent). With
    /// [`Weights::mass_action`] the first layer's state rows (the reaction orders) become
    /// `max(ν − shrink, 0)`: clamped at 0, after a proximal L1 step of `shrink` (0: none; see
    /// `train.order_l1`). The output layer has no bias
    /// to constrain. Other networks are returned as they are.
    pub fn project(mut self, shrink: f64) -> Self {
        if !self.mass_action {
            return self;
        }
        let first = &mut self.layers[0];
        first.weight = first.weight.clone().map(|w| {
            let grad = w.is_require_grad();
            let [d_in, d_out] = w.dims();
            let states = w.clone().slice([0..d_in - 1, 0..d_out]).sub_scalar(shrink).clamp_min(0.0);
            let eps = w.slice([d_in - 1..d_in, 0..d_out]);
            let w = Tensor::cat(vec![states, eps], 0).detach();
            if grad { w.require_grad() } else { w }
        });
        self
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
                h = self.activation.apply(h);
            }
        }
        h
    }

    /// Forward-mode Jacobian of the network output with respect to its (standardised) inputs: the
    /// primal and `m` input tangents are pushed through the layers together,
    ///
    /// ```text
    /// z = h W + b,  ż = ḣ W,  h' = σ(z),  ḣ' = σ'(z) ⊙ ż
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
                let (a, ds) = self.activation.with_derivative(z);
                h = a;
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

    /// A mass-action network starts projected (orders ≥ 0, no output bias), and [`Mlp::project`]
    /// shrinks and clamps the orders only (the eps row and the other layers untouched), keeping the
    /// parameter's id, so that Adam's moments still belong to it; other networks are left alone.
    #[test]
    fn mass_action_projection_shrinks_and_clamps_the_orders_only() {
        let w = Weights::init(4, 1, 5, 3, 8).with_activation(Activation::Exp);
        let m = w.clone().with_mass_action();
        let (l0, m0) = (&w.layers[0], &m.layers[0]);
        assert!(m0.w[..15].iter().zip(&l0.w).all(|(a, b)| *a == b.max(0.0)));
        assert_eq!(m0.w[15..], l0.w[15..]);
        assert!(m.layers[1].b.iter().all(|b| *b == 0.0) && w.layers[1].b.iter().any(|b| *b != 0.0));
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap().autodiff();
        let mlp = Mlp::from_weights(&m, &device, DType::F64).unwrap();
        assert!(mlp.layers[1].bias.is_none());
        let id = mlp.layers[0].weight.id;
        let p = mlp.project(0.1);
        assert_eq!(p.layers[0].weight.id, id);
        assert!(p.layers[0].weight.val().is_require_grad());
        let after = p.weights();
        for (a, b) in after.layers[0].w[..15].iter().zip(&m0.w[..15]) {
            assert!((a - (b - 0.1).max(0.0)).abs() < 1e-15, "{a} vs {b}");
        }
        assert_eq!(after.layers[0].w[15..], m0.w[15..]);
        assert_eq!((&after.layers[0].b, &after.layers[1]), (&m0.b, &m.layers[1]));
        // Not a mass-action network: nothing changes.
        let plain = Mlp::from_weights(&w, &device, DType::F64).unwrap().project(0.1).weights();
        assert_eq!(plain, w);
        // A mass-action checkpoint with an output bias is refused.
        let mut bad = m.clone();
        bad.layers[1].b[0] = 1e-3;
        assert!(Mlp::from_weights(&bad, &device, DType::F64).unwrap_err().to_string().contains("output bias"));
    }
}
