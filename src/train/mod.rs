//! Training: Adam on mini-batches of the transformed targets (loss = mean squared error in the
//! transformed space, paper eq. 13 applied to `T(F)`, optionally weighted per sample and component,
//! see [`Dataset::weights`], plus an optional first-order *difference* term on pairs of nearby samples,
//! see [`Dataset::pair_weights`], and an optional exact Jacobian term, see
//! [`Dataset::jacobian_weights`]), optionally followed by full-batch L-BFGS on the same loss
//! (`train.lbfgs`), a seeded validation split, the
//! best-validation weights kept, the loss curve recorded, and a stop with a clear error as soon as
//! Adam's loss stops being finite (a non-finite L-BFGS loss ends that phase, keeping the best weights).
//!
//! The loop reports to a [`TrainObserver`] after every epoch (progress bars, checkpoints and logs hang
//! off it), in the spirit of argmin's observers: the loop owns iteration and termination, hooks only
//! watch.

pub mod config;
pub mod weights;

pub use config::LBFGS_ROUND;

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, LBFGSConfig, LineSearchFn};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::train::config::{Schedule, TrainConfig};
use crate::error::{Error, Result};
use crate::model::{Mlp, Weights, tensor2_as, to_f64};

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

/// One row of the loss curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub val_loss: f64,
    /// Learning rate used in the epoch.
    pub lr: f64,
    /// Seconds since training started.
    pub seconds: f64,
    /// The optimiser of this row: Adam epochs first, then L-BFGS rounds (`train.lbfgs`).
    #[serde(default)]
    pub optimizer: Optimizer,
}

/// Which optimiser produced a row of the loss curve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// One epoch of mini-batch Adam; `lr` is its learning rate.
    #[default]
    Adam,
    /// One round of full-batch L-BFGS (up to [`LBFGS_ROUND`] iterations); `lr` is 0 (no learning rate: the
    /// line search sets each step).
    Lbfgs,
}

/// Hooks called by [`train`]; every method has a no-op default.
pub trait TrainObserver {
    /// Before the first epoch, with the initial network and its validation loss.
    fn on_start(&mut self, _init: &Weights, _val_loss: f64) -> Result<()> {
        Ok(())
    }
    /// After each epoch; `improved` when the validation loss is the best so far.
    fn on_epoch(&mut self, _record: &EpochRecord, _improved: bool, _best: &Weights) -> Result<()> {
        Ok(())
    }
}

/// An observer that does nothing.
pub struct Silent;
impl TrainObserver for Silent {}

/// The outcome of a training run.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Best-validation weights.
    pub best: Weights,
    /// Epoch of `best`.
    pub best_epoch: usize,
    /// Best validation loss.
    pub best_val_loss: f64,
    /// Loss curve.
    pub curve: Vec<EpochRecord>,
    /// Training throughput, samples per second (forward + backward + Adam step).
    pub samples_per_sec: f64,
    /// Full-batch loss and gradient evaluations of the L-BFGS phase (`train.lbfgs`); 0 without one.
    pub lbfgs_evaluations: usize,
    /// Seconds of the L-BFGS phase, validation included; 0 without one.
    pub lbfgs_seconds: f64,
}

/// Learning rate at `epoch` (0-based) of `epochs`.
pub fn learning_rate(cfg: &TrainConfig, epoch: usize) -> f64 {
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Cosine => {
            let p = epoch as f64 / (cfg.epochs.max(2) - 1) as f64;
            cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + (std::f64::consts::PI * p).cos())
        }
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
fn gradients(
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
fn sum_parts(model: &Mlp, mut parts: Vec<(f64, GradientsParams)>) -> (f64, GradientsParams) {
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


/// Rows per chunk of a full-batch pass ([`full_gradients`]).
const FULL_BATCH_CHUNK: usize = 16_384;

/// The rows of `data` cut into chunks of about [`FULL_BATCH_CHUNK`] for a full-batch pass. With a
/// difference term a chunk holds whole groups (a row and its partners), so that no pair is cut.
fn full_batch_chunks(data: &Dataset) -> Vec<Vec<usize>> {
    let groups = if data.has_pairs() { data.pair_groups() } else { (0..data.len()).map(|i| vec![i]).collect() };
    let mut chunks: Vec<Vec<usize>> = vec![Vec::new()];
    for g in groups {
        if chunks.last().is_some_and(|c| c.len() >= FULL_BATCH_CHUNK) {
            chunks.push(Vec::new());
        }
        chunks.last_mut().expect("one chunk").extend(g);
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}

/// The training loss over all of `data` (the mean over its `n · d_out` entries, every term included)
/// times `scale`, and its parameter gradients: [`gradients`] over `chunks`, summed in order.
fn full_gradients(
    model: &Mlp,
    data: &Dataset,
    chunks: &[Vec<usize>],
    scale: f64,
    shards: usize,
    ad: &Device,
) -> (f64, GradientsParams) {
    let total = (data.len() * data.d_out) as f64 / scale;
    let parts = chunks.iter().map(|c| gradients(model, data, c, total, shards.min((c.len() / MIN_SHARD).max(1)), ad));
    sum_parts(model, parts.collect())
}

/// The validation loss of `weights` in precision `dtype`, NaN when they are not finite.
fn validation_loss(weights: &Weights, val: &Dataset, device: &Device, dtype: DType) -> Result<f64> {
    match weights.check() {
        Ok(()) => evaluate_loss(weights, val, device, dtype),
        Err(_) => Ok(f64::NAN),
    }
}

/// What [`train`] keeps across epochs and L-BFGS rounds: the best-validation weights and the curve.
struct Log {
    best: Weights,
    best_val: f64,
    best_epoch: usize,
    curve: Vec<EpochRecord>,
    start: Instant,
}

impl Log {
    /// Appends the next row of the curve (Adam epoch or L-BFGS round), keeps `weights` when their
    /// validation loss is the best so far, and tells the observer.
    fn push(
        &mut self,
        weights: Weights,
        train_loss: f64,
        val_loss: f64,
        lr: f64,
        optimizer: Optimizer,
        observer: &mut dyn TrainObserver,
    ) -> Result<()> {
        let epoch = self.curve.len() + 1;
        let improved = val_loss < self.best_val;
        if improved {
            self.best_val = val_loss;
            self.best = weights;
            self.best_epoch = epoch;
        }
        let rec =
            EpochRecord { epoch, train_loss, val_loss, lr, seconds: self.start.elapsed().as_secs_f64(), optimizer };
        observer.on_epoch(&rec, improved, &self.best)?;
        self.curve.push(rec);
        Ok(())
    }
}

/// Trains from `init` on `train`, validating on `val` after every epoch. `device` is the plain device;
/// training runs on its autodiff counterpart. The seed fixes the batch order.
pub fn train(
    init: &Weights,
    train: &Dataset,
    val: &Dataset,
    cfg: &TrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut dyn TrainObserver,
) -> Result<Trained> {
    let ad = device.clone().autodiff();
    let dtype = cfg.precision.dtype();
    let mut model = Mlp::from_weights(init, &ad, dtype)?;
    // PyTorch's Adam epsilon (burn defaults to 1e-5, which limits how far the loss can go down).
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xBA7C_0DE5);
    let mut order: Vec<usize> = (0..train.len()).collect();
    // With a difference term, batches are cut from shuffled groups (a row and its partners), so that
    // pairs meet in a batch; without one, rows are shuffled one by one (the paper's setting).
    let mut groups = if train.has_pairs() { train.pair_groups() } else { Vec::new() };
    let batch = (cfg.batch as usize).max(1);
    // Epoch 0 is the initial network: a run that diverges in its first epoch still keeps a checkpoint.
    let mut log = Log {
        best: init.clone(),
        best_val: evaluate_loss(init, val, device, dtype)?,
        best_epoch: 0,
        curve: Vec::new(),
        start: Instant::now(),
    };
    observer.on_start(init, log.best_val)?;
    let mut seen = 0usize;
    let mut train_secs = 0.0;
    for epoch in 0..cfg.epochs as usize {
        let lr = learning_rate(cfg, epoch);
        if groups.is_empty() {
            order.shuffle(&mut rng);
        } else {
            groups.shuffle(&mut rng);
            order.clear();
            order.extend(groups.iter().flatten());
        }
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for idx in order.chunks(batch) {
            let (value, grads) = batch_gradients(&model, train, idx, shards_for(cfg, idx.len()), &ad);
            if !value.is_finite() {
                return Err(Error::Diverged { epoch: epoch + 1, loss: value, best_epoch: log.best_epoch });
            }
            model = optim.step(lr, model, grads).project(lr * cfg.order_l1);
            loss_sum += value;
            batches += 1;
            seen += idx.len();
        }
        train_secs += t0.elapsed().as_secs_f64();
        let weights = model.weights();
        let val_loss = validation_loss(&weights, val, device, dtype)?;
        if !val_loss.is_finite() {
            return Err(Error::Diverged { epoch: epoch + 1, loss: val_loss, best_epoch: log.best_epoch });
        }
        log.push(weights, loss_sum / batches.max(1) as f64, val_loss, lr, Optimizer::Adam, observer)?;
    }
    let (mut lbfgs_evaluations, mut lbfgs_seconds) = (0, 0.0);
    if cfg.lbfgs > 0 && !train.is_empty() {
        let model = Mlp::from_weights(&log.best, &ad, dtype)?;
        let mut record = |weights: Weights, train_loss: f64| -> Result<bool> {
            let val_loss = validation_loss(&weights, val, device, dtype)?;
            log.push(weights, train_loss, val_loss, 0.0, Optimizer::Lbfgs, observer)?;
            // A non-finite loss ends the L-BFGS phase (its row is kept in the curve); the best weights so
            // far, Adam's at worst, stand.
            Ok(train_loss.is_finite() && val_loss.is_finite())
        };
        let t0 = Instant::now();
        lbfgs_evaluations = polish(model, train, cfg, &ad, &mut record)?;
        lbfgs_seconds = t0.elapsed().as_secs_f64();
    }
    let Log { best, best_val, best_epoch, curve, .. } = log;
    Ok(Trained {
        best,
        best_epoch,
        best_val_loss: best_val,
        curve,
        samples_per_sec: seen as f64 / train_secs.max(1e-9),
        lbfgs_evaluations,
        lbfgs_seconds,
    })
}

/// Full-batch L-BFGS from `model` on `train`, [`TrainConfig::lbfgs_rounds`] rounds of up to
/// [`LBFGS_ROUND`] iterations each (a round also ends at its evaluation budget); after each, `record(weights, training loss)` validates and reports, and returns
/// whether the losses were finite. Stops early at a non-finite loss or when a round does not lower the
/// training loss (converged, or at the rounding of the loss).
/// Returns the number of full-batch loss and gradient evaluations.
fn polish(
    mut model: Mlp,
    train: &Dataset,
    cfg: &TrainConfig,
    ad: &Device,
    record: &mut dyn FnMut(Weights, f64) -> Result<bool>,
) -> Result<usize> {
    let chunks = full_batch_chunks(train);
    let shards = cfg.shards.max(1) as usize;
    // The objective is scaled to 1 at the start. burn's L-BFGS (like PyTorch's) keeps a curvature
    // pair only when yᵀs > 1e-10 and stops on absolute changes of 1e-9, thresholds that a loss of
    // ~1e-9 (Robertson's) would fall under at once.
    let (start, _) = full_gradients(&model, train, &chunks, 1.0, shards, ad);
    if !(start.is_finite() && start > 0.0) {
        return Ok(1);
    }
    let mut evaluations = 1;
    let scale = 1.0 / start;
    let mut optim = LBFGSConfig::new()
        .with_max_iter(LBFGS_ROUND)
        .with_max_eval(Some(LBFGS_ROUND * 5 / 4 + 1))
        .with_history_size(cfg.lbfgs_history as usize)
        .with_line_search_fn(LineSearchFn::StrongWolfe)
        .init();
    let mut last = start * scale;
    for _ in 0..cfg.lbfgs_rounds() {
        let (next, loss) = optim.step(1.0, model, |m: Mlp| {
            evaluations += 1;
            full_gradients(&m, train, &chunks, scale, shards, ad)
        });
        model = next.project(0.0);
        let finite = record(model.weights(), loss / scale)?;
        if !finite || loss.is_nan() || loss >= last {
            break;
        }
        last = loss;
    }
    Ok(evaluations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;
    use crate::model::tensor2;

    /// The data-parallel gradient (2 and 3 shards in threads, summed) is the serial full-batch
    /// gradient up to f32 rounding, and so is the loss.
    #[test]
    fn sharded_gradients_equal_the_serial_batch_gradient() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let ad = device.clone().autodiff();
        let (data, _) = Dataset::synthetic(900, 3, 2, 5);
        let model = Mlp::from_weights(&Weights::init(3, 2, 32, 2, 9), &ad, DType::F32).unwrap();
        let idx: Vec<usize> = (0..900).rev().collect();
        let (v1, g1) = batch_gradients(&model, &data, &idx, 1, &ad);
        // Concurrent backward passes stay deadlock-free over many batches.
        for _ in 0..50 {
            let _ = batch_gradients(&model, &data, &idx, 3, &ad);
        }
        for shards in [2, 3] {
            let (v, mut g) = batch_gradients(&model, &data, &idx, shards, &ad);
            assert!((v - v1).abs() < 1e-5 * v1, "loss {v} vs {v1}");
            for layer in &model.layers {
                let (a, b) =
                    (to_f64(g.remove::<2>(layer.weight.id).unwrap()), to_f64(g1.get::<2>(layer.weight.id).unwrap()));
                let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                assert!(err < 1e-5 * scale, "{shards} shards: weight gradient off by {err} (scale {scale})");
                let bias = layer.bias.as_ref().unwrap().id;
                let (a, b) = (to_f64(g.remove::<1>(bias).unwrap()), to_f64(g1.get::<1>(bias).unwrap()));
                let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5 * scale));
            }
        }
        // Sharded training is deterministic: the same seed gives the same weights.
        let cfg = TrainConfig { epochs: 2, batch: 600, shards: 2, ..Default::default() };
        let init = Weights::init(3, 2, 32, 2, 9);
        let a = train(&init, &data, &data, &cfg, 3, &device, &mut Silent).unwrap();
        let b = train(&init, &data, &data, &cfg, 3, &device, &mut Silent).unwrap();
        assert_eq!(a.best, b.best);
        assert!(a.best_val_loss < evaluate_loss(&init, &data, &device, DType::F32).unwrap());
        let cfg = TrainConfig { shards: 4, ..Default::default() };
        assert_eq!(shards_for(&cfg, 300), 1);
        assert_eq!(shards_for(&cfg, 600), 2);
        assert_eq!(shards_for(&cfg, 8192), 4);
    }

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

    /// A dataset of 8 rows (d_in = 4, d_out = 2) with Jacobian labels along the first 3 input axes on
    /// every row but 2 and 5.
    fn with_jacobian(weight: f64) -> Dataset {
        let (mut data, _) = Dataset::synthetic(8, 4, 2, 11);
        data.jac_axes = 3;
        data.jacobian = (0..8 * 6).map(|i| (i as f64 * 0.37).sin()).collect();
        data.jacobian_weights = (0..8 * 6)
            .map(|i| if [2, 5].contains(&(i / 6)) { 0.0 } else { weight * (1.0 + 0.1 * (i % 5) as f64) })
            .collect();
        data
    }

    /// The Jacobian term is `Σ ω (∂ŷ_k/∂x_j − J_jk)²` over the labelled rows (axis-major layout),
    /// checked against central differences of the network, the same in the graph (training) and in
    /// chunks on the host (validation); and a few Adam steps on the Jacobian term alone (value weights
    /// 0) bring it down, so its gradient flows through the forward-mode tangents.
    #[test]
    fn jacobian_loss_fits_the_network_input_derivatives() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let ad = device.clone().autodiff();
        let w = Weights::init(4, 2, 16, 2, 4);
        let model = Mlp::from_weights(&w, &device, DType::F32).unwrap();
        let data = with_jacobian(1.5);
        let out = |x: Vec<f64>| to_f64(model.forward(tensor2(x, 8, 4, &device)));
        let h = 1e-2f64;
        let mut expected = 0.0;
        let values: f64 = out(data.inputs.clone()).iter().zip(&data.targets).map(|(p, y)| (p - *y).powi(2)).sum();
        for j in 0..3 {
            let shift =
                |s: f64| data.inputs.iter().enumerate().map(|(i, v)| if i % 4 == j { v + s } else { *v }).collect();
            let (up, down) = (out(shift(h)), out(shift(-h)));
            for r in (0..8).filter(|r| ![2, 5].contains(r)) {
                for k in 0..2 {
                    let slope = (up[r * 2 + k] - down[r * 2 + k]) / (2.0 * h);
                    let e = (r * 3 + j) * 2 + k;
                    expected += data.jacobian_weights[e] * (slope - data.jacobian[e]).powi(2);
                }
            }
        }
        let expected = (values + expected) / 16.0;
        let host = evaluate_loss(&w, &data, &device, DType::F32).unwrap();
        assert!((host - expected).abs() < 1e-3 * expected, "{host} vs {expected}");
        let ad_model = Mlp::from_weights(&w, &ad, DType::F32).unwrap();
        let rows: Vec<usize> = (0..8).collect();
        let (graph, _) = batch_gradients(&ad_model, &data, &rows, 1, &ad);
        assert!((graph - host).abs() < 1e-5 * host, "{graph} vs {host}");
        // Sharded: the Jacobian term splits with the rows.
        let (sharded, _) = batch_gradients(&ad_model, &data, &rows, 2, &ad);
        assert!((sharded - host).abs() < 1e-5 * host, "{sharded} vs {host}");
        // Only rows without labels: no term.
        assert!(data.forward(&model, &[2, 5], &device).jacobian.is_none());
        // The labelled rows go last, and their outputs (the tangent pass's primal) are the network's.
        let (order, _) = data.labelled_last(&rows);
        assert_eq!(order, vec![2, 5, 0, 1, 3, 4, 6, 7]);
        let plain = to_f64(model.forward(tensor2(data.gather(&order).0, 8, 4, &device)));
        let shared = to_f64(data.forward(&model, &rows, &device).pred);
        assert!(plain.iter().zip(&shared).all(|(a, b)| (a - b).abs() < 1e-6), "{plain:?} vs {shared:?}");
        // The Jacobian term alone (value weights 0) is fitted.
        let mut only = with_jacobian(1.0);
        only.weights = vec![0.0; 16];
        let cfg = TrainConfig { epochs: 60, batch: 8, lr: 1e-2, ..Default::default() };
        let before = evaluate_loss(&w, &only, &device, DType::F32).unwrap();
        let trained = train(&w, &only, &only, &cfg, 1, &device, &mut Silent).unwrap();
        assert!(trained.best_val_loss < 0.1 * before, "{} vs {before}", trained.best_val_loss);
    }

    /// L-BFGS after Adam: its rows follow Adam's in the curve, each lowers the training loss (it
    /// stops at the first round that does not), the best-validation weights over both phases are
    /// kept, and the run is deterministic. The full-batch gradient summed over chunks is the one-batch
    /// gradient, and chunks never cut a difference-loss group.
    #[test]
    fn lbfgs_after_adam_lowers_the_full_batch_loss() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let ad = device.clone().autodiff();
        let (data, val) = Dataset::synthetic_smooth(600, 5);
        let init = Weights::init(3, 2, 16, 2, 9);
        let adam = TrainConfig { epochs: 20, batch: 64, lr: 3e-3, ..Default::default() };
        let both = TrainConfig { lbfgs: 40, lbfgs_history: 10, ..adam.clone() };
        let a = train(&init, &data, &val, &adam, 3, &device, &mut Silent).unwrap();
        let b = train(&init, &data, &val, &both, 3, &device, &mut Silent).unwrap();
        for (r, s) in a.curve.iter().zip(&b.curve) {
            assert_eq!((r.epoch, r.train_loss, r.val_loss, r.lr), (s.epoch, s.train_loss, s.val_loss, s.lr));
        }
        let lb: Vec<&EpochRecord> = b.curve[20..].iter().collect();
        assert!(!lb.is_empty() && lb.len() <= 4, "{} rounds", lb.len());
        // Each round evaluates the full batch at least once and at most 13 + 1 times (max_eval, and a
        // line search's last evaluation), plus the one that scales the objective.
        assert!(b.lbfgs_evaluations > lb.len() && b.lbfgs_evaluations <= 1 + 14 * lb.len(), "{}", b.lbfgs_evaluations);
        assert!(b.lbfgs_seconds > 0.0 && (a.lbfgs_evaluations, a.lbfgs_seconds) == (0, 0.0));
        assert!(lb.iter().all(|r| r.optimizer == Optimizer::Lbfgs && r.lr == 0.0));
        assert!(b.curve[..20].iter().all(|r| r.optimizer == Optimizer::Adam));
        let adam_train = evaluate_loss(&a.best, &data, &device, DType::F32).unwrap();
        for w in lb.windows(2).take(lb.len().saturating_sub(2)) {
            assert!(w[1].train_loss < w[0].train_loss, "{} then {}", w[0].train_loss, w[1].train_loss);
        }
        assert!(lb[0].train_loss < adam_train, "{} vs Adam's {adam_train}", lb[0].train_loss);
        let best_lb = lb.iter().map(|r| r.train_loss).fold(f64::INFINITY, f64::min);
        assert!(best_lb < 0.5 * adam_train, "L-BFGS {best_lb} vs Adam {adam_train}");
        assert!(b.best_val_loss <= a.best_val_loss);
        assert_eq!(b.best_val_loss, b.curve.iter().map(|r| r.val_loss).fold(f64::INFINITY, f64::min));
        let again = train(&init, &data, &val, &both, 3, &device, &mut Silent).unwrap();
        assert_eq!(again.best, b.best);
        // The full-batch gradient over several chunks is the gradient of the whole set at once.
        let (big, _) = Dataset::synthetic(2 * FULL_BATCH_CHUNK + 100, 3, 2, 7);
        let model = Mlp::from_weights(&init, &ad, DType::F32).unwrap();
        let chunks = full_batch_chunks(&big);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![FULL_BATCH_CHUNK, FULL_BATCH_CHUNK, 100]);
        let (v, mut g) = full_gradients(&model, &big, &chunks, 2.0, 2, &ad);
        let all: Vec<usize> = (0..big.len()).collect();
        let (v1, g1) = batch_gradients(&model, &big, &all, 1, &ad);
        assert!((v - 2.0 * v1).abs() < 1e-4 * v, "{v} vs 2 × {v1}");
        for layer in &model.layers {
            let (x, y) =
                (to_f64(g.remove::<2>(layer.weight.id).unwrap()), to_f64(g1.get::<2>(layer.weight.id).unwrap()));
            let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(x.iter().zip(&y).all(|(p, q)| (p - 2.0 * q).abs() < 1e-4 * scale));
        }
        // With pairs, a chunk holds whole groups.
        let mut paired = big.clone();
        paired.partner = (0..big.len()).map(|i| if i % 3 == 0 { u32::MAX } else { (i - i % 3) as u32 }).collect();
        paired.pair_weights = vec![1.0; big.len() * 2];
        for c in full_batch_chunks(&paired) {
            assert!(c.len() % 3 == 0 && c.chunks(3).all(|g| g[0] % 3 == 0 && g[1] == g[0] + 1 && g[2] == g[0] + 2));
        }
    }

    /// `train.precision = "f64"`: the same initial network and batches as f32, so the first epochs'
    /// losses agree to f32 rounding; the weights are true f64 (not all representable in f32) and
    /// deterministic; and L-BFGS runs in f64 as well.
    #[test]
    fn f64_training_keeps_double_precision_weights() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let (data, val) = Dataset::synthetic_smooth(600, 5);
        let init = Weights::init(3, 2, 16, 2, 9);
        let single = TrainConfig { epochs: 3, batch: 64, lr: 3e-3, ..Default::default() };
        let double = TrainConfig { precision: Precision::F64, ..single.clone() };
        let (a, b) = (
            train(&init, &data, &val, &single, 3, &device, &mut Silent).unwrap(),
            train(&init, &data, &val, &double, 3, &device, &mut Silent).unwrap(),
        );
        for (r, s) in a.curve.iter().zip(&b.curve) {
            assert!((r.train_loss - s.train_loss).abs() < 1e-4 * r.train_loss, "{} vs {}", r.train_loss, s.train_loss);
            assert!((r.val_loss - s.val_loss).abs() < 1e-4 * r.val_loss, "{} vs {}", r.val_loss, s.val_loss);
        }
        let in_f32 = |w: &Weights| w.layers.iter().all(|l| l.w.iter().chain(&l.b).all(|v| f64::from(*v as f32) == *v));
        assert!(in_f32(&a.best) && !in_f32(&b.best));
        assert_eq!(b.best_val_loss, evaluate_loss(&b.best, &val, &device, DType::F64).unwrap());
        assert_eq!(train(&init, &data, &val, &double, 3, &device, &mut Silent).unwrap().best, b.best);
        // L-BFGS runs in f64 too (its history and line search in the parameters' precision).
        let cfg = TrainConfig { epochs: 20, lbfgs: 40, lbfgs_history: 10, ..double.clone() };
        let t = train(&init, &data, &val, &cfg, 3, &device, &mut Silent).unwrap();
        let adam = t.curve[..20].iter().map(|r| r.train_loss).fold(f64::INFINITY, f64::min);
        let polished = t.curve[20..].iter().map(|r| r.train_loss).fold(f64::INFINITY, f64::min);
        assert!(polished < 0.5 * adam && t.lbfgs_evaluations > 1, "L-BFGS in f64: {polished} vs Adam's {adam}");
    }
}
