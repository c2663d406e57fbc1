//! Adam's state of networks trained together (`train::many`), member by member: the stacked state
//! split into each member's own, in the layout of a network trained alone, and members' states
//! stacked back — so that a group that is stopped saves one ordinary resumable state per member
//! (`resume.json`, [`crate::train::TrainState`]) and continues together, or alone, from them.
//!
//! Adam is elementwise. For a stacked parameter `Θ = [θ_1; …; θ_M]` (leading axis `M`) its state is
//! the step count `t`, shared, and the moments `m`, `v` of `Θ`'s shape, so member `k`'s state is
//!
//! ```text
//! t_k = t,   m_k = m[k],   v_k = v[k]        (the k-th slice along the leading axis)
//! ```
//!
//! reshaped to the parameter's shape alone (weight `[d_in, d_out]`, bias `[d_out]`; stacked
//! `[M, d_in, d_out]` and `[M, 1, d_out]`). The slices are copied byte for byte, so splitting and
//! stacking back gives the same bits, and a member continued from its state takes the steps it
//! would have taken in the group.
//!
//! The states are burn's optimiser records (burnpack: tensors `"{param id}.{field}"` tagged with the
//! parameter id, scalars such as `"{id}.momentum.time"` and `"{id}.__rank"`), read and written with
//! `burn_pack`. A member's state is keyed by the stacked parameters' ids (its network is given those
//! ids when it resumes: [`crate::model::Mlp::with_param_ids`]).

use burn::tensor::Bytes;
use burn_pack::{Reader, Scalar, Tensor as PackTensor, Writer};

use crate::error::{Error, Result};

/// The shape of one parameter: alone (a member's) and stacked without its leading axis `M`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamShape {
    /// Shape in a network trained alone (weight `[d_in, d_out]`, bias `[d_out]`).
    pub alone: Vec<usize>,
    /// Shape of one member's slice of the stacked parameter (weight `[d_in, d_out]`, bias `[1, d_out]`).
    pub stacked: Vec<usize>,
}

impl ParamShape {
    /// The parameters of an MLP with layers `(d_in, d_out)`, in [`crate::model::Mlp::param_ids`]'
    /// order: each layer's weight, then its bias.
    pub fn of_layers(layers: &[(usize, usize)]) -> Vec<ParamShape> {
        layers
            .iter()
            .flat_map(|&(i, o)| {
                [
                    ParamShape { alone: vec![i, o], stacked: vec![i, o] },
                    ParamShape { alone: vec![o], stacked: vec![1, o] },
                ]
            })
            .collect()
    }

    /// The parameters of the network `w` ([`of_layers`](Self::of_layers) of its layers).
    pub fn of(w: &crate::model::Weights) -> Vec<ParamShape> {
        Self::of_layers(&w.layers.iter().map(|l| (l.d_in, l.d_out)).collect::<Vec<_>>())
    }

    fn len(&self) -> usize {
        self.alone.iter().product()
    }
}

fn bad(message: String) -> Error {
    Error::Checkpoint { path: "resume.json".into(), message }
}

/// A record's parts, by parameter id: tensors `(field, dtype, shape, bytes)`, scalars `(field,
/// value)` and the parameter's path, when it has one.
struct Parts {
    tensors: Vec<(u64, String, burn::tensor::DType, Vec<usize>, Bytes)>,
    scalars: Vec<(u64, String, Scalar)>,
    paths: Vec<(u64, String)>,
}

/// `"{id}.{field}"` → `(id, field)`.
fn split_key(key: &str) -> Option<(u64, &str)> {
    let (id, field) = key.split_once('.')?;
    Some((id.parse().ok()?, field))
}

fn read(bytes: Vec<u8>) -> Result<Parts> {
    let reader =
        Reader::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| bad(format!("unreadable Adam state: {e}")))?;
    let mut scalars = Vec::new();
    for (k, v) in reader.scalars() {
        let (id, field) = split_key(k).ok_or_else(|| bad(format!("Adam state scalar `{k}` names no parameter")))?;
        scalars.push((id, field.to_string(), *v));
    }
    let mut paths = Vec::new();
    for (k, v) in reader.metadata() {
        if let Ok(id) = k.parse::<u64>() {
            paths.push((id, v.clone()));
        }
    }
    let mut tensors = Vec::new();
    for t in reader.into_tensors().map_err(|e| bad(format!("unreadable Adam state: {e}")))? {
        let (name, dtype, shape, id, bytes) = t.into_parts().map_err(|e| bad(format!("unreadable Adam state: {e}")))?;
        let (key_id, field) =
            split_key(&name).ok_or_else(|| bad(format!("Adam state tensor `{name}` names no parameter")))?;
        if id.is_some_and(|id| id != key_id) {
            return Err(bad(format!("Adam state tensor `{name}` is tagged with parameter {id:?}")));
        }
        tensors.push((key_id, field.to_string(), dtype, shape.to_vec(), bytes));
    }
    Ok(Parts { tensors, scalars, paths })
}

fn write(tensors: Vec<PackTensor>, scalars: Vec<(String, Scalar)>, paths: Vec<(u64, String)>) -> Result<Vec<u8>> {
    let mut w = Writer::new(tensors);
    for (k, v) in &scalars {
        w = w.with_scalar(k, *v);
    }
    for (id, p) in &paths {
        w = w.with_metadata(&id.to_string(), p);
    }
    let bytes = w.into_bytes().map_err(|e| Error::io("resume.json", std::io::Error::other(e.to_string())))?;
    Ok(bytes.to_vec())
}

/// One parameter id per parameter shape (the records are indexed by both).
fn check_ids(ids: &[u64], shapes: &[ParamShape]) -> Result<()> {
    if ids.len() == shapes.len() {
        Ok(())
    } else {
        Err(bad(format!("{} parameter ids for a network of {} parameters", ids.len(), shapes.len())))
    }
}

/// Index of parameter `id` in `ids`, or an error naming the record.
fn position(ids: &[u64], id: u64, what: &str) -> Result<usize> {
    ids.iter()
        .position(|&i| i == id)
        .ok_or_else(|| bad(format!("{what} holds parameter {id}, which the network has not")))
}

/// Splits the Adam state of `m` stacked networks (burnpack bytes, keyed by the stacked parameters'
/// ids `ids`, of shapes `shapes`) into one state per member, keyed by the same ids, each parameter
/// of its shape alone (see the module docs).
pub fn split(bytes: Vec<u8>, ids: &[u64], shapes: &[ParamShape], m: usize) -> Result<Vec<Vec<u8>>> {
    check_ids(ids, shapes)?;
    let parts = read(bytes)?;
    let mut tensors: Vec<Vec<PackTensor>> = vec![Vec::new(); m];
    for (id, field, dtype, shape, bytes) in parts.tensors {
        let p = &shapes[position(ids, id, "the stacked Adam state")?];
        let want: Vec<usize> = std::iter::once(m).chain(p.stacked.iter().copied()).collect();
        if shape != want || bytes.len() % (m * p.len()).max(1) != 0 {
            return Err(bad(format!("Adam state tensor {id}.{field} has shape {shape:?}, expected {want:?}")));
        }
        let size = bytes.len() / m;
        for (k, out) in tensors.iter_mut().enumerate() {
            let slice = Bytes::from_bytes_vec(bytes[k * size..(k + 1) * size].to_vec());
            out.push(PackTensor::new(format!("{id}.{field}"), dtype, p.alone.clone(), Some(id), slice));
        }
    }
    let scalars: Vec<(String, Scalar)> = parts
        .scalars
        .iter()
        .map(|(id, field, v)| {
            let p = &shapes[position(ids, *id, "the stacked Adam state")?];
            let v = if field == "__rank" { Scalar::from(p.alone.len()) } else { *v };
            Ok((format!("{id}.{field}"), v))
        })
        .collect::<Result<_>>()?;
    tensors.into_iter().map(|t| write(t, scalars.clone(), parts.paths.clone())).collect()
}

/// Stacks members' Adam states (`states[k]`: burnpack bytes keyed by `member_ids[k]`, the member
/// network's parameter ids in [`ParamShape::of_layers`]' order) into the state of the stacked
/// networks keyed by `ids`: the inverse of [`split`]. The members must be at the same step (equal
/// scalars) and hold the same fields; an error names the first that is not.
pub fn stack(states: Vec<Vec<u8>>, member_ids: &[Vec<u64>], ids: &[u64], shapes: &[ParamShape]) -> Result<Vec<u8>> {
    check_ids(ids, shapes)?;
    let m = states.len();
    let mut fields: Vec<(u64, String, burn::tensor::DType, Vec<u8>)> = Vec::new();
    let mut scalars: Vec<(String, Scalar)> = Vec::new();
    let mut paths = Vec::new();
    for (k, (bytes, mine)) in states.into_iter().zip(member_ids).enumerate() {
        if mine.len() != ids.len() {
            return Err(bad(format!("member {k}'s state has {} parameter ids, the network {}", mine.len(), ids.len())));
        }
        let parts = read(bytes)?;
        let what = format!("member {k}'s Adam state");
        let mut seen = 0usize;
        for (id, field, dtype, shape, data) in parts.tensors {
            let p = position(mine, id, &what)?;
            if shape != shapes[p].alone {
                return Err(bad(format!("{what}: tensor {field} has shape {shape:?}, expected {:?}", shapes[p].alone)));
            }
            let sid = ids[p];
            match fields.iter_mut().find(|(i, f, _, _)| *i == sid && *f == field) {
                Some((_, _, d, acc)) if *d == dtype && k > 0 => acc.extend_from_slice(&data),
                None if k == 0 => fields.push((sid, field, dtype, data.to_vec())),
                _ => return Err(bad(format!("{what}: tensor {field} of parameter {p} does not match member 0's"))),
            }
            seen += 1;
        }
        if k > 0 && seen != fields.len() {
            return Err(bad(format!("{what} holds {seen} tensors, member 0's {}", fields.len())));
        }
        let mut mine_scalars = Vec::new();
        for (id, field, v) in parts.scalars {
            let p = position(mine, id, &what)?;
            let v = if field == "__rank" { Scalar::from(shapes[p].stacked.len() + 1) } else { v };
            mine_scalars.push((format!("{}.{field}", ids[p]), v));
        }
        mine_scalars.sort_by(|a, b| a.0.cmp(&b.0));
        if k == 0 {
            scalars = mine_scalars;
            for (id, path) in parts.paths {
                paths.push((ids[position(mine, id, &what)?], path));
            }
        } else if mine_scalars != scalars {
            return Err(bad(format!(
                "{what} is at another step than member 0's (networks continue together only from states of the same epoch)"
            )));
        }
    }
    let tensors = fields
        .into_iter()
        .map(|(id, field, dtype, data)| {
            let p = &shapes[ids.iter().position(|&i| i == id).expect("keyed by ids")];
            let shape: Vec<usize> = std::iter::once(m).chain(p.stacked.iter().copied()).collect();
            PackTensor::new(format!("{id}.{field}"), dtype, shape, Some(id), Bytes::from_bytes_vec(data))
        })
        .collect();
    write(tensors, scalars, paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mlp, StackedMlp, Weights};
    use burn::optim::GradientsParams;
    use burn::tensor::{DType, Tensor, TensorData};

    /// A record's contents in a fixed order: tensors (id, field, dtype, shape, bytes), scalars, paths.
    #[allow(clippy::type_complexity)]
    fn canonical(
        bytes: Vec<u8>,
    ) -> (Vec<(u64, String, String, Vec<usize>, Vec<u8>)>, Vec<(u64, String, Scalar)>, Vec<(u64, String)>) {
        let Parts { tensors, mut scalars, mut paths } = read(bytes).unwrap();
        let mut t: Vec<_> =
            tensors.into_iter().map(|(i, f, d, s, b)| (i, f, format!("{d:?}"), s, b.to_vec())).collect();
        t.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        scalars.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        paths.sort();
        (t, scalars, paths)
    }

    fn net(seed: u64) -> Weights {
        Weights::init(3, 1, 5, 2, seed)
    }

    /// Two Adam steps on three stacked networks, in f32 and in f64; their state split per member and
    /// stacked back is the same record, bit for bit; each member's state loads into a network alone
    /// (in its own float type: `train::adam`), and one more step from it equals the step the group takes. A network trained alone to the same
    /// step stacks with the others; one at another step, or another shape, is refused.
    #[test]
    fn split_then_stack_is_the_identity_and_members_continue_alone() {
        split_then_stack(DType::F32, 1e-6);
        split_then_stack(DType::F64, 1e-12);
    }

    fn split_then_stack(dtype: DType, tol: f64) {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap().autodiff();
        let members: Vec<Weights> = (1..=3).map(net).collect();
        let refs: Vec<&Weights> = members.iter().collect();
        let mut model = StackedMlp::from_members(&refs, &device, dtype).unwrap();
        let mut optim = crate::train::adam::adam();
        let x = |m: usize| {
            Tensor::<3>::from_data(
                TensorData::new((0..m * 4 * 3).map(|i| (i as f64).sin()).collect::<Vec<_>>(), [m, 4, 3]),
                (&device, dtype),
            )
        };
        let step = |model: StackedMlp, optim: &mut burn::optim::ModuleOptimizer| {
            let loss = model.forward(x(3)).square().sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            optim.step(1e-2, model, grads)
        };
        for _ in 0..2 {
            model = step(model, &mut optim);
        }
        let ids = model.param_ids();
        let shapes = ParamShape::of_layers(&[(3, 5), (5, 2)]);
        let bytes = optim.into_bytes().unwrap().to_vec();
        let parts = split(bytes.clone(), &ids, &shapes, 3).unwrap();
        assert_eq!(parts.len(), 3);
        let back = stack(parts.clone(), &vec![ids.clone(); 3], &ids, &shapes).unwrap();
        // The same tensors, scalars and paths (burn writes them in a hash map's order).
        assert!(canonical(back) == canonical(bytes.clone()), "split then stack must give the same record");

        // The group's next step, and each member's from its own state alone.
        let weights = model.weights();
        let next = step(model, &mut optim).weights();
        for (k, w) in weights.iter().enumerate() {
            let alone = Mlp::from_weights(w, &device, dtype).unwrap().with_param_ids(&ids).unwrap();
            let mut o = crate::train::adam::adam().from_bytes(Bytes::from_bytes_vec(parts[k].clone())).unwrap();
            let xi = x(3).slice([k..k + 1, 0..4, 0..3]).reshape([4, 3]);
            let loss = alone.forward(xi).square().sum();
            let grads = GradientsParams::from_grads(loss.backward(), &alone);
            let got = o.step(1e-2, alone, grads).weights();
            for (a, b) in got.layers.iter().zip(&next[k].layers) {
                for (u, v) in a.w.iter().chain(&a.b).zip(b.w.iter().chain(&b.b)) {
                    assert!((u - v).abs() <= tol * v.abs().max(1e-3), "{dtype:?} member {k}: {u} vs {v}");
                }
            }
        }
        // Members at different steps, or of another shape, are refused.
        let mut other = crate::train::adam::adam();
        let single = Mlp::from_weights(&members[0], &device, dtype).unwrap();
        let loss = single.forward(x(1).reshape([4, 3])).square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &single);
        let single = other.step(1e-2, single, grads);
        let lone = other.into_bytes().unwrap().to_vec();
        let e = stack(vec![parts[0].clone(), lone], &[ids.clone(), single.param_ids()], &ids, &shapes).unwrap_err();
        assert!(e.to_string().contains("another step"), "{e}");
        // One more step alone: the same step count as the group's, so it stacks.
        let loss = single.forward(x(1).reshape([4, 3])).square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &single);
        let single = other.step(1e-2, single, grads);
        let lone = other.into_bytes().unwrap().to_vec();
        let member_ids = [single.param_ids(), ids.clone(), ids.clone()];
        stack(vec![lone, parts[1].clone(), parts[2].clone()], &member_ids, &ids, &shapes).unwrap();
        let e = split(bytes, &ids, &ParamShape::of_layers(&[(3, 4), (4, 2)]), 3).unwrap_err();
        assert!(e.to_string().contains("shape"), "{e}");
    }
}
