//! Eval specs: several checkpoints evaluated as jobs of the experiment engine, one job per checkpoint,
//! collected into one table and one error-vs-eps curve (mean ± std over the checkpoints, Fig. 10).
//!
//! ```toml
//! kind = "eval"
//! out = "runs/eval_seeds"
//! checkpoints = ["../runs/a-s1/checkpoint.json", "../runs/a-s2/checkpoint.json"]  # relative to this file
//! eps = [0.005, 0.6]     # optional: stiffness values (default: each checkpoint's evaluation grid)
//! unseen = true          # optional: also the system's unseen grid
//! horizon = 1500.0       # optional: replaces eval.horizon (same spacing and dt)
//! integrator = "bdf"     # optional: rk4 or bdf rollouts
//! ```
//!
//! A job's id is its checkpoint's folder name (`a-s1`), made unique with `-<index>` when two agree.
//! Its results are `evaluation.json`, `per_eps.csv`, `traces.csv` (and `time_windows.csv` for
//! log-spaced times) in `<out>/<id>/`; `collect` writes `eval.csv`, `eval.md`, `eps_curve.csv` and
//! `errors_vs_eps.png`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::job::Task;
use crate::config::{Config, Integrator};
use crate::error::{Error, Result};
use crate::eval::evaluate::Evaluation;
use crate::eval::metrics::{EpsMetrics, eps_curve};
use crate::io::{write_atomic, write_csv};
use crate::table::{Column, Table, mean_std_cell};

/// An eval spec file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalFile {
    /// Always `"eval"`.
    pub kind: String,
    /// Output directory (relative to the working directory).
    pub out: PathBuf,
    /// Checkpoint files, relative to the spec file.
    pub checkpoints: Vec<PathBuf>,
    /// Stiffness values (empty: each checkpoint's evaluation grid).
    #[serde(default)]
    pub eps: Vec<f64>,
    /// Also evaluate the system's unseen grid.
    #[serde(default)]
    pub unseen: bool,
    /// Replaces the checkpoints' `eval.horizon`.
    #[serde(default)]
    pub horizon: Option<f64>,
    /// Replaces the checkpoints' `eval.integrator`.
    #[serde(default)]
    pub integrator: Option<Integrator>,
}

/// The jobs `(name, config, task)` of an eval spec whose checkpoints are relative to `dir`: each
/// checkpoint loaded and checked, the spec's overrides applied and validated.
pub fn jobs(f: &EvalFile, dir: &Path) -> Result<Vec<(String, Config, Task)>> {
    if f.checkpoints.is_empty() {
        return Err(Error::invalid("checkpoints", "[]", "at least one checkpoint file"));
    }
    let mut out: Vec<(String, Config, Task)> = Vec::new();
    for (i, c) in f.checkpoints.iter().enumerate() {
        let path = dir.join(c);
        let ck = Checkpoint::load(&path)?;
        let mut cfg = ck.config;
        override_eval(&mut cfg, f.horizon, f.integrator, "horizon")?;
        for (k, &e) in f.eps.iter().enumerate() {
            cfg.system.check_param(e).map_err(|_| Error::invalid(format!("eps[{k}]"), e, "stiffness values > 0"))?;
        }
        let eps = eval_grid(&cfg, &f.eps, f.unseen);
        let folder = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let mut name =
            folder.filter(|n| !n.is_empty() && n != "." && n != "..").unwrap_or_else(|| format!("checkpoint{}", i + 1));
        if out.iter().any(|(n, _, _)| *n == name) {
            name = format!("{name}-{i}");
        }
        out.push((name, cfg, Task::Eval { checkpoint: path, eps }));
    }
    let system = crate::plugins::registry::name_of(&out[0].1.system);
    for (k, (_, cfg, _)) in out.iter().enumerate() {
        if crate::plugins::registry::name_of(&cfg.system) != system {
            return Err(Error::invalid(
                format!("checkpoints[{k}]"),
                f.checkpoints[k].display(),
                format!("checkpoints of one system (the first is `{system}`)"),
            ));
        }
    }
    Ok(out)
}

/// Applies an evaluation's overrides to a checkpoint's config (`stiffx eval` and eval specs): the
/// horizon, checked against the config's evaluation grid, and the rollout integrator. `field` names
/// the horizon (`--horizon`, `horizon`) in errors.
pub fn override_eval(
    cfg: &mut Config,
    horizon: Option<f64>,
    integrator: Option<Integrator>,
    field: &str,
) -> Result<()> {
    if let Some(m) = integrator {
        cfg.eval.integrator = m;
    }
    if let Some(h) = horizon {
        Error::positive(field, h)?;
        cfg.eval.horizon = h;
        let e = &cfg.eval;
        crate::ode::check_times("eval", e.spacing, e.dt, e.horizon, e.t_first, e.points).map_err(|err| {
            Error::invalid(field, h, format!("a horizon the checkpoint's evaluation grid allows ({err})"))
        })?;
    }
    Ok(())
}

/// The stiffness values an evaluation covers: `eps` (the config's evaluation grid when empty), plus
/// the system's unseen grid when `unseen`, sorted and without repeats.
pub fn eval_grid(cfg: &Config, eps: &[f64], unseen: bool) -> Vec<f64> {
    let mut all = if eps.is_empty() { cfg.eval_eps() } else { eps.to_vec() };
    if unseen {
        all.extend(cfg.system.unseen_grid());
    }
    all.sort_by(f64::total_cmp);
    all.dedup();
    all
}

/// One row of `eval.csv`: a checkpoint's grid means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// The job id (checkpoint folder).
    pub checkpoint: String,
    /// Mean over the evaluated eps of the relative fast-eigenvalue error.
    pub fast_rel: f64,
    /// The worst per-eps mean relative fast error.
    pub worst_eps_fast_rel: f64,
    /// Mean relative slow error.
    pub slow_rel: f64,
    /// Mean of the worst relative error over all nonzero eigenvalues at a point.
    pub all_rel: f64,
    /// Mean fraction of points with every nonzero eigenvalue within 5 %.
    pub all_within: f64,
    /// Mean rollout L2 error (eq. 17).
    pub rollout_l2: f64,
    /// Mean per-species rollout error relative to its range.
    pub rollout_rel: f64,
}

/// Writes `eval.csv`, `eval.md`, `eps_curve.csv` and (with `figures`) `errors_vs_eps.png` into `out`
/// from the finished evaluations `(id, config, evaluation)`; returns the Markdown table.
pub fn tables(out: &Path, done: &[(String, Config, Evaluation)], figures: bool) -> Result<String> {
    let Some((_, first, _)) = done.first() else {
        return Err(Error::invalid("checkpoints", "[]", "at least one checkpoint file"));
    };
    let rows: Vec<EvalRow> = done
        .iter()
        .map(|(id, _, ev)| {
            let g = &ev.grid_mean;
            EvalRow {
                checkpoint: id.clone(),
                fast_rel: g.fast_rel,
                worst_eps_fast_rel: g.fast_rel_worst_eps_mean,
                slow_rel: g.slow_rel,
                all_rel: g.all_rel,
                all_within: g.all_within,
                rollout_l2: g.rollout_l2,
                rollout_rel: g.rollout_rel,
            }
        })
        .collect();
    write_csv(&out.join("eval.csv"), &rows)?;
    let cols: [Column<EvalRow>; 7] = [
        ("fast rel", |r| r.fast_rel),
        ("worst-eps fast rel", |r| r.worst_eps_fast_rel),
        ("slow rel", |r| r.slow_rel),
        ("all rel", |r| r.all_rel),
        ("≤5 %", |r| r.all_within),
        ("rollout L2", |r| r.rollout_l2),
        ("rollout rel", |r| r.rollout_rel),
    ];
    let mut md = format!(
        "# Evaluation of {} checkpoints\n\nSystem {}; means over each checkpoint's evaluated eps; `≤5 %` is the fraction of points with every nonzero eigenvalue within 5 %.\n\n",
        rows.len(),
        crate::plugins::registry::name_of(&first.system),
    );
    let mut t = Table::new(std::iter::once("checkpoint").chain(cols.iter().map(|c| c.0)));
    for r in &rows {
        t.row(std::iter::once(r.checkpoint.clone()).chain(cols.iter().map(|(_, f)| format!("{:.3e}", f(r)))));
    }
    if rows.len() > 1 {
        let cells = cols.iter().map(|(_, f)| mean_std_cell(&rows.iter().map(f).collect::<Vec<_>>(), 3, "diverged"));
        t.row(std::iter::once("mean ± std".to_string()).chain(cells));
    }
    md.push_str(&t.markdown());
    write_atomic(&out.join("eval.md"), md.as_bytes())?;
    let label = if done.len() == 1 { "checkpoint".to_string() } else { format!("mean of {} checkpoints", done.len()) };
    let per: Vec<&[EpsMetrics]> = done.iter().map(|(_, _, ev)| ev.per_eps.as_slice()).collect();
    let curve = eps_curve(&label, &per, &first.system.unseen_grid());
    write_csv(&out.join("eps_curve.csv"), &curve)?;
    if figures {
        crate::figures::paper::eps_curves(&out.join("errors_vs_eps.png"), &first.system.param_name(), &curve)?;
    }
    Ok(md)
}
