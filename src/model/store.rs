//! The network's parameters as a [safetensors](https://huggingface.co/docs/safetensors) file: the
//! weights of checkpoint format 2 (`docs/checkpoint-format.md`), readable from NumPy, PyTorch, JAX or
//! any language with a safetensors reader.
//!
//! Layer `i` (input first) is stored as two `F64` tensors in PyTorch's `nn.Linear` convention,
//!
//! ```text
//! layers.{i}.weight : [d_out, d_in],   layers.{i}.bias : [d_out],    h_{i+1} = h_i Wᵀ + b
//! ```
//!
//! i.e. the transpose of the host layout of [`LayerWeights::w`] (`d_in × d_out`, `h W + b`, burn's), so
//! that a PyTorch module with an `nn.ModuleList` of `nn.Linear` named `layers` takes the file as its
//! state dict (`benches/python_bench.py` loads it layer by layer). f64 holds an
//! f32-trained network exactly and an f64-trained one without rounding. A mass-action network's output
//! bias, which it does not have, is stored as zeros.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::weights::{Activation, LayerWeights, Weights};

/// Name of the weight tensor of layer `i`.
pub fn weight_name(i: usize) -> String {
    format!("layers.{i}.weight")
}

/// Name of the bias tensor of layer `i`.
pub fn bias_name(i: usize) -> String {
    format!("layers.{i}.bias")
}

/// Little-endian bytes of `v`.
fn le_bytes(v: impl IntoIterator<Item = f64>) -> Vec<u8> {
    v.into_iter().flat_map(f64::to_le_bytes).collect()
}

impl Weights {
    /// The layers as a safetensors file (see the module docs), with `metadata` in its header.
    pub fn to_safetensors(&self, metadata: HashMap<String, String>) -> Vec<u8> {
        let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                // [d_out, d_in]: element (o, k) is the host w[k · d_out + o].
                let wt = (0..l.d_out).flat_map(|o| (0..l.d_in).map(move |k| l.w[k * l.d_out + o]));
                [
                    (weight_name(i), vec![l.d_out, l.d_in], le_bytes(wt)),
                    (bias_name(i), vec![l.d_out], le_bytes(l.b.iter().copied())),
                ]
            })
            .collect();
        let views = buffers.iter().map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F64, shape.clone(), bytes).expect("sizes follow from the shapes");
            (name.clone(), view)
        });
        safetensors::serialize(views, Some(metadata)).expect("in-memory serialisation of valid views")
    }

    /// Reads the layers back from a safetensors file: `shapes` are the `(d_in, d_out)` the metadata
    /// promises, checked against every tensor's name, dtype and shape.
    pub fn from_safetensors(
        bytes: &[u8],
        shapes: &[(usize, usize)],
        activation: Activation,
        mass_action: bool,
    ) -> std::result::Result<Self, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
        let read = |name: &str, shape: &[usize]| -> std::result::Result<Vec<f64>, String> {
            let t = st.tensor(name).map_err(|_| format!("tensor `{name}` is missing"))?;
            if t.dtype() != Dtype::F64 || t.shape() != shape {
                return Err(format!("tensor `{name}` is {:?} {:?}, expected F64 {shape:?}", t.dtype(), t.shape()));
            }
            Ok(t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
        };
        let expected = 2 * shapes.len();
        if st.len() != expected {
            return Err(format!("{} tensors, expected {expected} (a weight and a bias per layer)", st.len()));
        }
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(i, &(d_in, d_out))| {
                let wt = read(&weight_name(i), &[d_out, d_in])?;
                let w =
                    (0..d_in).flat_map(|k| (0..d_out).map(move |o| (k, o))).map(|(k, o)| wt[o * d_in + k]).collect();
                Ok(LayerWeights { d_in, d_out, w, b: read(&bias_name(i), &[d_out])? })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        let w = Weights { layers, activation, mass_action };
        w.check()?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_and_layout_is_pytorch() {
        let w = Weights::init(3, 2, 5, 2, 7).with_activation(Activation::Exp);
        let bytes = w.to_safetensors(HashMap::new());
        let shapes: Vec<(usize, usize)> = w.layers.iter().map(|l| (l.d_in, l.d_out)).collect();
        let back = Weights::from_safetensors(&bytes, &shapes, Activation::Exp, false).unwrap();
        assert_eq!(back, w);
        // PyTorch layout: weight[o][k] is the host w[k * d_out + o].
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("layers.0.weight").unwrap();
        assert_eq!(t.shape(), &[5, 3]);
        let v = |i: usize| f64::from_le_bytes(t.data()[8 * i..8 * i + 8].try_into().unwrap());
        assert_eq!(v(1), w.layers[0].w[5]); // (o = 0, k = 1)
        assert_eq!(v(3), w.layers[0].w[1]); // (o = 1, k = 0)
    }

    #[test]
    fn wrong_shapes_and_missing_tensors_are_named() {
        let w = Weights::init(3, 1, 4, 2, 1);
        let bytes = w.to_safetensors(HashMap::new());
        let e = Weights::from_safetensors(&bytes, &[(3, 5), (5, 2)], Activation::Silu, false).unwrap_err();
        assert!(e.contains("layers.0.weight") && e.contains("[5, 3]"), "{e}");
        let e = Weights::from_safetensors(&bytes, &[(3, 4)], Activation::Silu, false).unwrap_err();
        assert!(e.contains("4 tensors, expected 2"), "{e}");
        let e = Weights::from_safetensors(b"garbage", &[(3, 4)], Activation::Silu, false).unwrap_err();
        assert!(e.contains("not a safetensors file"), "{e}");
    }
}
