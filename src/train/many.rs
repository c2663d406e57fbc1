//! Many networks of one shape trained in one batched pass: `M` independent MLPs (seeds, ensemble
//! members, the runs of a sweep that share an architecture and a training recipe) stacked along a
//! leading axis, so that each layer is one batched matrix product instead of `M` small ones, and one
//! Adam step updates all of them.
//!
//! With member `m`'s layer `W_m`, `b_m` and its own batch `X_m` (cut from its own data, in the order
//! of its own seed), the stacked layer computes
//!
//! ```text
//! Z = X W + b,   X: [M, B, d_in],  W: [M, d_in, d_out],  b: [M, 1, d_out]   (Z_m = X_m W_m + b_m)
//! L = Σ_m L_m,   L_m = Σ_ik w_mik (ŷ_mik − y_mik)² / (B · d_out)
//! ```
//!
//! The members share no parameter, so `∂L/∂θ_m = ∂L_m/∂θ_m`: each member gets the gradient it would
//! get alone, and Adam, being elementwise (no weight decay, no clipping), makes the step it would
//! make alone. Each member keeps its own initialisation, data, batch order, validation loss and
//! best-validation weights, and reports to its own [`TrainObserver`]; a member whose loss stops being
//! finite fails alone ([`Error::Diverged`]) while the others go on. Results equal one-by-one training
//! ([`crate::train::train`]) up to the rounding of the batched products
//! (`tests::stacked_training_equals_one_by_one` asserts the first 10 epochs' losses to 1e-4 relative
//! in f32, 1e-9 in f64).
//!
//! Each member saves resumable states as a network trained alone does ([`TrainObserver::save_due`],
//! and on a stop signal): its curve, weights and its own slice of the group's Adam state in the
//! layout of a network alone ([`crate::train::stacked_adam`]). Members given states of the same epoch
//! ([`Member::resume`]) continue together from them, taking the steps the uninterrupted group takes,
//! bit for bit on the CPU; a member's state also continues alone ([`crate::train::train_from`]).
//!
//! What it does not do ([`stackable`] says which): the difference and Jacobian loss terms, L-BFGS and
//! mass-action networks.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::model::{StackedMlp, Weights, to_f64};
use crate::train::config::TrainConfig;
use crate::train::stacked_adam::{self, ParamShape};
use crate::train::{Dataset, Log, Optimizer, Phase, TrainObserver, TrainState, Trained, shards_for, validation_loss};

/// Why `cfg` and `data` cannot be trained stacked, or `None` when they can: the loss terms, optimiser
/// phases and constraints that [`train_many`] does not carry.
pub fn stackable(cfg: &TrainConfig, data: &Dataset, mass_action: bool) -> Option<&'static str> {
    if data.has_pairs() {
        Some("the difference loss term (train.difference)")
    } else if data.has_jacobian() {
        Some("the exact Jacobian loss term (train.jacobian)")
    } else if cfg.lbfgs_rounds() > 0 {
        Some("L-BFGS (train.lbfgs)")
    } else if mass_action || cfg.fixed_orders.is_some() {
        Some("a mass-action network (model.activation = \"exp\" with model.state_input = \"log\")")
    } else {
        None
    }
}

/// Checks a saved state before it joins a group: at most `epochs` Adam epochs and no L-BFGS row, an
/// Adam phase whose record reads and fits the state's own network (what [`train_many`] would refuse
/// for the whole group otherwise). The error says what is wrong; the caller names the file.
pub fn check_state(state: &TrainState, epochs: usize) -> Result<()> {
    state.check(epochs, 0)?;
    let Phase::Adam { param_ids, state: record } = &state.phase else {
        return Err(Error::Unsupported(
            "the state is in an L-BFGS phase, which networks trained together have not".into(),
        ));
    };
    let shapes = ParamShape::of(&state.current);
    stacked_adam::stack(vec![crate::train::state::decode(record)?], std::slice::from_ref(param_ids), param_ids, &shapes)
        .map(drop)
}

/// One network of a stacked training: where it starts, its data and its seed (the batch order).
pub struct Member<'a> {
    /// Initial weights.
    pub init: &'a Weights,
    /// Training data.
    pub train: &'a Dataset,
    /// Validation data.
    pub val: &'a Dataset,
    /// The member's seed: its batch order, as [`crate::train::train`] draws it.
    pub seed: u64,
    /// A state to continue from (every member of a group has one, of the same epoch, or none has).
    pub resume: Option<&'a TrainState>,
}

/// Trains `members` together (see the module docs) with the shared recipe `cfg`, each reporting to
/// its own observer (`observers[m]`). Returns each member's result: its [`Trained`], or the error that
/// ended it alone (a non-finite loss); an error for the whole group (the members cannot be stacked, a
/// stop signal, an observer's error) is the outer one.
pub fn train_many(
    members: &[Member],
    cfg: &TrainConfig,
    device: &Device,
    observers: &mut [&mut dyn TrainObserver],
) -> Result<Vec<Result<Trained>>> {
    let m = members.len();
    if m == 0 {
        return Ok(Vec::new());
    }
    assert_eq!(observers.len(), m, "one observer per member");
    let (n, d_in, d_out) = (members[0].train.len(), members[0].train.d_in, members[0].train.d_out);
    let weighted = !members[0].train.weights.is_empty();
    for (i, mb) in members.iter().enumerate() {
        if let Some(why) = stackable(cfg, mb.train, mb.init.mass_action) {
            return Err(Error::Unsupported(format!("networks trained together cannot use {why}")));
        }
        let t = mb.train;
        if (t.len(), t.d_in, t.d_out, t.weights.is_empty()) != (n, d_in, d_out, !weighted) {
            return Err(Error::Unsupported(format!(
                "member {i} has {} training rows of {}→{} ({}), member 0 {n} of {d_in}→{d_out} ({}): networks trained together need data of one shape",
                t.len(),
                t.d_in,
                t.d_out,
                if t.weights.is_empty() { "unweighted" } else { "weighted" },
                if weighted { "weighted" } else { "unweighted" },
            )));
        }
    }
    let ad = device.clone().autodiff();
    let dtype = cfg.precision.dtype();
    let epochs = cfg.epochs as usize;
    let states: Vec<&TrainState> = members.iter().filter_map(|mb| mb.resume).collect();
    let first = match states.first() {
        None => 0,
        Some(s0) => {
            let first = s0.adam_epochs();
            if states.len() != m || states.iter().any(|s| s.adam_epochs() != first) {
                return Err(Error::Unsupported(format!(
                    "networks continue together only from states of one epoch (members' states: {:?})",
                    members.iter().map(|mb| mb.resume.map(TrainState::adam_epochs)).collect::<Vec<_>>()
                )));
            }
            for s in &states {
                s.check(epochs, 0)?;
            }
            first
        }
    };
    let starts: Vec<&Weights> = members.iter().map(|mb| mb.resume.map_or(mb.init, |s| &s.current)).collect();
    let mut model = StackedMlp::from_members(&starts, &ad, dtype)?;
    let ids = model.param_ids();
    let shapes = ParamShape::of(starts[0]);
    let mut optim = crate::train::adam::adam();
    if !states.is_empty() {
        let mut records = Vec::with_capacity(m);
        let mut member_ids = Vec::with_capacity(m);
        for s in &states {
            match &s.phase {
                Phase::Adam { param_ids, state } => {
                    records.push(crate::train::state::decode(state)?);
                    member_ids.push(param_ids.clone());
                }
                Phase::Lbfgs { .. } => {
                    return Err(Error::Unsupported(
                        "networks trained together have no L-BFGS phase to continue".into(),
                    ));
                }
            }
        }
        optim = crate::train::adam::restore(stacked_adam::stack(records, &member_ids, &ids, &shapes)?)?;
    }
    let mut logs = Vec::with_capacity(m);
    for (mb, o) in members.iter().zip(observers.iter_mut()) {
        match mb.resume {
            None => {
                let best_val = validation_loss(mb.init, mb.val, device, dtype)?;
                o.on_start(mb.init, best_val)?;
                logs.push(Log::new(mb.init, best_val, device));
            }
            Some(s) => {
                o.on_resume(s)?;
                logs.push(Log::resumed(s, device));
            }
        }
    }
    for log in &mut logs {
        log.pass = m;
    }
    // The same draws as `train`: a member's batches are those it would have alone, the epochs done
    // replayed.
    let mut rngs: Vec<StdRng> = members.iter().map(|mb| StdRng::seed_from_u64(mb.seed ^ 0xBA7C_0DE5)).collect();
    let mut orders: Vec<Vec<usize>> = vec![(0..n).collect(); m];
    for (order, rng) in orders.iter_mut().zip(&mut rngs) {
        for _ in 0..first {
            order.shuffle(rng);
        }
    }
    let mut failed: Vec<Option<Error>> = (0..m).map(|_| None).collect();
    let batch = (cfg.batch as usize).max(1);
    for epoch in first..epochs {
        let lr = cfg.learning_rate(epoch);
        for (order, rng) in orders.iter_mut().zip(&mut rngs) {
            order.shuffle(rng);
        }
        let t0 = Instant::now();
        let mut sums = vec![0.0; m];
        let mut batches = 0usize;
        for start in (0..n).step_by(batch) {
            let rows: Vec<&[usize]> = orders.iter().map(|o| &o[start..(start + batch).min(n)]).collect();
            let (values, grads) = stacked_gradients(&model, members, &rows, shards_for(cfg, rows[0].len()), &ad);
            model = optim.step(lr, model, grads);
            for (s, v) in sums.iter_mut().zip(values) {
                *s += v;
            }
            batches += 1;
        }
        let secs = t0.elapsed().as_secs_f64();
        let weights = model.weights();
        for (i, (w, mb)) in weights.iter().zip(members).enumerate() {
            let log = &mut logs[i];
            log.seen += n;
            // Every member trained for the whole pass: its rate is its own rows over the group's time.
            log.adam_secs += secs;
            if failed[i].is_some() {
                continue;
            }
            let train_loss = sums[i] / batches.max(1) as f64;
            let val_loss = if train_loss.is_finite() { validation_loss(w, mb.val, device, dtype)? } else { f64::NAN };
            if !val_loss.is_finite() {
                let loss = if train_loss.is_finite() { val_loss } else { train_loss };
                failed[i] = Some(Error::Diverged { epoch: epoch + 1, loss, best_epoch: log.best_epoch });
                continue;
            }
            log.push(w.clone(), train_loss, val_loss, lr, Optimizer::Adam, &mut *observers[i])?;
        }
        if failed.iter().all(Option::is_some) {
            break;
        }
        crate::interrupt::kill_point("adam");
        // Every member's state when any member's observer asks for one or a stop signal has come,
        // decided once for the group, so that the members' states are always of one epoch; the
        // group's Adam state is split once, for all of them.
        let last = epoch + 1 == epochs;
        // Every live member's observer is asked (no short circuit: each keeps its own clock).
        let asked = (0..m).filter(|&i| failed[i].is_none()).fold(false, |any, i| observers[i].save_due(last) | any);
        if !(asked || crate::interrupt::requested().is_some()) {
            let done = epoch + 1;
            crate::interrupt::check(|| {
                format!("after epoch {done} of {epochs} of {m} networks trained together; their last states are kept")
            })?;
            continue;
        }
        let mut split: Option<Vec<Vec<u8>>> = None;
        for (i, w) in weights.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            let mut snapshot = || -> Result<(Weights, Phase)> {
                if split.is_none() {
                    split = Some(stacked_adam::split(crate::train::adam::record(&optim)?, &ids, &shapes, m)?);
                }
                let state = crate::train::state::encode(&split.as_ref().expect("just split")[i]);
                Ok((w.clone(), Phase::Adam { param_ids: ids.clone(), state }))
            };
            logs[i].save_state(&mut *observers[i], &mut snapshot)?;
        }
        let done = epoch + 1;
        crate::interrupt::check(|| {
            format!("after epoch {done} of {epochs} of {m} networks trained together; each one's state is saved")
        })?;
    }
    Ok(logs
        .into_iter()
        .zip(failed)
        .map(|(log, f)| match f {
            Some(e) => Err(e),
            None => Ok(Trained {
                best: log.best,
                best_epoch: log.best_epoch,
                best_val_loss: log.best_val,
                curve: log.curve,
                samples_per_sec: log.seen as f64 / log.adam_secs.max(1e-9),
                lbfgs_evaluations: 0,
                lbfgs_seconds: 0.0,
                save_seconds: log.save_secs,
            }),
        })
        .collect())
}

/// Each member's loss on its rows `rows[m]` (all of one length `B`) and the gradients of their sum,
/// data-parallel in `shards` parts of the batch axis like [`crate::train::batch_gradients`].
fn stacked_gradients(
    model: &StackedMlp,
    members: &[Member],
    rows: &[&[usize]],
    shards: usize,
    ad: &Device,
) -> (Vec<f64>, GradientsParams) {
    let (m, b) = (members.len(), rows[0].len());
    let d_out = members[0].train.d_out;
    let total = (b * d_out) as f64;
    let part = |model: StackedMlp, lo: usize, hi: usize| -> (Vec<f64>, GradientsParams) {
        let dtype = model.layers[0].weight.val().dtype();
        let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for (mb, r) in members.iter().zip(rows) {
            let (xm, ym, wm) = mb.train.gather(&r[lo..hi]);
            x.extend(xm);
            y.extend(ym);
            w.extend(wm);
        }
        let k = hi - lo;
        let t = |v: Vec<f64>, cols: usize| Tensor::<3>::from_data(TensorData::new(v, [m, k, cols]), (ad, dtype));
        let d_in = members[0].train.d_in;
        let (x, y) = (t(x, d_in), t(y, d_out));
        let mut se = model.forward(x).sub(y).square();
        if !w.is_empty() {
            se = se.mul(t(w, d_out));
        }
        let per_member = se.sum_dim(2).sum_dim(1).div_scalar(total);
        let values = to_f64(per_member.clone());
        let grads = GradientsParams::from_grads(per_member.sum().backward(), &model);
        (values, grads)
    };
    if shards <= 1 {
        return part(model.clone(), 0, b);
    }
    let size = b.div_ceil(shards);
    let bounds: Vec<(usize, usize)> = (0..b).step_by(size).map(|lo| (lo, (lo + size).min(b))).collect();
    let mut parts: Vec<(Vec<f64>, GradientsParams)> = std::thread::scope(|s| {
        // Each shard detaches the parameters into fresh autodiff leaves (see `batch_gradients`).
        let handles: Vec<_> =
            bounds.iter().map(|&(lo, hi)| s.spawn(move || part(model.clone().fork(ad), lo, hi))).collect();
        handles.into_iter().map(|h| h.join().expect("a training shard panicked")).collect()
    });
    let (mut values, mut grads) = parts.remove(0);
    for (v, mut g) in parts {
        for (a, x) in values.iter_mut().zip(v) {
            *a += x;
        }
        for layer in &model.layers {
            for id in [layer.weight.id, layer.bias.id] {
                if let (Some(a), Some(b)) = (grads.remove::<3>(id), g.remove::<3>(id)) {
                    grads.register(id, a.add(b));
                }
            }
        }
    }
    (values, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Silent, train};

    /// Three networks trained together (each its own data, initialisation and seed) follow the same
    /// path as each trained alone: the first 10 epochs' losses agree to 1e-4 relative (f32 rounding
    /// of batched against single products), and the best weights to f32 noise; in f64, closer still;
    /// sharded or not. A member whose data is of another shape is refused.
    #[test]
    fn stacked_training_equals_one_by_one() {
        let device = crate::backend::Backend::default_compiled().unwrap().device().unwrap();
        let sets: Vec<(Dataset, Dataset)> = (0..3).map(|s| Dataset::synthetic_smooth(700, 10 + s)).collect();
        let mut sets = sets;
        // Loss weights (every member has them, or none may), to cover the weighted loss.
        for (t, _) in &mut sets {
            t.weights = (0..t.targets.len()).map(|i| 0.5 + (i % 3) as f64 * 0.25).collect();
        }
        let inits: Vec<Weights> = (0..3).map(|s| Weights::init(3, 2, 24, 2, 40 + s)).collect();
        for (precision, shards, tol) in
            [(crate::backend::Precision::F32, 1, 1e-4), (crate::backend::Precision::F64, 2, 1e-9)]
        {
            let cfg = TrainConfig { epochs: 10, batch: 256, lr: 3e-3, shards, precision, ..Default::default() };
            let members: Vec<Member> = (0..3)
                .map(|i| Member {
                    init: &inits[i],
                    train: &sets[i].0,
                    val: &sets[i].1,
                    seed: 5 + i as u64,
                    resume: None,
                })
                .collect();
            let mut silents = [Silent, Silent, Silent];
            let mut obs: Vec<&mut dyn TrainObserver> =
                silents.iter_mut().map(|s| s as &mut dyn TrainObserver).collect();
            let together = train_many(&members, &cfg, &device, &mut obs).unwrap();
            for (i, t) in together.into_iter().enumerate() {
                let t = t.unwrap();
                let alone = train(&inits[i], &sets[i].0, &sets[i].1, &cfg, 5 + i as u64, &device, &mut Silent).unwrap();
                assert_eq!(t.curve.len(), 10);
                for (a, b) in t.curve.iter().zip(&alone.curve) {
                    for (x, y) in [(a.train_loss, b.train_loss), (a.val_loss, b.val_loss)] {
                        assert!((x - y).abs() <= tol * y, "{precision:?} member {i} epoch {}: {x} vs {y}", a.epoch);
                    }
                }
                let (first, last) = (t.curve[0].val_loss, t.curve[9].val_loss);
                assert!(last < 0.8 * first, "member {i} learns: {first} then {last}");
                assert_eq!(t.best_epoch, alone.best_epoch, "member {i}");
            }
        }
        // A member whose loss stops being finite (a NaN target) fails alone; the others are the
        // networks they are without it.
        let mut bad = sets[1].clone();
        bad.0.targets[7] = f64::NAN;
        let cfg = TrainConfig { epochs: 3, batch: 256, lr: 3e-3, ..Default::default() };
        let members = [
            Member { init: &inits[0], train: &sets[0].0, val: &sets[0].1, seed: 5, resume: None },
            Member { init: &inits[1], train: &bad.0, val: &bad.1, seed: 6, resume: None },
        ];
        let mut silents = [Silent, Silent];
        let mut obs: Vec<&mut dyn TrainObserver> = silents.iter_mut().map(|s| s as &mut dyn TrainObserver).collect();
        let mut r = train_many(&members, &cfg, &device, &mut obs).unwrap().into_iter();
        let (good, failed) = (r.next().unwrap().unwrap(), r.next().unwrap());
        assert!(matches!(failed, Err(Error::Diverged { epoch: 1, .. })), "{failed:?}");
        let alone = train(&inits[0], &sets[0].0, &sets[0].1, &cfg, 5, &device, &mut Silent).unwrap();
        for (a, b) in good.curve.iter().zip(&alone.curve) {
            assert!((a.val_loss - b.val_loss).abs() <= 1e-4 * b.val_loss, "{} vs {}", a.val_loss, b.val_loss);
        }
        // Data of another length cannot share the batches.
        let short = Dataset::synthetic_smooth(500, 3);
        let members = [
            Member { init: &inits[0], train: &sets[0].0, val: &sets[0].1, seed: 1, resume: None },
            Member { init: &inits[1], train: &short.0, val: &short.1, seed: 2, resume: None },
        ];
        let mut silents = [Silent, Silent];
        let mut obs: Vec<&mut dyn TrainObserver> = silents.iter_mut().map(|s| s as &mut dyn TrainObserver).collect();
        let e = train_many(&members, &TrainConfig { epochs: 1, ..Default::default() }, &device, &mut obs).unwrap_err();
        assert!(e.to_string().contains("data of one shape"), "{e}");
    }
}
