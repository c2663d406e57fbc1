//! What training keeps across epochs and L-BFGS rounds (the best-validation weights, the loss curve,
//! the counters a resumable state carries) and how it becomes a [`TrainState`]: shared by the loop of
//! one network (`train::train_from`, `train::lbfgs`) and of networks trained together (`train::many`).
//! A network's share of the training time is the sum over rows of each row's time over the number of
//! networks in its pass (`share += Δt / pass`).

use std::time::Instant;

use burn::tensor::Device;

use crate::error::Result;
use crate::model::Weights;
use crate::train::state::{self, EpochRecord, Optimizer, Phase, TrainObserver, TrainState};

/// What [`train`] keeps across epochs and L-BFGS rounds: the best-validation weights, the curve and
/// the counters a resumable state carries.
pub(super) struct Log {
    pub(super) best: Weights,
    pub(super) best_val: f64,
    pub(super) best_epoch: usize,
    pub(super) curve: Vec<EpochRecord>,
    pub(super) start: Instant,
    pub(super) seen: usize,
    pub(super) adam_secs: f64,
    pub(super) lbfgs_secs: f64,
    pub(super) save_secs: f64,
    pub(super) device: String,
    /// The network's share of the training time so far (each row's time over `pass`).
    pub(super) share: f64,
    /// Networks in the pass that trains it (`train::many`); 1 alone.
    pub(super) pass: usize,
}

impl Log {
    /// The log of a run starting from `init` (epoch 0, validation loss `best_val`) on `device`.
    pub(super) fn new(init: &Weights, best_val: f64, device: &Device) -> Self {
        Log {
            best: init.clone(),
            best_val,
            best_epoch: 0,
            curve: Vec::new(),
            start: Instant::now(),
            seen: 0,
            adam_secs: 0.0,
            lbfgs_secs: 0.0,
            save_secs: 0.0,
            device: format!("{device:?}"),
            share: 0.0,
            pass: 1,
        }
    }

    /// Appends the next row of the curve (Adam epoch or L-BFGS round), keeps `weights` when their
    /// validation loss is the best so far, and tells the observer.
    pub(super) fn push(
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
        let before = self.curve.last().map_or(0.0, |r| r.seconds);
        self.share += (rec.seconds - before).max(0.0) / self.pass.max(1) as f64;
        observer.on_epoch(&rec, improved, &self.best)?;
        self.curve.push(rec);
        Ok(())
    }

    /// The log of a run continued from the state `s` on `device`: its curve, best weights, counters,
    /// and a clock that goes on from the curve's last row.
    pub(super) fn resumed(s: &TrainState, device: &Device) -> Self {
        let elapsed = std::time::Duration::from_secs_f64(s.curve.last().map_or(0.0, |r| r.seconds.max(0.0)));
        Log {
            best: s.best.clone(),
            best_val: s.best_val,
            best_epoch: s.best_epoch,
            curve: s.curve.clone(),
            start: Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now),
            seen: s.samples_seen,
            adam_secs: s.adam_seconds,
            lbfgs_secs: s.lbfgs_seconds,
            save_secs: s.save_seconds,
            // A run continued on another device keeps saying so in its later states.
            device: match format!("{device:?}") {
                now if s.device.is_empty() || s.device == now => now,
                now => format!("{} then {now}", s.device),
            },
            share: s.share(),
            pass: 1,
        }
    }

    /// After a row: saves a resumable state when the observer asks for one (`last`: the last row of
    /// training) or a stop signal has come, and then stops. `snapshot` gives the current weights and
    /// the optimiser's phase; it is only called when a state is saved.
    pub(super) fn after_row(
        &mut self,
        last: bool,
        total: usize,
        observer: &mut dyn TrainObserver,
        snapshot: &mut dyn FnMut() -> Result<(Weights, Phase)>,
    ) -> Result<()> {
        self.offer_state(last, observer, snapshot)?;
        let done = self.curve.len();
        crate::interrupt::check(|| format!("after row {done} of {total} of the loss curve; its state is saved"))
    }

    /// The saving half of [`after_row`](Self::after_row): a state to the observer when it asks for one
    /// or a stop signal has come; does not stop.
    pub(super) fn offer_state(
        &mut self,
        last: bool,
        observer: &mut dyn TrainObserver,
        snapshot: &mut dyn FnMut() -> Result<(Weights, Phase)>,
    ) -> Result<()> {
        let stop = crate::interrupt::requested().is_some();
        if stop || observer.save_due(last) {
            self.save_state(observer, snapshot)?;
        }
        Ok(())
    }

    /// Builds the resumable state at the end of the last row and hands it to the observer.
    pub(super) fn save_state(
        &mut self,
        observer: &mut dyn TrainObserver,
        snapshot: &mut dyn FnMut() -> Result<(Weights, Phase)>,
    ) -> Result<()> {
        {
            let t0 = Instant::now();
            let (current, phase) = snapshot()?;
            let mut state = TrainState {
                version: state::STATE_VERSION,
                curve: self.curve.clone(),
                best: self.best.clone(),
                best_val: self.best_val,
                best_epoch: self.best_epoch,
                current,
                phase,
                samples_seen: self.seen,
                adam_seconds: self.adam_secs,
                lbfgs_seconds: self.lbfgs_secs,
                save_seconds: self.save_secs,
                device: self.device.clone(),
                share_seconds: Some(self.share),
                pass: (self.pass > 1).then_some(self.pass),
            };
            state.save_seconds += t0.elapsed().as_secs_f64();
            observer.on_state(&state)?;
            self.save_secs += t0.elapsed().as_secs_f64();
        }
        Ok(())
    }
}
