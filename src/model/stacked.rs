//! `M` MLPs of one shape stacked along a leading axis, so that each layer of all of them is one
//! batched matrix product: the model of networks trained together (`train::many`) and of
//! networks evaluated together (`eval::stacked`: a group's or an ensemble's Jacobians in one pass).
//!
//! Member `m`'s layer computes, on its own inputs `X_m`,
//!
//! ```text
//! Z = X W + b,   X: [M, n, d_in],  W: [M, d_in, d_out],  b: [M, 1, d_out]   (Z_m = X_m W_m + b_m)
//! ```
//!
//! and forward-mode tangents travel with the primal as in `Mlp::forward_tangents`:
//! `Ż = Ẋ W`, `Ḣ' = σ'(Z) ⊙ Ż`, the `q` tangents of every member stacked as one `[M, q n, d_in]`
//! tensor.

use burn::module::{Module, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::mlp::to_f64;
use super::weights::{Activation, LayerWeights, Weights};
use crate::error::{Error, Result};

/// One dense layer of `M` stacked networks.
#[derive(Module, Debug)]
pub struct StackedLinear {
    /// `[M, d_in, d_out]`.
    pub weight: Param<Tensor<3>>,
    /// `[M, 1, d_out]`.
    pub bias: Param<Tensor<3>>,
}

/// `M` MLPs of one shape, stacked along a leading axis.
#[derive(Module, Debug)]
pub struct StackedMlp {
    /// Dense layers; the activation after every one but the last.
    pub layers: Vec<StackedLinear>,
    /// Hidden activation (not a parameter).
    #[module(skip)]
    pub activation: Activation,
}

impl StackedMlp {
    /// Stacks `members` (same layer shapes and activation, none mass-action) onto `device` as `dtype`.
    pub fn from_members(members: &[&Weights], device: &Device, dtype: DType) -> Result<Self> {
        let first = members.first().ok_or_else(|| Error::Unsupported("stacking no networks".into()))?;
        let m = members.len();
        let shape = |w: &Weights| w.layers.iter().map(|l| (l.d_in, l.d_out)).collect::<Vec<_>>();
        for (i, w) in members.iter().enumerate() {
            w.check().map_err(|e| Error::Checkpoint { path: format!("<member {i}>").into(), message: e })?;
            if shape(w) != shape(first) || w.activation != first.activation || w.mass_action {
                return Err(Error::Unsupported(format!(
                    "member {i} cannot be stacked with member 0: networks trained together need the same layers and activation, and no mass-action constraint"
                )));
            }
        }
        let layers = (0..first.layers.len())
            .map(|l| {
                let (d_in, d_out) = (first.layers[l].d_in, first.layers[l].d_out);
                let w: Vec<f64> = members.iter().flat_map(|w| w.layers[l].w.iter().copied()).collect();
                let b: Vec<f64> = members.iter().flat_map(|w| w.layers[l].b.iter().copied()).collect();
                StackedLinear {
                    weight: Param::from_tensor(Tensor::from_data(
                        TensorData::new(w, [m, d_in, d_out]),
                        (device, dtype),
                    )),
                    bias: Param::from_tensor(Tensor::from_data(TensorData::new(b, [m, 1, d_out]), (device, dtype))),
                }
            })
            .collect();
        Ok(Self { layers, activation: first.activation })
    }

    /// The parameters' ids in layer order (weight, then bias): what the optimiser's state of the
    /// networks trained together is keyed by (`train::stacked_adam`).
    pub fn param_ids(&self) -> Vec<u64> {
        self.layers.iter().flat_map(|l| [l.weight.id.val(), l.bias.id.val()]).collect()
    }

    /// Number of stacked networks.
    pub fn members(&self) -> usize {
        self.layers[0].weight.val().dims()[0]
    }

    /// Copies every member's parameters back to the host (exactly).
    pub fn weights(&self) -> Vec<Weights> {
        let m = self.members();
        let host: Vec<(usize, usize, Vec<f64>, Vec<f64>)> = self
            .layers
            .iter()
            .map(|l| {
                let [_, d_in, d_out] = l.weight.val().dims();
                (d_in, d_out, to_f64(l.weight.val()), to_f64(l.bias.val()))
            })
            .collect();
        (0..m)
            .map(|i| Weights {
                layers: host
                    .iter()
                    .map(|(d_in, d_out, w, b)| LayerWeights {
                        d_in: *d_in,
                        d_out: *d_out,
                        w: w[i * d_in * d_out..(i + 1) * d_in * d_out].to_vec(),
                        b: b[i * d_out..(i + 1) * d_out].to_vec(),
                    })
                    .collect(),
                activation: self.activation,
                mass_action: false,
            })
            .collect()
    }

    /// Every member's output for its own standardised inputs.
    ///
    /// # Shapes
    /// - `h0`: `[M, n, d_in]`; output `[M, n, d_out]`
    pub fn forward(&self, h0: Tensor<3>) -> Tensor<3> {
        let last = self.layers.len() - 1;
        let mut h = h0;
        for (i, l) in self.layers.iter().enumerate() {
            h = layer(h, l.weight.val(), l.bias.val());
            if i < last {
                let [m, n, k] = h.dims();
                h = self.activation.apply(h.reshape([m * n, k])).reshape([m, n, k]);
            }
        }
        h
    }

    /// Every member's output and its forward-mode derivatives along `q` input directions of its
    /// own (member `m`'s tangent `k` is `tangents[k][m]`), pushed through the layers with the primal:
    /// one batched tangent product per layer for all members and all `q` directions.
    ///
    /// # Shapes
    /// - `h0`: `[M, n, d_in]`; `tangents`: `q` tensors `[M, n, d_in]`
    /// - returns `(a, ȧ)`: `a` is `[M, n, d_out]`, `ȧ` is `q` tensors `[M, n, d_out]`
    pub fn forward_tangents(&self, h0: Tensor<3>, tangents: Vec<Tensor<3>>) -> (Tensor<3>, Vec<Tensor<3>>) {
        let q = tangents.len();
        if q == 0 {
            return (self.forward(h0), Vec::new());
        }
        let last = self.layers.len() - 1;
        let mut h = h0;
        let mut t = Tensor::cat(tangents, 1);
        for (i, l) in self.layers.iter().enumerate() {
            let w = l.weight.val();
            let z = layer(h, w.clone(), l.bias.val());
            t = t.matmul(w);
            if i < last {
                let [m, n, k] = z.dims();
                let (a, ds) = self.activation.with_derivative(z.reshape([m * n, k]));
                h = a.reshape([m, n, k]);
                // `[M, q, n, k] ⊙ [M, 1, n, k]`: σ'(z) broadcast over the q tangents.
                t = t.reshape([m, q, n * k]).mul(ds.reshape([m, 1, n * k])).reshape([m, q * n, k]);
            } else {
                h = z;
            }
        }
        (h, t.chunk(q, 1))
    }
}

/// `X W + b` for every member: one fused operation on flex (`model::linear`, bit for bit the same),
/// a batched `matmul` and `add` elsewhere.
fn layer(x: Tensor<3>, w: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
    #[cfg(feature = "flex")]
    return super::linear::linear(x, w, b);
    #[cfg(not(feature = "flex"))]
    x.matmul(w).add(b)
}
