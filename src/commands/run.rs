//! `stiffx run`: one run of the pipeline from a config (and command-line overrides) into an
//! all-or-nothing run directory ([`RunDir`]), `--resume` of an interrupted one, and the summary it
//! prints.

use std::path::Path;

use crate::cli::{RunArgs, run_config, run_options};
use crate::config::Config;
use crate::engine::data::generate;
use crate::engine::pipeline::{RunMetrics, RunOptions, run_with_data};
use crate::engine::rundir::{DONE, RESUME, Resumable, RunDir, config_hash};
use crate::error::{Error, Result};
use crate::train::TrainState;

use super::{print_eval_table, time_label};

fn print_summary(m: &RunMetrics) {
    println!(
        "best val loss {:.3e} (epoch {}), {:.0} samples/s on {}{}",
        m.best_val_loss,
        m.best_epoch,
        m.train_samples_per_sec,
        m.backend,
        if m.train_precision.is_f32() { "" } else { " (f64 training)" }
    );
    if let Some(d) = &m.data {
        let what = if d.in_sample { "training trajectories (in-sample)" } else { "held-out trajectories" };
        super::identify::print_rollouts(what, std::path::Path::new(&d.file), &d.rollouts, "the learned Jacobian");
        println!("learned eigenvalues along them (|λ̄|: fastest and slowest nonzero, medians over the points):");
        super::eval_data::print_spectrum(&d.spectrum);
    }
    if m.eval.is_empty() {
        return;
    }
    print_eval_table(&m.eval.per_eps);
    let r = &m.eval.reference;
    println!(
        "at eps = {}: rollout {:.3e}, fast {:.3e}, slow {:.3e}, fast rel {:.3e}",
        r.eps, r.rollout_l2, r.fast_abs, r.slow_abs, r.fast_rel
    );
    let g = &m.eval.grid_mean;
    println!(
        "grid mean: rollout {:.3e}, fast {:.3e}, slow {:.3e}, fast rel {:.3e} (largest eps mean {:.3e})",
        g.rollout_l2, g.fast_abs, g.slow_abs, g.fast_rel, g.fast_rel_worst_eps_mean
    );
    if let Some(p) = &g.pointwise {
        println!(
            "pointwise over {} points: fast rel p50 {:.3e}, p95 {:.3e}, p99 {:.3e}, max {:.3e}; all eigenvalues p99 {:.3e}, max {:.3e}",
            p.points, p.fast_rel.p50, p.fast_rel.p95, p.fast_rel.p99, p.fast_rel.max, p.all_rel.p99, p.all_rel.max
        );
        if let Some(w) = &p.worst_point {
            println!("worst point: {}", w.describe());
        }
    }
    if !m.windows.is_empty() {
        println!("every nonzero eigenvalue within 5 %, per decade of t (all eps):");
        // The last row of `pool_windows` is the one over all points.
        for (i, w) in m.windows.iter().enumerate() {
            let what = if i + 1 == m.windows.len() {
                "all points".to_string()
            } else {
                format!("t {}…{}", time_label(w.t_from), time_label(w.t_to))
            };
            println!("  {what:>14}: {:>5.1} %  ({} points)", 100.0 * w.all_within, w.points);
        }
    }
}

/// `stiffx run --check`: the validated config (every field and the memory estimate have passed by
/// now) summarised, and whether `out` would be accepted; nothing is written.
fn check(cfg: &Config, out: &Path, force: bool) -> Result<()> {
    use crate::plugins::registry::name_of;
    refuse_occupied(out, force)?;
    let s = &cfg.system;
    println!(
        "config ok: system {} (d = {}; eps: {} training, {} unseen), transform {}, sampler {}, labeller {}, seed {}",
        name_of(s),
        s.dim(),
        s.train_grid().len(),
        s.unseen_grid().len(),
        name_of(&cfg.transform),
        name_of(&cfg.sampler),
        name_of(&cfg.labeller),
        cfg.seed
    );
    if !s.has_reference() {
        println!("{}", crate::plugins::data_system::summary(s.as_ref()));
    }
    if let Some(n) = cfg.sampler.expected_len(s.train_grid().len()) {
        println!("training points: about {n}");
    }
    let parts = cfg.memory_estimate();
    let total: f64 = parts.iter().map(|p| p.1).sum();
    let limit = crate::resources::limit().map_or("none known".into(), |l| crate::resources::human(l as f64));
    let each: Vec<String> = parts.iter().map(|(k, b)| format!("{k}: {}", crate::resources::human(*b))).collect();
    println!("memory estimate {} (limit {limit}): {}", crate::resources::human(total), each.join(", "));
    let work = RunDir::work_of(out);
    if !force && RunDir::holds_interrupted(&work) {
        return Err(interrupted_run(&work, out));
    }
    println!("would write {}{}", out.display(), if force { " (replacing what it holds)" } else { "" });
    Ok(())
}

/// `stiffx run`: a new run into `--out` (all or nothing, [`RunDir`]), or `--resume DIR`.
pub fn run(a: &RunArgs) -> Result<()> {
    if let Some(dir) = &a.resume {
        return resume(dir, a);
    }
    let (cfg, opts) = run_config(a)?;
    let out = opts.out.clone().unwrap_or_else(|| "run".into());
    if a.check {
        return check(&cfg, &out, a.force);
    }
    refuse_occupied(&out, a.force)?;
    let rd = RunDir::open(&out)?;
    if rd.interrupted() && !a.force {
        return Err(interrupted_run(&rd.work, &out));
    }
    rd.clear()?;
    execute(&cfg, config_hash(&cfg), opts, rd, None)
}

/// Refuses `out` as a run directory when it cannot be one (`.`, `..`, `/`) or, unless `force`, when
/// it holds anything.
fn refuse_occupied(out: &Path, force: bool) -> Result<()> {
    RunDir::check_path(out)?;
    match RunDir::occupant(out) {
        Some(what) if !force => Err(Error::Occupied {
            message: format!(
                "{} holds {what}; --force replaces it (when the new run completes), or choose another --out",
                out.display()
            ),
        }),
        _ => Ok(()),
    }
}

/// The refusal of the interrupted run in the working directory `work` of `out`: where its saved state
/// stands and how to continue or discard it.
fn interrupted_run(work: &Path, out: &Path) -> Error {
    let at = match Resumable::load(&work.join(RESUME)) {
        Ok(r) => format!("state saved after row {} of its loss curve", r.train_state.curve.len()),
        Err(_) => "no state saved yet".into(),
    };
    Error::Occupied {
        message: format!(
            "an interrupted run is in {} ({at}); `stiffx run --resume {}` continues it, --force discards it",
            work.display(),
            out.display()
        ),
    }
}

/// `stiffx run --resume DIR`: the interrupted run's config (its working directory's `config.toml`)
/// and saved state; a complete run is reported as such.
fn resume(dir: &Path, a: &RunArgs) -> Result<()> {
    let opts = run_options(&a.compute)?;
    let work = RunDir::work_of(dir);
    if dir.join(DONE).exists() && !work.exists() {
        println!("{} holds a complete run; nothing to resume", dir.display());
        let path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let m: RunMetrics = serde_json::from_str(&text).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        print_summary(&m);
        return Ok(());
    }
    if !work.join("config.toml").exists() {
        return Err(Error::invalid(
            "--resume",
            dir.display(),
            format!("the output directory of an interrupted run (there is no {})", work.join("config.toml").display()),
        ));
    }
    let rd = RunDir::open(dir)?;
    let cfg = Config::from_file(&rd.work.join("config.toml"))?;
    let hash = config_hash(&cfg);
    let state = match rd.resumable()? {
        Some(r) if r.config_sha256 == hash => Some(r.train_state),
        Some(_) => {
            return Err(Error::Checkpoint {
                path: rd.work.join(RESUME),
                message: "its state belongs to another config than the config.toml beside it".into(),
            });
        }
        // Stopped before its first save (during sampling and labelling): it starts over.
        None => None,
    };
    if let Some(Err(e)) = state.as_ref().map(|s| s.continues_in(cfg.train.precision)) {
        return Err(Error::Unsupported(format!(
            "{e}; its best weights so far are in {} (`stiffx eval --checkpoint` reads it); `stiffx run --force` starts it again",
            rd.work.join(RESUME).display()
        )));
    }
    execute(&cfg, hash, RunOptions { out: Some(dir.to_path_buf()), ..opts }, rd, state)
}

/// Runs `cfg` in `rd`'s working directory (from `state` when given) and completes the directory,
/// its marker recording `hash` ([`config_hash`] of `cfg`, taken before the data are read).
fn execute(cfg: &Config, hash: String, opts: RunOptions, rd: RunDir, state: Option<TrainState>) -> Result<()> {
    let out = rd.dir.clone();
    let name = out.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let label = opts.label.clone().or(Some(name.clone()));
    let run_opts = RunOptions { out: Some(rd.work.clone()), label, ..opts };
    // The config first: a run stopped while sampling and labelling is resumable too (it starts over).
    crate::io::write_atomic(&rd.work.join("config.toml"), cfg.to_toml().as_bytes())?;
    if run_opts.progress {
        eprintln!("sampling and labelling …");
    }
    let result = generate(cfg).and_then(|data| run_with_data(cfg, &run_opts, &data, state));
    match result {
        Ok(m) => {
            rd.commit(hash, &name)?;
            print_summary(&m);
            println!("results in {}", out.display());
            Ok(())
        }
        Err(e @ Error::Interrupted { .. }) => {
            Err(e.with_resume(&format!("resume with: stiffx run --resume {}", out.display())))
        }
        Err(e) => {
            eprintln!("the run's files so far are in {} (not a complete run; --force starts over)", rd.work.display());
            Err(e)
        }
    }
}
