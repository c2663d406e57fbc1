//! THE loop: sample → label → transform → train → evaluate, driven by a [`Config`]. Plugins never
//! call each other; this module wires the stages ([`crate::engine::data`], [`crate::engine::prepare`],
//! [`crate::train`], [`crate::eval::evaluate`]), writes every result atomically, and is the only place
//! that knows the order of the steps.
//!
//! Outputs of `stiffx run` (in `--out`, default `runs/<system>-<transform>-<sampler>-<labeller>-s<seed>`):
//! `config.toml` (the resolved config), `checkpoint.json` (best-validation weights, normalisation,
//! fitted transform, config), `loss_curve.csv`, `label_bias.csv`, `per_eps.csv`, `metrics.json`, and
//! for a mass-action network `reactions.json` (its learned reactions, [`Weights::reactions`]); with
//! trajectories to evaluate on (`eval.data`, or a `data` system's own file) `data_rollouts.csv` and
//! `data_spectrum.csv` ([`crate::eval::holdout`]). A `data` system has no reference: its run skips the
//! spectral evaluation (no `per_eps.csv`, `traces.csv` or spectral figures).

use std::path::PathBuf;
use std::time::Instant;

use crate::backend::{Backend, Precision};
use crate::config::Config;
use crate::engine::checkpoint::*;
use crate::engine::data::*;
pub use crate::engine::observe::bar;
use crate::engine::observe::{Evaluated, Files, Observer, Progress};
pub use crate::engine::outcome::{RunMetrics, Timings};
use crate::engine::prepare::*;
use crate::engine::rundir::SaveEvery;
use crate::error::{Error, Result};
use crate::eval::evaluate::*;
use crate::eval::holdout::evaluate_data;
use crate::eval::spectral::JacobianMode;
use crate::model::Weights;
use crate::train::{EpochRecord, TrainObserver, TrainState, Trained, train_from};

/// Where a run stopped by a signal during its evaluation stands.
const EVAL_STOPPED: &str =
    "during the evaluation; training is complete and its state is saved (the evaluation runs again)";

/// Run-time options that are not part of the experiment (where, on what, how loud).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory (`None`: write nothing).
    pub out: Option<PathBuf>,
    /// Backend for training and evaluation.
    pub backend: Backend,
    /// Precision of the evaluation device (training is f32).
    pub eval_precision: Precision,
    /// Jacobian mode for the spectral evaluation.
    pub jacobian: JacobianMode,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Write PNG figures (per run; a sweep's report figures).
    pub figures: bool,
    /// The run's name in figure legends (default: the output directory's name).
    pub label: Option<String>,
    /// How often training saves its resumable state into `out` (`--save-every`; `None`: never).
    pub save_every: Option<SaveEvery>,
    /// At most this many jobs of one shape train together in one batched pass (`--together`;
    /// `engine::together::run_together`); 1: one by one.
    pub together: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: None,
            backend: Backend::default_compiled().unwrap_or(Backend::Flex),
            eval_precision: Precision::F64,
            jacobian: JacobianMode::Forward,
            progress: false,
            figures: true,
            label: None,
            save_every: None,
            together: 1,
        }
    }
}

/// Feeds the training loop's hooks to the run's observers, keeping the checkpoint of the best weights
/// so far and the loss curve, and deciding when a resumable state is saved.
pub(super) struct Bridge<'a, 'b> {
    observers: &'a mut [&'b mut dyn Observer],
    best: Checkpoint,
    curve: Vec<EpochRecord>,
    rows: usize,
    /// `None`: no state is saved periodically (a stop signal still saves one).
    save_every: Option<SaveEvery>,
    last_save: Instant,
    rows_since_save: usize,
}

impl TrainObserver for Bridge<'_, '_> {
    fn on_start(&mut self, init: &Weights, val_loss: f64) -> Result<()> {
        self.best.weights = init.clone();
        self.best.val_loss = val_loss;
        for o in self.observers.iter_mut() {
            o.on_train_start(&self.best, self.rows)?;
        }
        Ok(())
    }
    fn on_resume(&mut self, state: &TrainState) -> Result<()> {
        self.best.weights = state.best.clone();
        self.best.val_loss = state.best_val;
        self.best.epoch = state.best_epoch;
        self.curve = state.curve.clone();
        for o in self.observers.iter_mut() {
            o.on_train_start(&self.best, self.rows)?;
            o.on_resumed(&self.curve, &self.best)?;
        }
        Ok(())
    }
    fn on_epoch(&mut self, rec: &EpochRecord, improved: bool, best: &Weights) -> Result<()> {
        self.curve.push(rec.clone());
        self.rows_since_save += 1;
        if improved {
            self.best.weights = best.clone();
            self.best.epoch = rec.epoch;
            self.best.val_loss = rec.val_loss;
        }
        for o in self.observers.iter_mut() {
            o.on_epoch(&self.curve, improved, &self.best)?;
        }
        Ok(())
    }
    fn save_due(&mut self, last: bool) -> bool {
        match self.save_every {
            None => false,
            Some(_) if last => true,
            Some(SaveEvery::Seconds(s)) => self.last_save.elapsed().as_secs_f64() >= s,
            Some(SaveEvery::Epochs(n)) => self.rows_since_save >= n,
        }
    }
    fn on_state(&mut self, state: &TrainState) -> Result<()> {
        for o in self.observers.iter_mut() {
            o.on_state(&self.best, state)?;
        }
        self.last_save = Instant::now();
        self.rows_since_save = 0;
        Ok(())
    }
}

/// Runs the whole pipeline for one config.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunMetrics> {
    cfg.validate()?;
    if opts.progress {
        eprintln!("sampling and labelling …");
    }
    let data = generate(cfg)?;
    run_with_data(cfg, opts, &data, None)
}

/// The [`Files`] observer into `opts.out` (none without one), its figures labelled `opts.label` or
/// the directory's name.
pub(super) fn files_for(opts: &RunOptions) -> Option<Files> {
    opts.out.as_ref().map(|o| Files {
        out: o.clone(),
        figures: opts.figures,
        hash: String::new(),
        label: opts
            .label
            .clone()
            .unwrap_or_else(|| o.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned())),
    })
}

/// Runs training and evaluation on already generated data (sweeps share datasets between runs), with
/// the observers `opts` asks for: [`Files`] into `opts.out`, [`Progress`] when `opts.progress`;
/// training continues from `resume` when given (a state saved by an interrupted run of `cfg`).
pub fn run_with_data(cfg: &Config, opts: &RunOptions, data: &Data, resume: Option<TrainState>) -> Result<RunMetrics> {
    let mut files = files_for(opts);
    let mut progress = Progress::default();
    let mut observers: Vec<&mut dyn Observer> = Vec::new();
    if let Some(f) = files.as_mut() {
        observers.push(f);
    }
    if opts.progress {
        observers.push(&mut progress);
    }
    run_observed(cfg, opts, data, &mut observers, resume)
}

/// What a run has ready before training: the fitted data, the initial network, the checkpoint
/// template and the resolved training recipe.
pub(super) struct Setup {
    pub(super) prep: crate::engine::prepare::Prepared,
    pub(super) init: Weights,
    pub(super) template: Checkpoint,
    pub(super) train_cfg: crate::train::config::TrainConfig,
    pub(super) rows: usize,
    pub(super) device: burn::tensor::Device,
}

/// The stages before training: validation, the observers told of the data, split, standardisation,
/// transform, the initial network (`model.init`'s mechanism or a seeded one) and the training recipe
/// with the backend's default shards.
pub(super) fn setup(
    cfg: &Config,
    opts: &RunOptions,
    data: &Data,
    observers: &mut [&mut dyn Observer],
) -> Result<Setup> {
    cfg.validate()?;
    cfg.train.precision.check_training(opts.backend)?;
    let device = opts.backend.device()?;
    for o in observers.iter_mut() {
        o.on_data(cfg, data)?;
    }
    let prep = prepare(cfg, data)?;
    let d = cfg.system.dim();
    let init = match &cfg.model.init {
        // A mechanism as the starting network (`model.init`), on this run's input standardisation.
        Some(m) => crate::eval::reactions::network_from_mechanism(
            &m.mechanism,
            &cfg.system.state_names(),
            &prep.normalizer,
            cfg.model.width as usize,
        )
        .map_err(|e| Error::invalid("model.init.file", &m.file, e))?,
        None => {
            let init = Weights::init(d + 1, cfg.model.hidden as usize, cfg.model.width as usize, d, cfg.seed)
                .with_activation(cfg.model.activation);
            if cfg.model.mass_action() { init.with_mass_action() } else { init }
        }
    };
    let mut fitted = cfg.clone();
    fitted.transform = prep.transform.clone();
    let template = Checkpoint::new(fitted, prep.normalizer.clone(), init.clone(), 0, f64::INFINITY);
    let rows = cfg.train.epochs as usize + cfg.train.lbfgs_rounds();
    let mut train_cfg = cfg.train.clone();
    if train_cfg.shards == 0 {
        train_cfg.shards = opts.backend.default_shards();
    }
    if cfg.model.init.is_some() && cfg.model.keep_orders {
        // The starting mechanism's orders, as the first layer's state rows of `init`.
        let l = &init.layers[0];
        train_cfg.fixed_orders = Some(l.w[..(l.d_in - 1) * l.d_out].to_vec());
    }
    Ok(Setup { prep, init, template, train_cfg, rows, device })
}

impl<'a, 'b> Bridge<'a, 'b> {
    /// A bridge to `observers` starting from the run's checkpoint template.
    pub(super) fn new(observers: &'a mut [&'b mut dyn Observer], s: &Setup, save_every: Option<SaveEvery>) -> Self {
        Bridge {
            observers,
            best: s.template.clone(),
            curve: Vec::new(),
            rows: s.rows,
            save_every,
            last_save: Instant::now(),
            rows_since_save: 0,
        }
    }
}

/// The loop itself: prepare → train → evaluate on `data`, each stage's result handed to every
/// observer ([`Observer`]); writes nothing itself. Training continues from `resume` when given; with
/// `opts.out`, resumable states go to the observers every `opts.save_every`.
pub fn run_observed(
    cfg: &Config,
    opts: &RunOptions,
    data: &Data,
    observers: &mut [&mut dyn Observer],
    resume: Option<TrainState>,
) -> Result<RunMetrics> {
    let s = setup(cfg, opts, data, observers)?;
    crate::interrupt::check(|| "after sampling and labelling, before training (nothing to resume from)".into())?;
    let save_every = opts.out.as_ref().and(opts.save_every);
    let mut bridge = Bridge::new(observers, &s, save_every);
    let (earlier, together) = earlier_training(resume.as_ref(), &s.train_cfg, 1);
    if let Some(r) = &resume {
        note_device(r, &s.device, None);
    }
    let t_train = Instant::now();
    let trained: Trained =
        train_from(&s.init, &s.prep.train, &s.prep.val, &s.train_cfg, cfg.seed, &s.device, &mut bridge, resume)?;
    let train_secs = earlier + t_train.elapsed().as_secs_f64();
    finish(cfg, opts, data, &s, trained, bridge, train_secs, Shared { together, ..Shared::alone() })
}

/// A continued run's training time before this process and its `trained_together`: the share of
/// the rows it keeps (`TrainState::share`), scaled to the pass it is reported with — `pass_now`, the
/// pass that continues it, or the one that trained its last row when nothing was left to train — as a
/// pass's time counts once over its members. `(0, pass_now)` for a run that starts afresh.
pub(super) fn earlier_training(
    state: Option<&TrainState>,
    cfg: &crate::train::config::TrainConfig,
    pass_now: usize,
) -> (f64, usize) {
    let Some(r) = state else { return (0.0, pass_now) };
    let complete = r.adam_epochs() >= cfg.epochs as usize && r.curve.len() - r.adam_epochs() >= cfg.lbfgs_rounds();
    let size = if complete { r.pass.unwrap_or(1) } else { pass_now };
    (r.share() * size as f64, size)
}

/// Says so when the state `r` was saved on another device than `device` (`who`: the job, in a group).
pub(super) fn note_device(r: &TrainState, device: &burn::tensor::Device, who: Option<&str>) {
    if !r.device.is_empty() && r.device != format!("{device:?}") {
        eprintln!(
            "note: {}the state was saved on {} and continues on {device:?}: the result will not be bit-identical to an uninterrupted run",
            who.map_or(String::new(), |w| format!("{w}: ")),
            r.device
        );
    }
}

/// What a run shares with the runs trained together with it (`--together`): the size of its training
/// pass, and its spectral evaluation's reference and Jacobians prepared for the group
/// ([`prepare_together`]).
pub(super) struct Shared {
    /// Networks trained in the run's pass, itself included.
    pub together: usize,
    /// The run's prepared share of the group's spectral evaluation.
    pub prepared: Option<PreparedSpectra>,
}

impl Shared {
    /// A run trained and evaluated alone.
    pub(super) fn alone() -> Self {
        Self { together: 1, prepared: None }
    }
}

/// The stages after training: the best checkpoint to the observers, the evaluation, the metrics
/// (`shared`: what the run shares with runs trained together with it).
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    cfg: &Config,
    opts: &RunOptions,
    data: &Data,
    s: &Setup,
    trained: Trained,
    bridge: Bridge,
    train_secs: f64,
    shared: Shared,
) -> Result<RunMetrics> {
    let (prep, device) = (&s.prep, &s.device);
    let Bridge { observers, best: mut ck, curve, .. } = bridge;
    ck.weights = trained.best.clone();
    ck.epoch = trained.best_epoch;
    ck.val_loss = trained.best_val_loss;
    for o in observers.iter_mut() {
        o.on_trained(&ck)?;
    }
    crate::interrupt::kill_point("eval");
    // A stop signal during the evaluation (its integrations end between two steps; a learned rollout
    // that stops is a NaN row) stops the run here: training is complete and saved, and `--resume`
    // evaluates again.
    let stopped = |e: Error| match e {
        Error::Interrupted { signal, resume, .. } => Error::Interrupted { signal, at: EVAL_STOPPED.into(), resume },
        e => e,
    };
    let reference = cfg.system.has_reference();
    let (eval, traces) = if reference {
        evaluate_prepared(&ck, &cfg.eval_eps(), device, opts.eval_precision, opts.jacobian, shared.prepared)
            .map_err(stopped)?
    } else {
        (Evaluation::default(), Traces::default())
    };
    // Trajectories: `eval.data`, else a data system's own file (in-sample).
    let data_file = cfg
        .eval
        .data
        .clone()
        .map(|p| (p, false))
        .or_else(|| (!reference).then(|| cfg.sampler.data_file().map(|(p, _)| (p, true))).flatten());
    let data_eval = match data_file {
        Some((path, in_sample)) => Some(
            evaluate_data(&ck, std::path::Path::new(&path), in_sample, device, opts.eval_precision, opts.jacobian)
                .map_err(stopped)?,
        ),
        None => None,
    };
    crate::interrupt::check(|| EVAL_STOPPED.into())?;
    let windows = window_metrics(cfg, &traces);
    let metrics = RunMetrics {
        version: env!("CARGO_PKG_VERSION").into(),
        seed: cfg.seed,
        backend: opts.backend.to_string(),
        train_precision: cfg.train.precision,
        system: format!("{:?}", cfg.system).chars().take(200).collect(),
        sampler: cfg.sampler.describe(),
        labeller: cfg.labeller.describe(),
        transform: prep.transform.describe(),
        jacobian: opts.jacobian,
        n_train: prep.train.len(),
        n_val: prep.val.len(),
        best_val_loss: trained.best_val_loss,
        best_epoch: trained.best_epoch,
        epochs: trained.curve.len(),
        train_samples_per_sec: trained.samples_per_sec,
        trained_together: shared.together,
        seconds: Timings {
            sample: data.sample_secs,
            label: data.label_secs,
            train: train_secs,
            save: trained.save_seconds,
            eval: eval.seconds + data_eval.as_ref().map_or(0.0, |d| d.seconds),
        },
        label_bias: data.bias.clone(),
        windows: crate::eval::metrics::pool_windows(&windows),
        eval,
        data: data_eval,
    };
    let ev = Evaluated { cfg, metrics: &metrics, traces: &traces, windows: &windows, curve: &curve };
    for o in observers.iter_mut() {
        o.on_evaluated(&ev)?;
    }
    Ok(metrics)
}
