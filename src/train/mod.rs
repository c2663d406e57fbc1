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

pub mod adam;
pub mod config;
pub mod dataset;
mod lbfgs;
mod log;
pub mod many;
pub mod stacked_adam;
pub mod state;
pub mod weights;

pub use config::LBFGS_ROUND;
pub use dataset::{Dataset, Forward, MIN_SHARD, batch_gradients, evaluate_loss, shards_for, validation_loss};
pub use state::{EpochRecord, LbfgsProgress, Optimizer, Phase, Silent, TrainObserver, TrainState, Trained};

use std::time::Instant;

use burn::tensor::{DType, Device};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::model::{Mlp, Weights};
use crate::train::config::TrainConfig;

use lbfgs::polish;
use log::Log;

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
    train_from(init, train, val, cfg, seed, device, observer, None)
}

/// [`train`], continuing from `resume` when given (a state [`TrainObserver::on_state`] received from a
/// run of the same config, data and seed): the same steps as an uninterrupted run from there on.
#[allow(clippy::too_many_arguments)]
pub fn train_from(
    init: &Weights,
    train: &Dataset,
    val: &Dataset,
    cfg: &TrainConfig,
    seed: u64,
    device: &Device,
    observer: &mut dyn TrainObserver,
    resume: Option<TrainState>,
) -> Result<Trained> {
    let ad = device.clone().autodiff();
    let dtype = cfg.precision.dtype();
    let epochs = cfg.epochs as usize;
    let rounds = if train.is_empty() { 0 } else { cfg.lbfgs_rounds() };
    let total = epochs + rounds;
    let mut optim = adam::adam();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xBA7C_0DE5);
    let mut order: Vec<usize> = (0..train.len()).collect();
    // With a difference term, batches are cut from shuffled groups (a row and its partners), so that
    // pairs meet in a batch; without one, rows are shuffled one by one (the paper's setting).
    let mut groups = if train.has_pairs() { train.pair_groups() } else { Vec::new() };
    let mut shuffle = |order: &mut Vec<usize>, rng: &mut StdRng| {
        if groups.is_empty() {
            order.shuffle(rng);
        } else {
            groups.shuffle(rng);
            order.clear();
            order.extend(groups.iter().flatten());
        }
    };
    let batch = (cfg.batch as usize).max(1);
    let mut lbfgs_resume = None;
    let (mut model, mut log, first) = match resume {
        None => {
            // Epoch 0 is the initial network: a run that diverges in its first epoch still keeps a checkpoint.
            let best_val = evaluate_loss(init, val, device, dtype)?;
            observer.on_start(init, best_val)?;
            (Mlp::from_weights(init, &ad, dtype)?, Log::new(init, best_val, device), 0)
        }
        Some(s) => {
            s.continues_in(cfg.precision)
                .map_err(|e| Error::Unsupported(format!("{e}; start it again (`stiffx run --force`)")))?;
            s.check(epochs, rounds)?;
            observer.on_resume(&s)?;
            let first = s.adam_epochs();
            let log = Log::resumed(&s, device);
            let mut model = Mlp::from_weights(&s.current, &ad, dtype)?;
            match s.phase {
                Phase::Adam { param_ids, state } => {
                    model = model.with_param_ids(&param_ids)?;
                    optim = adam::restore(state::decode(&state)?)?;
                }
                Phase::Lbfgs { progress, state } => lbfgs_resume = Some((progress, state::decode(&state)?)),
            }
            (model, log, first)
        }
    };
    // The batch order of the epochs done: the seed's shuffles, replayed.
    for _ in 0..first {
        shuffle(&mut order, &mut rng);
    }
    for epoch in first..epochs {
        let lr = cfg.learning_rate(epoch);
        shuffle(&mut order, &mut rng);
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for idx in order.chunks(batch) {
            let (value, grads) = batch_gradients(&model, train, idx, shards_for(cfg, idx.len()), &ad);
            if !value.is_finite() {
                return Err(Error::Diverged { epoch: epoch + 1, loss: value, best_epoch: log.best_epoch });
            }
            model = optim.step(lr, model, grads).project(lr * cfg.order_l1, cfg.fixed_orders.as_deref());
            loss_sum += value;
            batches += 1;
            log.seen += idx.len();
        }
        log.adam_secs += t0.elapsed().as_secs_f64();
        let weights = model.weights();
        let val_loss = validation_loss(&weights, val, device, dtype)?;
        if !val_loss.is_finite() {
            return Err(Error::Diverged { epoch: epoch + 1, loss: val_loss, best_epoch: log.best_epoch });
        }
        log.push(weights, loss_sum / batches.max(1) as f64, val_loss, lr, Optimizer::Adam, observer)?;
        crate::interrupt::kill_point("adam");
        let mut snapshot = || -> Result<(Weights, Phase)> {
            let phase = Phase::Adam { param_ids: model.param_ids(), state: state::encode(&adam::record(&optim)?) };
            Ok((model.weights(), phase))
        };
        log.after_row(epoch + 1 == epochs && rounds == 0, total, observer, &mut snapshot)?;
    }
    let mut lbfgs_evaluations = 0;
    if rounds > 0 {
        let model = match &lbfgs_resume {
            Some(_) => model,
            None => Mlp::from_weights(&log.best, &ad, dtype)?,
        };
        let t0 = Instant::now();
        let secs0 = log.lbfgs_secs;
        let mut hooks = Rounds { log: &mut log, observer, val, device, dtype, total, t0, secs0 };
        lbfgs_evaluations = polish(model, train, cfg, &ad, lbfgs_resume, &mut hooks)?;
        log.lbfgs_secs = secs0 + t0.elapsed().as_secs_f64();
    }
    let Log { best, best_val, best_epoch, curve, seen, adam_secs, lbfgs_secs, save_secs, .. } = log;
    Ok(Trained {
        best,
        best_epoch,
        best_val_loss: best_val,
        curve,
        samples_per_sec: seen as f64 / adam_secs.max(1e-9),
        lbfgs_evaluations,
        lbfgs_seconds: lbfgs_secs,
        save_seconds: save_secs,
    })
}

/// What the L-BFGS phase reports to after each round: the row of the curve, then a state to save.
struct Rounds<'a> {
    log: &'a mut Log,
    observer: &'a mut dyn TrainObserver,
    val: &'a Dataset,
    device: &'a Device,
    dtype: DType,
    total: usize,
    t0: Instant,
    secs0: f64,
}

impl lbfgs::Hooks for Rounds<'_> {
    fn record(&mut self, weights: Weights, train_loss: f64) -> Result<bool> {
        let val_loss = validation_loss(&weights, self.val, self.device, self.dtype)?;
        self.log.push(weights, train_loss, val_loss, 0.0, Optimizer::Lbfgs, self.observer)?;
        // A non-finite loss ends the L-BFGS phase (its row is kept in the curve); the best weights so
        // far, Adam's at worst, stand.
        Ok(train_loss.is_finite() && val_loss.is_finite())
    }

    fn after(&mut self, model: &Mlp, progress: &LbfgsProgress, optimizer: &dyn Fn() -> Result<Vec<u8>>) -> Result<()> {
        crate::interrupt::kill_point("lbfgs");
        self.log.lbfgs_secs = self.secs0 + self.t0.elapsed().as_secs_f64();
        let last = progress.finished || self.log.curve.len() == self.total;
        let mut snapshot = || -> Result<(Weights, Phase)> {
            Ok((model.weights(), Phase::Lbfgs { progress: *progress, state: state::encode(&optimizer()?) }))
        };
        self.log.after_row(last, self.total, self.observer, &mut snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;
    use crate::model::{tensor2, to_f64};

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
    /// kept, and the run is deterministic.
    #[test]
    fn lbfgs_after_adam_lowers_the_full_batch_loss() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
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
