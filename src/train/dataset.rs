//! Training data in network space ([`Dataset`]: inputs, targets, loss weights, difference-loss pairs,
//! Jacobian labels), the network over some of its rows ([`Forward`]) and the training loss with its
//! parameter gradients: on the host in chunks ([`evaluate_loss`]), and over a batch, data-parallel in
//! shards ([`batch_gradients`], [`shards_for`]).

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::Result;
use crate::model::{Mlp, Weights, tensor2_as, to_f64};
use crate::train::config::TrainConfig;

/// Training data in network space: standardised inputs and transformed targets, held in `f64` and
/// converted to the training precision ([`TrainConfig::precision`]) batch by batch.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Inputs, `n × d_in`.
    pub inputs: Vec<f64>,
    /// Targets, `n × d_out`.
    pub targets: Vec<f64>,
    /// Loss weights, `n × d_out`, or empty for the plain mean squared error. The loss is
    /// `Σ w_ik (ŷ_ik − y_ik)² / (n · d_out)` (`train.weighting`, [`relative_weights`](crate::train::weights::relative_weights)).
    pub weights: Vec<f64>,
    /// Difference-loss partners, `n` rows or empty: row `i`'s partner (a cloud sample's base trajectory
    /// point in the same split), `u32::MAX` for none.
    pub partner: Vec<u32>,
    /// Difference-loss weights, `n × d_out`, or empty for no difference term. With `e = ŷ − y`, the
    /// loss gains `Σ_{i with a partner p} Σ_k ω_ik (e_ik − e_pk)²` (same normalisation as the value
    /// term): the *change* of the output between a sample and its partner is fitted, not only the
    /// values, so that the directional derivatives of the learned field — its Jacobian along the cloud
    /// offsets — are trained directly (first-order Sobolev training with finite differences, no
    /// second-order autodiff). See [`difference_weights`](crate::train::weights::difference_weights).
    pub pair_weights: Vec<f64>,
    /// Jacobian labels, `n × jac_axes × d_out` (axis-major: entry `j · d_out + k` of a row is
    /// `∂y_k/∂x_j` in network space), or empty for no Jacobian term. Rows with all-zero
    /// [`jacobian_weights`](Self::jacobian_weights) carry none (cloud samples).
    pub jacobian: Vec<f64>,
    /// Jacobian-loss weights, same shape. With `ȧ_j` the network's output tangent along input axis `j`
    /// (forward mode, [`Mlp::forward_tangents`]), the loss gains `Σ_i Σ_jk ω_ijk (ȧ_ijk − J_ijk)²`
    /// (same normalisation as the value term): exact first-order Sobolev training. See
    /// [`jacobian_labels`](crate::train::weights::jacobian_labels).
    pub jacobian_weights: Vec<f64>,
    /// Number of input axes (the first ones: the states) with Jacobian labels.
    pub jac_axes: usize,
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
}

/// The network evaluated over some rows of a [`Dataset`] ([`Dataset::forward`]).
pub struct Forward {
    /// The rows, in the order of the tensors below (those with Jacobian labels last).
    pub rows: Vec<usize>,
    /// Network outputs, `rows.len() × d_out`.
    pub pred: Tensor<2>,
    /// Targets, `rows.len() × d_out`.
    pub targets: Tensor<2>,
    /// Loss weights, `rows.len() × d_out`, when the dataset has any.
    pub weights: Option<Tensor<2>>,
    /// The Jacobian term of the loss, when some of the rows carry Jacobian labels.
    pub jacobian: Option<Tensor<1>>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.len() / self.d_in.max(1)
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Gathers the rows `idx` into new input, target and weight arrays (weights empty when
    /// unweighted).
    pub fn gather(&self, idx: &[usize]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut x = Vec::with_capacity(idx.len() * self.d_in);
        let mut y = Vec::with_capacity(idx.len() * self.d_out);
        let mut w = Vec::with_capacity(if self.weights.is_empty() { 0 } else { idx.len() * self.d_out });
        for &i in idx {
            x.extend_from_slice(&self.inputs[i * self.d_in..(i + 1) * self.d_in]);
            y.extend_from_slice(&self.targets[i * self.d_out..(i + 1) * self.d_out]);
            if !self.weights.is_empty() {
                w.extend_from_slice(&self.weights[i * self.d_out..(i + 1) * self.d_out]);
            }
        }
        (x, y, w)
    }

    /// Whether the loss has a difference term.
    pub fn has_pairs(&self) -> bool {
        !self.pair_weights.is_empty()
    }

    /// Row groups for batching with a difference term: every row with its partner, so that a pair
    /// lands in one batch (in row order of first appearance; rows without partner and not anyone's
    /// partner are groups of one).
    pub fn pair_groups(&self) -> Vec<Vec<usize>> {
        let n = self.len();
        let mut group_of = vec![usize::MAX; n];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in 0..n {
            let p = self.partner.get(i).copied().unwrap_or(u32::MAX);
            let root = if p == u32::MAX { i } else { p as usize };
            if group_of[root] == usize::MAX {
                group_of[root] = groups.len();
                groups.push(vec![root]);
            }
            if root != i {
                groups[group_of[root]].push(i);
            }
        }
        groups
    }

    /// The pairs among `rows` (both ends in `rows`): local `(row, partner)` indices and the row's
    /// difference weights, `pairs × d_out`.
    fn local_pairs(&self, rows: &[usize]) -> (Vec<i32>, Vec<i32>, Vec<f64>) {
        let local: std::collections::HashMap<usize, usize> = rows.iter().enumerate().map(|(l, &r)| (r, l)).collect();
        let (mut a, mut b, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for (l, &r) in rows.iter().enumerate() {
            let p = self.partner[r];
            if let Some(&lp) = (p != u32::MAX).then(|| local.get(&(p as usize))).flatten() {
                a.push(l as i32);
                b.push(lp as i32);
                w.extend_from_slice(&self.pair_weights[r * self.d_out..(r + 1) * self.d_out]);
            }
        }
        (a, b, w)
    }

    /// Summed loss of `rows` given the network's outputs there: the (weighted) squared errors plus the
    /// difference term over the pairs among `rows`.
    fn summed_loss(&self, rows: &[usize], pred: Tensor<2>, y: Tensor<2>, w: Option<Tensor<2>>) -> Tensor<1> {
        let e = pred.sub(y);
        if !self.has_pairs() {
            return Self::weighted_square(e, w).sum();
        }
        let (device, dtype) = (e.device(), e.dtype());
        let values = Self::weighted_square(e.clone(), w).sum();
        let (a, b, pw) = self.local_pairs(rows);
        if a.is_empty() {
            return values;
        }
        let n = a.len();
        let ints = |v: Vec<i32>| Tensor::<1, Int>::from_ints(TensorData::new(v, [n]), &device);
        let diff = e.clone().select(0, ints(a)).sub(e.select(0, ints(b)));
        values.add(diff.square().mul(tensor2_as(pw, n, self.d_out, &device, dtype)).sum())
    }

    /// Whether the loss has a Jacobian term.
    pub fn has_jacobian(&self) -> bool {
        !self.jacobian_weights.is_empty()
    }

    /// Whether row `r` carries Jacobian labels (a positive weight on any entry).
    fn is_labelled(&self, r: usize) -> bool {
        let stride = self.jac_axes * self.d_out;
        self.has_jacobian() && self.jacobian_weights[r * stride..(r + 1) * stride].iter().any(|v| *v > 0.0)
    }

    /// `rows` with those that carry Jacobian labels moved to the end (each part keeps its order), and
    /// how many of them there are: the row order [`forward`](Self::forward) evaluates in. Unchanged
    /// (and 0) without a Jacobian term.
    pub fn labelled_last(&self, rows: &[usize]) -> (Vec<usize>, usize) {
        if !self.has_jacobian() {
            return (rows.to_vec(), 0);
        }
        let (labelled, plain): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| self.is_labelled(r));
        let n_labelled = labelled.len();
        (plain.into_iter().chain(labelled).collect(), n_labelled)
    }

    /// The network over `rows` on `device`: the rows reordered by [`labelled_last`](Self::labelled_last),
    /// the outputs `ŷ` and targets `y` in that order (and the loss weights, when there are any), and the
    /// Jacobian term of the loss, `Σ ω (ȧ − J)²` over the rows that carry Jacobian labels, the tangents
    /// `ȧ` pushed through `model` in forward mode along the first [`jac_axes`](Self::jac_axes) input
    /// axes (`None` when no row has labels). The labelled rows' outputs are the primal of that same
    /// forward-mode pass, so that no row goes through the network twice. Differentiable in the weights
    /// on an autodiff device; in the model's precision ([`Mlp::dtype`]).
    pub fn forward(&self, model: &Mlp, rows: &[usize], device: &Device) -> Forward {
        let (rows, n_l) = self.labelled_last(rows);
        let (x, y, w) = self.gather(&rows);
        let n = rows.len();
        let dtype = model.dtype();
        // Host data (f64) to a `[len / cols, cols]` tensor in the model's precision.
        let tensor = |v: Vec<f64>, cols: usize| {
            let len = v.len() / cols;
            tensor2_as(v, len, cols, device, dtype)
        };
        let x = tensor(x, self.d_in);
        let targets = tensor(y, self.d_out);
        let weights = (!w.is_empty()).then(|| tensor(w, self.d_out));
        if n_l == 0 {
            return Forward { pred: model.forward(x), targets, weights, jacobian: None, rows };
        }
        let stride = self.jac_axes * self.d_out;
        debug_assert!(self.jac_axes <= self.d_in, "Jacobian labels on {} of {} input axes", self.jac_axes, self.d_in);
        debug_assert!(self.jacobian.len() == self.len() * stride && self.jacobian_weights.len() == self.len() * stride);
        let (mut target, mut weight) = (Vec::with_capacity(n_l * stride), Vec::with_capacity(n_l * stride));
        for &r in &rows[n - n_l..] {
            target.extend_from_slice(&self.jacobian[r * stride..(r + 1) * stride]);
            weight.extend_from_slice(&self.jacobian_weights[r * stride..(r + 1) * stride]);
        }
        let tangents = (0..self.jac_axes)
            .map(|j| {
                let mut e = vec![0.0f64; n_l * self.d_in];
                e.iter_mut().skip(j).step_by(self.d_in).for_each(|v| *v = 1.0);
                tensor(e, self.d_in)
            })
            .collect();
        let (a, dots) = model.forward_tangents(x.clone().narrow(0, n - n_l, n_l), tangents);
        let e = Tensor::cat(dots, 1).sub(tensor(target, stride));
        let jacobian = Some(e.square().mul(tensor(weight, stride)).sum());
        let pred = if n_l == n { a } else { Tensor::cat(vec![model.forward(x.narrow(0, 0, n - n_l)), a], 0) };
        Forward { pred, targets, weights, jacobian, rows }
    }

    /// Squared errors `e²` (`e = ŷ − y`), times the weights when there are any.
    fn weighted_square(e: Tensor<2>, w: Option<Tensor<2>>) -> Tensor<2> {
        let se = e.square();
        match w {
            Some(w) => se.mul(w),
            None => se,
        }
    }
}

impl Dataset {
    /// [`synthetic`](Self::synthetic) with 3 inputs and 2 targets that are a smooth field of the inputs,
    /// `(sin(x0 + x1/2), x1·x2 − 0.3·x0)`, rather than noise: a fit an optimiser can drive down.
    pub fn synthetic_smooth(n: usize, seed: u64) -> (Self, Self) {
        let (mut train, mut val) = Self::synthetic(n, 3, 2, seed);
        for d in [&mut train, &mut val] {
            d.targets =
                d.inputs.chunks(3).flat_map(|x| [(x[0] + 0.5 * x[1]).sin(), x[1] * x[2] - 0.3 * x[0]]).collect();
        }
        (train, val)
    }

    /// Random standard-normal inputs (`n × d_in`) and targets (`n × d_out`) for throughput
    /// benchmarks, with a 1024-sample validation set cut from the same data.
    pub fn synthetic(n: usize, d_in: usize, d_out: usize, seed: u64) -> (Self, Self) {
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = StdRng::seed_from_u64(seed);
        // Drawn in f32 (as before the dataset held f64), so that benchmarks keep their data.
        let mut g = || -> f64 {
            let v: f32 = StandardNormal.sample(&mut rng);
            v.into()
        };
        let train = Dataset {
            inputs: (0..n * d_in).map(|_| g()).collect(),
            targets: (0..n * d_out).map(|_| g()).collect(),
            weights: Vec::new(),
            partner: Vec::new(),
            pair_weights: Vec::new(),
            d_in,
            d_out,
            ..Default::default()
        };
        let m = n.min(1024);
        let val = Dataset {
            inputs: train.inputs[..d_in * m].to_vec(),
            targets: train.targets[..d_out * m].to_vec(),
            weights: Vec::new(),
            partner: Vec::new(),
            pair_weights: Vec::new(),
            d_in,
            d_out,
            ..Default::default()
        };
        (train, val)
    }
}

/// The validation loss of `weights` in precision `dtype`, NaN when they are not finite.
pub fn validation_loss(weights: &Weights, val: &Dataset, device: &Device, dtype: DType) -> Result<f64> {
    match weights.check() {
        Ok(()) => evaluate_loss(weights, val, device, dtype),
        Err(_) => Ok(f64::NAN),
    }
}

/// The training loss of `model` on `data` — the (weighted) mean squared error plus the difference and
/// Jacobian terms when `data` has them, all over `n · d_out` — evaluated in chunks on a plain
/// (non-autodiff) device in precision `dtype`.
pub fn evaluate_loss(weights: &Weights, data: &Dataset, device: &Device, dtype: DType) -> Result<f64> {
    let model = Mlp::from_weights(weights, device, dtype)?;
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut sum = 0.0;
    // With a difference term: every row's error, for the pairs (which may straddle chunks).
    let d = data.d_out;
    let mut errors: Vec<f64> = vec![0.0; if data.has_pairs() { data.len() * d } else { 0 }];
    for chunk in idx.chunks(65_536) {
        let f = data.forward(&model, chunk, device);
        if let Some(j) = f.jacobian {
            sum += to_f64(j)[0];
        }
        let e = f.pred.sub(f.targets);
        if data.has_pairs() {
            for (r, v) in f.rows.iter().zip(to_f64(e.clone()).chunks(d)) {
                errors[r * d..(r + 1) * d].copy_from_slice(v);
            }
        }
        sum += to_f64(Dataset::weighted_square(e, f.weights).sum())[0];
    }
    for (i, &p) in data.partner.iter().enumerate().filter(|(_, p)| data.has_pairs() && **p != u32::MAX) {
        let p = p as usize;
        sum +=
            (0..d).map(|k| data.pair_weights[i * d + k] * (errors[i * d + k] - errors[p * d + k]).powi(2)).sum::<f64>();
    }
    Ok(sum / (data.len() * data.d_out).max(1) as f64)
}

/// Smallest shard of a data-parallel batch: below it a batch is not split.
pub const MIN_SHARD: usize = 256;

/// Number of shards a batch of `len` samples is split into: `train.shards` (0, the backend default, is
/// resolved by the pipeline; here it counts as 1), but never shards smaller than [`MIN_SHARD`]. Depends only on the config and the batch, never on the machine, so that results
/// reproduce across machines.
pub fn shards_for(cfg: &TrainConfig, len: usize) -> usize {
    (cfg.shards.max(1) as usize).min((len / MIN_SHARD).max(1))
}

/// Loss and parameter gradients of the batch `idx` (the (weighted) mean squared error over the whole
/// batch, plus the difference and Jacobian terms when `data` has them, same normalisation).
///
/// With `shards > 1` the batch is data-parallel: it is cut into `shards` contiguous parts whose
/// forward and backward passes run in their own threads, each on a clone of the model, with the loss
/// `Σ_part (ŷ − y)² / (n_batch · d_out)`; the parts' gradients are then summed in a fixed order, which
/// is the gradient of the whole batch's mean (up to rounding). burn's CPU backends run elementwise
/// ops (SiLU, its backward, the loss) on one thread and only large matrix products on several, so
/// this is what puts the second core to work (README "Speed").
pub fn batch_gradients(
    model: &Mlp,
    data: &Dataset,
    idx: &[usize],
    shards: usize,
    ad: &Device,
) -> (f64, GradientsParams) {
    gradients(model, data, idx, (idx.len() * data.d_out) as f64, shards, ad)
}

/// [`batch_gradients`] with the loss divided by `total` instead of the batch's `n · d_out`.
pub(super) fn gradients(
    model: &Mlp,
    data: &Dataset,
    idx: &[usize],
    total: f64,
    shards: usize,
    ad: &Device,
) -> (f64, GradientsParams) {
    let part = |model: Mlp, rows: &[usize]| -> (f64, GradientsParams) {
        let f = data.forward(&model, rows, ad);
        let mut loss = data.summed_loss(&f.rows, f.pred, f.targets, f.weights);
        if let Some(j) = f.jacobian {
            loss = loss.add(j);
        }
        let loss = loss.div_scalar(total);
        let value = to_f64(loss.clone())[0];
        (value, GradientsParams::from_grads(loss.backward(), &model))
    };
    if shards <= 1 {
        return part(model.clone(), idx);
    }
    let size = idx.len().div_ceil(shards);
    let parts: Vec<(f64, GradientsParams)> = std::thread::scope(|s| {
        // `fork` detaches the parameters into fresh autodiff leaves (same `ParamId`s): each shard
        // gets a graph of its own. Shards sharing the parameter nodes would share one burn autodiff
        // graph, whose locks deadlock under concurrent backward passes.
        let handles: Vec<_> = idx.chunks(size).map(|rows| s.spawn(|| part(model.clone().fork(ad), rows))).collect();
        handles.into_iter().map(|h| h.join().expect("a training shard panicked")).collect()
    });
    sum_parts(model, parts)
}

/// The sum of the losses and of the gradients of `parts` (non-empty), added in their order.
pub(super) fn sum_parts(model: &Mlp, mut parts: Vec<(f64, GradientsParams)>) -> (f64, GradientsParams) {
    let (mut value, mut grads) = parts.remove(0);
    for (v, mut g) in parts {
        value += v;
        for layer in &model.layers {
            let w = layer.weight.id;
            if let (Some(a), Some(b)) = (grads.remove::<2>(w), g.remove::<2>(w)) {
                grads.register(w, a.add(b));
            }
            if let Some(bias) = &layer.bias
                && let (Some(a), Some(b)) = (grads.remove::<1>(bias.id), g.remove::<1>(bias.id))
            {
                grads.register(bias.id, a.add(b));
            }
        }
    }
    (value, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensor2;

    /// A dataset of 6 rows, d_out = 2: rows 1, 2 are partners of row 0, row 4 of row 3, row 5 alone.
    fn paired(n_pairs_weight: f64) -> Dataset {
        let (mut data, _) = Dataset::synthetic(6, 3, 2, 11);
        data.partner = vec![u32::MAX, 0, 0, u32::MAX, 3, u32::MAX];
        data.pair_weights =
            (0..6 * 2).map(|i| if [2, 3, 4, 5, 8, 9].contains(&i) { n_pairs_weight } else { 0.0 }).collect();
        data
    }

    #[test]
    fn pair_groups_keep_each_row_with_its_partner() {
        let data = paired(1.0);
        assert_eq!(data.pair_groups(), vec![vec![0, 1, 2], vec![3, 4], vec![5]]);
        let (a, b, w) = data.local_pairs(&[4, 2, 0, 3]);
        // Row 1's partner is outside the rows: only (2 → 0) and (4 → 3), in local indices.
        assert_eq!((a, b), (vec![0, 1], vec![3, 2]));
        assert_eq!(w, vec![1.0; 4]);
    }

    /// The difference term, in the graph (training) and on the host (validation): the loss is the
    /// value term plus `Σ ω (e_row − e_partner)²`, both over `n · d_out`; an error that is the same at
    /// a row and its partner costs nothing there.
    #[test]
    fn difference_loss_adds_the_weighted_squared_change_of_the_error() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let ad = device.clone().autodiff();
        let w = Weights::init(3, 1, 16, 2, 4);
        let model = Mlp::from_weights(&w, &device, DType::F32).unwrap();
        let plain = paired(0.0);
        let pred = to_f64(model.forward(tensor2(plain.inputs.clone(), 6, 3, &device)));
        let e: Vec<f64> = pred.iter().zip(&plain.targets).map(|(p, y)| p - *y).collect();
        let values: f64 = e.iter().map(|v| v * v).sum();
        let pairs: f64 = [(1, 0), (2, 0), (4, 3)]
            .iter()
            .map(|&(r, p)| (0..2).map(|k| 2.5 * (e[r * 2 + k] - e[p * 2 + k]).powi(2)).sum::<f64>())
            .sum();
        let data = paired(2.5);
        let host = evaluate_loss(&w, &data, &device, DType::F32).unwrap();
        assert!((host - (values + pairs) / 12.0).abs() < 1e-5 * host, "{host} vs {}", (values + pairs) / 12.0);
        assert!((evaluate_loss(&w, &plain, &device, DType::F32).unwrap() - values / 12.0).abs() < 1e-5 * host);
        let ad_model = Mlp::from_weights(&w, &ad, DType::F32).unwrap();
        let (graph, _) = batch_gradients(&ad_model, &data, &[0, 1, 2, 3, 4, 5], 1, &ad);
        assert!((graph - host).abs() < 1e-5 * host, "{graph} vs {host}");
        // With Jacobian labels on rows 0 and 3 as well (moved to the end of every batch and chunk, so
        // the pairs must follow their rows), the Jacobian term adds on, in the graph and on the host.
        let labelled = |mut d: Dataset| {
            d.jac_axes = 3;
            d.jacobian = (0..6 * 6).map(|i| (i as f64 * 0.37).sin()).collect();
            d.jacobian_weights = (0..6 * 6).map(|i| if [0, 3].contains(&(i / 6)) { 1.0 } else { 0.0 }).collect();
            d
        };
        let jac = evaluate_loss(&w, &labelled(plain.clone()), &device, DType::F32).unwrap() - values / 12.0;
        assert!(jac > 0.01 * host, "{jac} vs {host}");
        let both = labelled(data.clone());
        let host_both = evaluate_loss(&w, &both, &device, DType::F32).unwrap();
        assert!((host_both - (host + jac)).abs() < 1e-5 * host_both, "{host_both} vs {host} + {jac}");
        let (graph_both, _) = batch_gradients(&ad_model, &both, &[0, 1, 2, 3, 4, 5], 1, &ad);
        assert!((graph_both - host_both).abs() < 1e-5 * host_both, "{graph_both} vs {host_both}");
        // Targets shifted by the current error at the partner: rows 1, 2 and 4 then have the same error
        // as their partners, and the difference term vanishes.
        let mut shifted = data.clone();
        for (r, p) in [(1usize, 0usize), (2, 0), (4, 3)] {
            for k in 0..2 {
                shifted.targets[r * 2 + k] = pred[r * 2 + k] - e[p * 2 + k];
            }
        }
        let e2: f64 = (0..12).map(|i| (pred[i] - shifted.targets[i]).powi(2)).sum();
        let l = evaluate_loss(&w, &shifted, &device, DType::F32).unwrap();
        assert!((l - e2 / 12.0).abs() < 1e-5 * l, "{l} vs {}", e2 / 12.0);
    }
}
