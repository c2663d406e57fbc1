//! THE loop: sample → label → transform → train → evaluate, driven by a [`Config`]. Plugins never
//! call each other; this module wires the stages ([`crate::engine::data`], [`crate::engine::prepare`],
//! [`crate::train`], [`crate::eval::evaluate`]), writes every result atomically, and is the only place
//! that knows the order of the steps.
//!
//! Outputs of `stiffx run` (in `--out`, default `runs/<system>-<transform>-<sampler>-<labeller>-s<seed>`):
//! `config.toml` (the resolved config), `checkpoint.json` (best-validation weights, normalisation,
//! fitted transform, config), `loss_curve.csv`, `label_bias.csv`, `per_eps.csv`, `metrics.json`, and
//! for a mass-action network `reactions.json` (its learned reactions, [`Weights::reactions`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Precision};
use crate::config::Config;
use crate::error::Result;
use crate::io::{write_atomic, write_csv, write_json};
use crate::eval::metrics::EpsMetrics;
use crate::model::Weights;
use crate::eval::spectral::JacobianMode;
use crate::train::{EpochRecord, TrainObserver, Trained, train};
use crate::engine::checkpoint::*;
use crate::engine::data::*;
use crate::engine::prepare::*;
use crate::eval::evaluate::*;

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
        }
    }
}

/// Everything a run produces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    /// `stiffx` version.
    pub version: String,
    /// Seed.
    pub seed: u64,
    /// Backend used.
    pub backend: String,
    /// Training precision (`train.precision`); written only when it is not the default f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub train_precision: Precision,
    /// One-line descriptions of the plugins used.
    pub system: String,
    /// Sampler description.
    pub sampler: String,
    /// Labeller description.
    pub labeller: String,
    /// Fitted transform description.
    pub transform: String,
    /// Jacobian mode of the evaluation.
    pub jacobian: JacobianMode,
    /// Training samples.
    pub n_train: usize,
    /// Validation samples.
    pub n_val: usize,
    /// Best validation loss (transformed space).
    #[serde(with = "crate::io::float")]
    pub best_val_loss: f64,
    /// Its epoch.
    pub best_epoch: usize,
    /// Rows of the loss curve: Adam epochs run, then L-BFGS rounds (`train.lbfgs`).
    pub epochs: usize,
    /// Training throughput.
    #[serde(with = "crate::io::float")]
    pub train_samples_per_sec: f64,
    /// Seconds: sampling, labelling, training, evaluation.
    pub seconds: Timings,
    /// Label error against exact labels.
    pub label_bias: Vec<LabelBias>,
    /// For log-spaced evaluations, the eigenvalue errors per decade of time pooled over eps, then over
    /// all points ([`pool_windows`](crate::eval::metrics::pool_windows)); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::eval::metrics::PooledWindow>,
    /// Spectral and rollout metrics.
    pub eval: Evaluation,
}

/// Wall-clock split of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Sampling.
    pub sample: f64,
    /// Labelling.
    pub label: f64,
    /// Training.
    pub train: f64,
    /// Evaluation.
    pub eval: f64,
}

struct RunObserver<'a> {
    out: Option<&'a Path>,
    template: Checkpoint,
    curve: Vec<EpochRecord>,
    bar: ProgressBar,
}

impl TrainObserver for RunObserver<'_> {
    fn on_start(&mut self, init: &Weights, val_loss: f64) -> Result<()> {
        if let Some(out) = self.out {
            self.template.weights = init.clone();
            self.template.val_loss = val_loss;
            self.template.save(&out.join("checkpoint.json"))?;
        }
        Ok(())
    }
    fn on_epoch(&mut self, rec: &EpochRecord, improved: bool, best: &Weights) -> Result<()> {
        self.curve.push(rec.clone());
        self.bar.set_message(format!("train {:.3e}  val {:.3e}", rec.train_loss, rec.val_loss));
        self.bar.inc(1);
        if let Some(out) = self.out {
            if improved {
                self.template.weights = best.clone();
                self.template.epoch = rec.epoch;
                self.template.val_loss = rec.val_loss;
                self.template.save(&out.join("checkpoint.json"))?;
            }
            write_csv(&out.join("loss_curve.csv"), &self.curve)?;
        }
        Ok(())
    }
}

/// A progress bar on stderr (hidden when `progress` is false), prefixed with `what`.
pub(crate) fn bar(progress: bool, len: u64, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_prefix(what.to_string());
    b
}

/// Runs the whole pipeline for one config.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunMetrics> {
    cfg.validate()?;
    if opts.progress {
        eprintln!("sampling and labelling …");
    }
    let data = generate(cfg)?;
    run_with_data(cfg, opts, &data)
}

/// Runs training and evaluation on already generated data (sweeps share datasets between runs).
pub fn run_with_data(cfg: &Config, opts: &RunOptions, data: &Data) -> Result<RunMetrics> {
    cfg.validate()?;
    cfg.train.precision.check_training(opts.backend)?;
    let device = opts.backend.device()?;
    let out = opts.out.as_deref();
    if let Some(o) = out {
        write_atomic(&o.join("config.toml"), cfg.to_toml().as_bytes())?;
    }
    let say = |m: &str| {
        if opts.progress {
            eprintln!("{m}");
        }
    };
    say(&format!(
        "  {} samples ({:.1} s sampling, {:.1} s labelling)",
        data.set.len(),
        data.sample_secs,
        data.label_secs
    ));
    if let Some(o) = out {
        write_csv(&o.join("label_bias.csv"), &data.bias)?;
    }
    let prep = prepare(cfg, data)?;
    let d = cfg.system.dim();
    let init = Weights::init(d + 1, cfg.model.hidden as usize, cfg.model.width as usize, d, cfg.seed)
        .with_activation(cfg.model.activation);
    let init = if cfg.model.mass_action() { init.with_mass_action() } else { init };
    let mut fitted = cfg.clone();
    fitted.transform = prep.transform.clone();
    let template = Checkpoint {
        format: FORMAT.into(),
        config: fitted,
        normalizer: prep.normalizer.clone(),
        weights: init.clone(),
        epoch: 0,
        val_loss: f64::INFINITY,
    };
    let rows = cfg.train.epochs as usize + cfg.train.lbfgs_rounds();
    let mut obs = RunObserver { out, template, curve: Vec::new(), bar: bar(opts.progress, rows as u64, "train") };
    let t_train = Instant::now();
    let mut train_cfg = cfg.train.clone();
    if train_cfg.shards == 0 {
        train_cfg.shards = opts.backend.default_shards();
    }
    let trained: Trained = train(&init, &prep.train, &prep.val, &train_cfg, cfg.seed, &device, &mut obs)?;
    obs.bar.finish_and_clear();
    let train_secs = t_train.elapsed().as_secs_f64();
    let mut ck = obs.template;
    ck.weights = trained.best.clone();
    ck.epoch = trained.best_epoch;
    ck.val_loss = trained.best_val_loss;
    if let Some(o) = out {
        ck.save(&o.join("checkpoint.json"))?;
        if let Some(r) = ck.weights.reactions(&ck.normalizer) {
            write_json(&o.join("reactions.json"), &r)?;
        }
    }
    say("evaluating …");
    let (eval, traces) = evaluate(&ck, &cfg.eval_eps(), &device, opts.eval_precision, opts.jacobian)?;
    let windows = match out {
        Some(o) => {
            write_traces(&o.join("traces.csv"), &traces, d)?;
            write_time_windows(o, cfg, &traces)?
        }
        None => window_metrics(cfg, &traces),
    };
    let curve = std::mem::take(&mut obs.curve);
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
        seconds: Timings { sample: data.sample_secs, label: data.label_secs, train: train_secs, eval: eval.seconds },
        label_bias: data.bias.clone(),
        windows: crate::eval::metrics::pool_windows(&windows),
        eval,
    };
    if let Some(o) = out {
        if opts.figures {
            let label = opts
                .label
                .clone()
                .unwrap_or_else(|| o.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned()));
            write_run_figures(&o.join("figures"), cfg, &label, &curve, &traces, &metrics.eval.per_eps)?;
        }
        write_outputs(o, &metrics)?;
    }
    Ok(metrics)
}

/// Writes a run's figures into `dir`: `loss.png` (Fig. 6), `trajectories.png` (Fig. 7, at the
/// reference eps), `eigenvalues.png` (Fig. 8, at the reference and the stiffest training eps) and
/// `errors_vs_eps.png` (Fig. 10).
pub fn write_run_figures(
    dir: &Path,
    cfg: &Config,
    label: &str,
    curve: &[EpochRecord],
    traces: &Traces,
    per_eps: &[EpsMetrics],
) -> Result<()> {
    use crate::figures::paper;
    let sys = cfg.system.as_ref();
    paper::loss_curves(&dir.join("loss.png"), &[(label.to_string(), cfg.seed, curve.to_vec())])?;
    let runs = [(label.to_string(), traces)];
    paper::trajectories(&dir.join("trajectories.png"), sys, &runs, cfg.eval.reference_eps)?;
    let mut eps = vec![cfg.eval.reference_eps];
    if let Some(stiffest) = sys.train_grid().into_iter().min_by(f64::total_cmp)
        && stiffest != cfg.eval.reference_eps
        && traces.eps.contains(&stiffest)
    {
        eps.push(stiffest);
    }
    paper::eigenvalues(&dir.join("eigenvalues.png"), sys, &runs, &eps)?;
    let curve = crate::eval::metrics::eps_curve(label, &[per_eps], &sys.unseen_grid());
    paper::eps_curves(&dir.join("errors_vs_eps.png"), &sys.param_name(), &curve)
}

/// Writes `metrics.json` and `per_eps.csv`.
pub fn write_outputs(out: &Path, m: &RunMetrics) -> Result<()> {
    write_csv(&out.join("per_eps.csv"), &m.eval.per_eps)?;
    write_json(&out.join("metrics.json"), m)
}
