//! The network as a burn module ([`Mlp`]): loaded from [`Weights`] onto any device and precision,
//! forward and forward-mode tangent passes, and the mass-action projection; and the host ↔ tensor
//! helpers ([`to_f64`], [`tensor2`], [`tensor2_as`]).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::error::{Error, Result};

use super::weights::{Activation, LayerWeights, Weights};

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

    /// The parameters' ids in layer order (weight, then bias): what an optimiser's saved state is
    /// keyed by (`train::TrainState`).
    pub fn param_ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        for l in &self.layers {
            ids.push(l.weight.id.val());
            if let Some(b) = &l.bias {
                ids.push(b.id.val());
            }
        }
        ids
    }

    /// The same network with the parameter ids `ids` ([`param_ids`](Self::param_ids) of the network
    /// whose optimiser state is restored), or an error when their number does not match.
    pub fn with_param_ids(mut self, ids: &[u64]) -> Result<Self> {
        let n = self.param_ids().len();
        if ids.len() != n {
            return Err(Error::Checkpoint {
                path: "<train state>".into(),
                message: format!("{} parameter ids for a network with {n} parameters", ids.len()),
            });
        }
        let mut it = ids.iter().map(|&i| burn::module::ParamId::from(i));
        for l in &mut self.layers {
            let w = l.weight.val();
            l.weight = Param::initialized(it.next().expect("counted"), w);
            if let Some(b) = l.bias.take() {
                l.bias = Some(Param::initialized(it.next().expect("counted"), b.val()));
            }
        }
        Ok(self)
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
    /// `train.order_l1`); with `fixed` (`d × width`, row-major: `train.fixed_orders`, from
    /// `model.keep_orders`) they are set back to those values instead. The output layer has no bias
    /// to constrain. Other networks are returned as they are.
    pub fn project(mut self, shrink: f64, fixed: Option<&[f64]>) -> Self {
        if !self.mass_action {
            return self;
        }
        let first = &mut self.layers[0];
        first.weight = first.weight.clone().map(|w| {
            let grad = w.is_require_grad();
            let [d_in, d_out] = w.dims();
            let states = match fixed.filter(|f| f.len() == (d_in - 1) * d_out) {
                Some(f) => tensor2_as(f.to_vec(), d_in - 1, d_out, &w.device(), w.dtype()),
                None => w.clone().slice([0..d_in - 1, 0..d_out]).sub_scalar(shrink).clamp_min(0.0),
            };
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
            h = layer(l, h);
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
    /// autodiff graph). The `m` tangents travel stacked as one `[m n, d_in]` matrix, so that each layer
    /// does one tangent matmul (`[m n, k] × [k, k']`, where a gemm kernel runs at full speed) and one
    /// product with `σ'(z)` broadcast over the `m` tangents, not `m` small ones.
    ///
    /// # Shapes
    /// - `h0`: `[n, d_in]`; `tangents`: `m` tensors `[n, d_in]` (the input directions)
    /// - returns `(a, ȧ)`: `a` is `[n, d_out]`, `ȧ` is `m` tensors `[n, d_out]`
    pub fn forward_tangents(&self, h0: Tensor<2>, tangents: Vec<Tensor<2>>) -> (Tensor<2>, Vec<Tensor<2>>) {
        let m = tangents.len();
        if m == 0 {
            return (self.forward(h0), Vec::new());
        }
        let last = self.layers.len() - 1;
        let mut h = h0;
        let mut t = Tensor::cat(tangents, 0);
        for (i, l) in self.layers.iter().enumerate() {
            let w = l.weight.val();
            let z = layer(l, h);
            t = t.matmul(w);
            if i < last {
                let (a, ds) = self.activation.with_derivative(z);
                h = a;
                // `[m, n, k] ⊙ [1, n, k]`: σ'(z) broadcast over the m tangents, not copied m times.
                let [n, k] = ds.dims();
                t = t.reshape([m, n, k]).mul(ds.unsqueeze_dim::<3>(0)).reshape([m * n, k]);
            } else {
                h = z;
            }
        }
        (h, t.chunk(m, 0))
    }
}

/// One dense layer `h W + b`: one fused operation on flex (`model::linear`), burn's `Linear`
/// elsewhere and for a layer without bias (a mass-action network's output layer). Bit for bit the
/// same either way on flex.
fn layer(l: &Linear, h: Tensor<2>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if let Some(b) = &l.bias
        && super::silu::on_flex(&h.device())
    {
        return super::linear::fused(h, l.weight.val(), b.val());
    }
    l.forward(h)
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
        let p = mlp.project(0.1, None);
        assert_eq!(p.layers[0].weight.id, id);
        assert!(p.layers[0].weight.val().is_require_grad());
        let after = p.weights();
        for (a, b) in after.layers[0].w[..15].iter().zip(&m0.w[..15]) {
            assert!((a - (b - 0.1).max(0.0)).abs() < 1e-15, "{a} vs {b}");
        }
        assert_eq!(after.layers[0].w[15..], m0.w[15..]);
        assert_eq!((&after.layers[0].b, &after.layers[1]), (&m0.b, &m.layers[1]));
        // Not a mass-action network: nothing changes.
        let plain = Mlp::from_weights(&w, &device, DType::F64).unwrap().project(0.1, None).weights();
        assert_eq!(plain, w);
        // A mass-action checkpoint with an output bias is refused.
        let mut bad = m.clone();
        bad.layers[1].b[0] = 1e-3;
        assert!(Mlp::from_weights(&bad, &device, DType::F64).unwrap_err().to_string().contains("output bias"));
    }
}
