//! The canonical, backend-independent form of a network ([`Weights`]: host `f64` layers and the hidden
//! [`Activation`]), its initialisation, and the reactions of a mass-action network ([`Reaction`]).

use burn::tensor::Tensor;
#[cfg(not(feature = "flex"))]
use burn::tensor::activation::silu;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use super::normalizer::{Normalizer, StateMap};

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
    /// the orders' constraint after every Adam step and every L-BFGS round (`Mlp::project`).
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
            // One pass forward and one backward on flex (`model::silu`), burn's `silu` elsewhere.
            #[cfg(feature = "flex")]
            Activation::Silu => super::silu::silu(z),
            #[cfg(not(feature = "flex"))]
            Activation::Silu => silu(z),
            Activation::Exp => z.exp(),
        }
    }

    /// `(σ(z), σ'(z))` on a tensor.
    pub fn with_derivative(self, z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self {
            // Two passes on flex (`model::silu`): the fused SiLU and its derivative (on an autodiff
            // device the derivative is burn's composed one, differentiable for the Jacobian loss).
            #[cfg(feature = "flex")]
            Activation::Silu if super::silu::on_flex(&z.device()) => {
                (super::silu::silu(z.clone()), super::silu::silu_derivative(z))
            }
            Activation::Silu => {
                // σ' = s (1 + z − z s) with s = sigmoid(z): five elementwise passes, the last two in
                // place (their inputs are no longer shared).
                let s = burn::tensor::activation::sigmoid(z.clone());
                let a = z.clone().mul(s.clone());
                let ds = z.sub(a.clone()).add_scalar(1.0).mul(s);
                (a, ds)
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
