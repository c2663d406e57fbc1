//! Observers of the run loop, as in argmin's executor: the loop (`engine::pipeline`) only
//! computes the typed stage results — [`Data`] → prepared sets → a trained [`Checkpoint`] → an
//! evaluation ([`RunMetrics`] and [`Traces`]) — and hands each to every observer. What a run leaves
//! behind hangs off observers instead of branches inside the loop: [`Files`] writes the run directory
//! (config, label bias, checkpoints as training improves, loss curve, reactions, traces, time windows,
//! figures, metrics), [`Progress`] shows progress on stderr. Every hook has a no-op default, so an
//! observer implements only what it needs.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::data::Data;
use crate::engine::outcome::RunMetrics;
use crate::engine::rundir::{RESUME, Resumable, config_hash};
use crate::error::Result;
use crate::eval::evaluate::{Traces, write_traces};
use crate::eval::metrics::EpsMetrics;
use crate::eval::metrics::WindowMetrics;
use crate::io::{write_atomic, write_csv, write_json};
use crate::train::{EpochRecord, TrainState};

/// The hooks of the run loop, called in this order; each has a no-op default.
pub trait Observer {
    /// The labelled dataset, before anything is fitted.
    fn on_data(&mut self, _cfg: &Config, _data: &Data) -> Result<()> {
        Ok(())
    }
    /// Training starts: `ck` holds the fitted normaliser and transform, the initial weights and their
    /// validation loss; `rows` is the number of loss-curve rows to expect (epochs + L-BFGS rounds).
    fn on_train_start(&mut self, _ck: &Checkpoint, _rows: usize) -> Result<()> {
        Ok(())
    }
    /// After each epoch (or L-BFGS round): `curve` so far, and `best` holding the best-validation
    /// weights when `improved`.
    fn on_epoch(&mut self, _curve: &[EpochRecord], _improved: bool, _best: &Checkpoint) -> Result<()> {
        Ok(())
    }
    /// Training continues from a saved state (after [`on_train_start`](Self::on_train_start)): its
    /// curve so far and best checkpoint.
    fn on_resumed(&mut self, _curve: &[EpochRecord], _best: &Checkpoint) -> Result<()> {
        Ok(())
    }
    /// A resumable state of training (every `--save-every`, at the last row and at a stop signal),
    /// with the best checkpoint so far.
    fn on_state(&mut self, _best: &Checkpoint, _state: &TrainState) -> Result<()> {
        Ok(())
    }
    /// Training ended: the best-validation checkpoint.
    fn on_trained(&mut self, _ck: &Checkpoint) -> Result<()> {
        Ok(())
    }
    /// The evaluation of the trained checkpoint: metrics, traces, time windows and the loss curve.
    fn on_evaluated(&mut self, _ev: &Evaluated<'_>) -> Result<()> {
        Ok(())
    }
}

/// The last stage's result, as observers see it.
pub struct Evaluated<'a> {
    /// The run's config.
    pub cfg: &'a Config,
    /// Its metrics.
    pub metrics: &'a RunMetrics,
    /// Reference and learned trajectories and eigenvalues along them.
    pub traces: &'a Traces,
    /// Eigenvalue errors per decade of time (log-spaced evaluations; empty otherwise).
    pub windows: &'a [WindowMetrics],
    /// The loss curve.
    pub curve: &'a [EpochRecord],
}

/// Writes the run directory `out`: every file of `stiffx run` (see `engine::pipeline`),
/// each atomically; figures when `figures`, labelled `label` in legends.
pub struct Files {
    /// The run directory.
    pub out: PathBuf,
    /// The hash of the run's config ([`config_hash`]), set when the data arrive.
    pub hash: String,
    /// Write PNG figures.
    pub figures: bool,
    /// The run's name in figure legends.
    pub label: String,
}

impl Observer for Files {
    fn on_data(&mut self, cfg: &Config, data: &Data) -> Result<()> {
        self.hash = config_hash(cfg);
        write_atomic(&self.out.join("config.toml"), cfg.to_toml().as_bytes())?;
        write_csv(&self.out.join("label_bias.csv"), &data.bias)
    }
    fn on_train_start(&mut self, ck: &Checkpoint, _rows: usize) -> Result<()> {
        ck.save(&self.out.join("checkpoint.json"))
    }
    fn on_epoch(&mut self, curve: &[EpochRecord], improved: bool, best: &Checkpoint) -> Result<()> {
        if improved {
            best.save(&self.out.join("checkpoint.json"))?;
        }
        write_csv(&self.out.join("loss_curve.csv"), curve)
    }
    fn on_resumed(&mut self, curve: &[EpochRecord], best: &Checkpoint) -> Result<()> {
        best.save(&self.out.join("checkpoint.json"))?;
        write_csv(&self.out.join("loss_curve.csv"), curve)
    }
    fn on_state(&mut self, best: &Checkpoint, state: &TrainState) -> Result<()> {
        let r = Resumable { checkpoint: best.clone(), config_sha256: self.hash.clone(), train_state: state.clone() };
        r.save(&self.out.join(RESUME))
    }
    fn on_trained(&mut self, ck: &Checkpoint) -> Result<()> {
        ck.save(&self.out.join("checkpoint.json"))?;
        if let Some(r) = ck.weights.reactions(&ck.normalizer) {
            write_json(&self.out.join("reactions.json"), &r)?;
        }
        if let Some(yaml) = ck.learned_mechanism_yaml(0.0, &self.out.display().to_string()) {
            crate::io::write_atomic(&self.out.join("learned_mechanism.yaml"), yaml.as_bytes())?;
        }
        Ok(())
    }
    fn on_evaluated(&mut self, ev: &Evaluated<'_>) -> Result<()> {
        let spectral = !ev.metrics.eval.is_empty();
        if spectral {
            write_traces(&self.out.join("traces.csv"), ev.traces, ev.cfg.system.dim())?;
        }
        if !ev.windows.is_empty() {
            write_csv(&self.out.join("time_windows.csv"), ev.windows)?;
        }
        if let Some(d) = &ev.metrics.data {
            write_csv(&self.out.join("data_rollouts.csv"), &d.rollouts)?;
            write_csv(&self.out.join("data_spectrum.csv"), &d.spectrum)?;
        }
        if self.figures && spectral {
            let per_eps = &ev.metrics.eval.per_eps;
            write_run_figures(&self.out.join("figures"), ev.cfg, &self.label, ev.curve, ev.traces, per_eps)?;
        } else if self.figures {
            // No reference (a data system): the loss curve is the figure there is.
            let curve = [(self.label.clone(), ev.cfg.seed, ev.curve.to_vec())];
            crate::figures::paper::loss_curves(&self.out.join("figures").join("loss.png"), &curve)?;
        }
        write_outputs(&self.out, ev.metrics)
    }
}

/// Progress on stderr: what the loop is doing and a bar over the training epochs — or, when stderr is
/// not a terminal (a cluster job's log, `2> file`), where a bar would print nothing, one plain line
/// per [`LOG_EVERY`] seconds and the first and last epoch (also when training stops early): epoch,
/// losses, best epoch, elapsed, ETA (which counts an L-BFGS round as one epoch).
#[derive(Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    log: Option<LogLines>,
}

/// Seconds between two progress lines when stderr is not a terminal.
pub const LOG_EVERY: f64 = 30.0;

/// State of the plain progress lines.
struct LogLines {
    rows: usize,
    start: std::time::Instant,
    last: Option<std::time::Instant>,
    /// The latest epoch's line when it was not printed (training can stop before `rows`: early
    /// stopping, an L-BFGS round that converges); `on_trained` prints it.
    pending: Option<String>,
    /// Rows done before this process (a resumed run), which the ETA leaves out.
    resumed: usize,
}

impl Observer for Progress {
    fn on_data(&mut self, cfg: &Config, data: &Data) -> Result<()> {
        if !cfg.system.has_reference() {
            eprintln!("  {}", crate::plugins::data_system::summary(cfg.system.as_ref()));
        }
        eprintln!(
            "  {} samples ({:.1} s sampling, {:.1} s labelling)",
            data.set.len(),
            data.sample_secs,
            data.label_secs
        );
        Ok(())
    }
    fn on_train_start(&mut self, _ck: &Checkpoint, rows: usize) -> Result<()> {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            self.bar = Some(bar(true, rows as u64, "train"));
        } else {
            self.log = Some(LogLines { rows, start: std::time::Instant::now(), last: None, pending: None, resumed: 0 });
        }
        Ok(())
    }
    fn on_resumed(&mut self, curve: &[EpochRecord], _best: &Checkpoint) -> Result<()> {
        eprintln!("  resuming after row {} of the loss curve", curve.len());
        if let Some(b) = &self.bar {
            b.set_position(curve.len() as u64);
        }
        if let Some(l) = &mut self.log {
            l.resumed = curve.len();
        }
        Ok(())
    }
    fn on_epoch(&mut self, curve: &[EpochRecord], _improved: bool, best: &Checkpoint) -> Result<()> {
        let Some(rec) = curve.last() else { return Ok(()) };
        if let Some(b) = &self.bar {
            b.set_message(format!("train {:.3e}  val {:.3e}", rec.train_loss, rec.val_loss));
            b.inc(1);
        }
        if let Some(l) = &mut self.log {
            let done = curve.len();
            let secs = l.start.elapsed().as_secs_f64();
            let eta = secs / (done - l.resumed).max(1) as f64 * l.rows.saturating_sub(done) as f64;
            let line = format!(
                "  train {done}/{} ({:.0} %): loss {:.3e}, val {:.3e}, best epoch {}; {secs:.0} s, ETA {eta:.0} s",
                l.rows,
                100.0 * done as f64 / l.rows.max(1) as f64,
                rec.train_loss,
                rec.val_loss,
                best.epoch
            );
            if l.last.is_none_or(|t| t.elapsed().as_secs_f64() >= LOG_EVERY) || done == l.rows {
                eprintln!("{line}");
                l.last = Some(std::time::Instant::now());
                l.pending = None;
            } else {
                l.pending = Some(line);
            }
        }
        Ok(())
    }
    fn on_trained(&mut self, _ck: &Checkpoint) -> Result<()> {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some(line) = self.log.take().and_then(|l| l.pending) {
            eprintln!("{line}");
        }
        eprintln!("evaluating …");
        Ok(())
    }
}

/// A progress bar on stderr (hidden when `progress` is false), prefixed with `what`.
pub fn bar(progress: bool, len: u64, what: &str) -> ProgressBar {
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

/// Writes `metrics.json` and, when there was a spectral evaluation, `per_eps.csv`.
pub fn write_outputs(out: &Path, m: &RunMetrics) -> Result<()> {
    if !m.eval.is_empty() {
        write_csv(&out.join("per_eps.csv"), &m.eval.per_eps)?;
    }
    write_json(&out.join("metrics.json"), m)
}
