//! The one-page report of a sweep (`report.md`) and its figures: Table 1 side by side with the
//! paper's, seed averages (Fig. 9), errors across the stiffness parameter on the training and unseen
//! grids (Fig. 10, `eps_curve.csv`), loss curves (Fig. 6), trajectories (Fig. 7), eigenvalues along
//! trajectories (Fig. 8), and the target diagnostics of each configuration's dataset (Figs. 2–5),
//! with the settings used and the wall time split into data generation, training and evaluation.
//!
//! Everything is rebuilt from the run directories, so re-running a finished sweep (every run is
//! skipped) regenerates the report with the current code.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::pipeline::{RunMetrics, RunOptions};
use crate::error::{Error, Result};
use crate::eval::diagnostics::Diagnostics;
use crate::eval::evaluate::{evaluate, read_traces};
use crate::eval::metrics::{CurvePoint, EpsMetrics, eps_curve};
use crate::figures::paper::{self, Bar};
use crate::io::{write_atomic, write_csv};
use crate::table::{Table, mean_std_cell};
use crate::train::EpochRecord;

/// One row of `table1.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Config name (file stem).
    pub config: String,
    /// Seed.
    pub seed: u64,
    /// Transform name.
    pub transform: String,
    /// Whether the sampler is a cloud.
    pub cloud: bool,
    /// Best validation loss.
    pub best_val_loss: f64,
    /// Rollout L2 at the reference eps.
    pub rollout_l2: f64,
    /// Fast eigenvalue error at the reference eps.
    pub fast_abs: f64,
    /// Slow eigenvalue error at the reference eps.
    pub slow_abs: f64,
    /// S_comb (eq. 32) over all runs of the sweep.
    pub s_comb: f64,
    /// Relative fast error at the reference eps.
    pub fast_rel: f64,
    /// Grid means.
    pub grid_rollout_l2: f64,
    /// Grid mean fast error.
    pub grid_fast_abs: f64,
    /// Grid mean slow error.
    pub grid_slow_abs: f64,
    /// Grid mean relative fast error.
    pub grid_fast_rel: f64,
    /// The largest per-eps *mean* relative fast error over the grid (was `worst_fast_rel`).
    #[serde(alias = "worst_fast_rel")]
    pub worst_eps_mean_fast_rel: f64,
    /// The pointwise worst relative fast error over every evaluated point of the grid (NaN in results
    /// written before pointwise metrics).
    #[serde(default = "nan")]
    pub fast_rel_max: f64,
    /// The pointwise worst relative slow error, likewise.
    #[serde(default = "nan")]
    pub slow_rel_max: f64,
    /// Seconds: data, training, evaluation.
    pub seconds_data: f64,
    /// Training seconds (this run's share of a pass of networks trained together, `--together`).
    pub seconds_train: f64,
    /// Evaluation seconds.
    pub seconds_eval: f64,
}

/// NaN, the default of a metric missing from older results.
fn nan() -> f64 {
    f64::NAN
}

/// The paper's Table 1 seed means (rollout L2, |Δλ_fast|, |Δλ_slow|) for its four configurations,
/// computed from its per-seed rows.
pub const PAPER_TABLE1: [(&str, f64, f64, f64); 4] = [
    ("baseline", 1.068e-3, 1.791, 1.241e-2),
    ("asinh", 2.101e-3, 7.837, 4.651e-3),
    ("cloud", 1.729e-3, 0.1218, 2.559e-2),
    ("asinh_cloud", 1.200e-4, 0.1351, 7.840e-4),
];

/// One finished run of a sweep.
pub struct SweepRun<'a> {
    /// Config name (file stem).
    pub name: &'a str,
    /// Its config (with the seed set).
    pub cfg: &'a Config,
    /// Its metrics.
    pub metrics: &'a RunMetrics,
    /// Its output directory.
    pub dir: std::path::PathBuf,
}

/// The metrics of a run at every eps of `eps` (its training grid and the system's unseen grid), cached
/// in `<run>/all_eps.csv`. The run's own per-eps metrics are used where complete; only the missing eps
/// (the unseen grid, or values from runs written before a metric existed) are evaluated from the
/// checkpoint — deterministic, so an evaluated training eps equals the run's own.
fn all_eps_metrics(r: &SweepRun<'_>, eps: &[f64], opts: &RunOptions) -> Result<Vec<EpsMetrics>> {
    let complete = |m: &EpsMetrics| !m.fast_angle_deg.is_nan();
    let path = r.dir.join("all_eps.csv");
    if let Ok(mut rd) = csv::Reader::from_path(&path)
        && let Ok(v) = rd.deserialize().collect::<std::result::Result<Vec<EpsMetrics>, _>>()
        && eps.iter().all(|e| v.iter().any(|m| m.eps == *e && complete(m)))
    {
        return Ok(v);
    }
    let mut all: Vec<EpsMetrics> =
        r.metrics.eval.per_eps.iter().filter(|m| eps.contains(&m.eps) && complete(m)).cloned().collect();
    let missing: Vec<f64> = eps.iter().copied().filter(|e| !all.iter().any(|m| m.eps == *e)).collect();
    if !missing.is_empty() {
        let ck = Checkpoint::load(&r.dir.join("checkpoint.json"))?;
        let device = opts.backend.device()?;
        let (ev, _) = evaluate(&ck, &missing, &device, opts.eval_precision, opts.jacobian)?;
        all.extend(ev.per_eps);
    }
    all.sort_by(|a, b| a.eps.total_cmp(&b.eps));
    write_csv(&path, &all)?;
    Ok(all)
}

fn read_curve(path: &Path) -> Result<Vec<EpochRecord>> {
    let bad = |m: String| Error::Checkpoint { path: path.into(), message: m };
    let mut rd = csv::Reader::from_path(path).map_err(|e| bad(format!("cannot read the loss curve: {e}")))?;
    rd.deserialize().collect::<std::result::Result<_, _>>().map_err(|e| bad(format!("malformed loss curve: {e}")))
}

/// `mean ± std` over `rows` of one metric, as a table cell ([`mean_std_cell`]).
fn cell(rows: &[&Row], f: fn(&Row) -> f64) -> String {
    mean_std_cell(&rows.iter().map(|r| f(r)).collect::<Vec<_>>(), 2, "diverged")
}

fn e3(v: f64) -> String {
    format!("{v:.2e}")
}

/// Writes the figures, `eps_curve.csv`, the per-config data diagnostics and `report.md` of a sweep
/// into `out`. `rows` are the sweep's Table 1 rows (sorted by config and seed).
pub fn sweep_report(out: &Path, runs: &[SweepRun<'_>], rows: &[Row], opts: &RunOptions) -> Result<()> {
    let say = |m: &str| {
        if opts.progress {
            eprintln!("{m}");
        }
    };
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        if !names.contains(&r.name) {
            names.push(r.name);
        }
    }
    let sys = runs.first().ok_or_else(|| Error::invalid("configs", "[]", "at least one run"))?.cfg.system.clone();
    let param = sys.param_name();
    let unseen = sys.unseen_grid();
    let fig = out.join("figures");

    // Fig. 6: loss curves of every run.
    say("report: figures …");
    let mut curves = Vec::new();
    for r in runs {
        curves.push((r.name.to_string(), r.cfg.seed, read_curve(&r.dir.join("loss_curve.csv"))?));
    }
    paper::loss_curves(&fig.join("fig6_loss.png"), &curves)?;

    // Figs. 7 and 8: first seed of every config.
    let d = sys.dim();
    let mut firsts = Vec::new();
    for n in &names {
        if let Some(r) = runs.iter().find(|r| r.name == *n) {
            firsts.push((format!("{n} (seed {})", r.cfg.seed), read_traces(&r.dir.join("traces.csv"), d)?, r));
        }
    }
    let tr_refs: Vec<(String, &crate::eval::evaluate::Traces)> =
        firsts.iter().map(|(l, t, _)| (l.clone(), t)).collect();
    let ref_eps = runs[0].cfg.eval.reference_eps;
    paper::trajectories(&fig.join("fig7_trajectories.png"), sys.as_ref(), &tr_refs, ref_eps)?;
    let mut eig_eps = vec![ref_eps];
    if let Some(stiffest) = sys.train_grid().into_iter().min_by(f64::total_cmp)
        && stiffest != ref_eps
    {
        eig_eps.push(stiffest);
    }
    paper::eigenvalues(&fig.join("fig8_eigenvalues.png"), sys.as_ref(), &tr_refs, &eig_eps)?;

    // Fig. 9: seed averages at the reference eps.
    let bars = |f: fn(&Row) -> f64| -> Vec<Bar> {
        names
            .iter()
            .map(|n| Bar::of(n.to_string(), &rows.iter().filter(|r| r.config == *n).map(f).collect::<Vec<_>>()))
            .collect()
    };
    paper::seed_averages(
        &fig.join("fig9_seed_averages.png"),
        &[
            (format!("rollout L2 ({param} = {ref_eps})"), bars(|r| r.rollout_l2)),
            (format!("|Δλ_fast| ({param} = {ref_eps})"), bars(|r| r.fast_abs)),
            (format!("|Δλ_slow| ({param} = {ref_eps})"), bars(|r| r.slow_abs)),
        ],
    )?;

    // Fig. 10 and eps_curve.csv: every evaluated eps, training and unseen (section 5.9), seed-averaged.
    say("report: evaluating the unseen grid of every run …");
    let mut per_run: Vec<Vec<EpsMetrics>> = Vec::new();
    for r in runs {
        let mut eps: Vec<f64> = r.metrics.eval.per_eps.iter().map(|m| m.eps).chain(unseen.iter().copied()).collect();
        eps.sort_by(f64::total_cmp);
        eps.dedup();
        per_run.push(all_eps_metrics(r, &eps, opts)?);
    }
    let mut points: Vec<CurvePoint> = Vec::new();
    for n in &names {
        let per: Vec<&[EpsMetrics]> =
            runs.iter().zip(&per_run).filter(|(r, _)| r.name == *n).map(|(_, p)| p.as_slice()).collect();
        points.extend(eps_curve(n, &per, &unseen));
    }
    write_csv(&out.join("eps_curve.csv"), &points)?;
    paper::eps_curves(&fig.join("fig10_errors_vs_eps.png"), &param, &points)?;

    // Figs. 2–5: target diagnostics of each config's dataset (first seed); datasets are shared.
    say("report: data diagnostics …");
    let mut diag_md = Vec::new();
    for (_, _, r) in &firsts {
        let dir = out.join("data").join(r.name);
        if !dir.join("diagnostics.csv").exists() {
            let data = crate::engine::cache::dataset(out, r.cfg)?;
            let (diag, source) = (Diagnostics::of(r.cfg, &data)?, format!("config `{}`, seed {}", r.name, r.cfg.seed));
            diag.write(&dir, &source)?;
            paper::diagnostics(&dir, &diag, &source)?;
        }
        let stats = std::fs::read_to_string(dir.join("diagnostics.md"))
            .map_err(|e| Error::io(dir.join("diagnostics.md"), e))?;
        diag_md.push((r.name, stats));
    }

    write_atomic(&out.join("report.md"), markdown(runs, rows, &names, &points, &diag_md).as_bytes())
}

/// A Markdown table: one row per config, one column per eps (unseen ones in italics).
fn eps_table(points: &[CurvePoint], names: &[&str], eps: &[f64], cell: fn(&CurvePoint) -> String) -> String {
    let head: Vec<String> = eps
        .iter()
        .map(|e| if points.iter().any(|p| p.eps == *e && p.unseen) { format!("*{e}*") } else { format!("{e}") })
        .collect();
    let mut t = Table::new(std::iter::once("config".to_string()).chain(head));
    for n in names {
        let cells = eps.iter().map(|e| points.iter().find(|p| p.config == *n && p.eps == *e).map_or("—".into(), cell));
        t.row(std::iter::once(n.to_string()).chain(cells));
    }
    t.markdown()
}

fn markdown(
    runs: &[SweepRun<'_>],
    rows: &[Row],
    names: &[&str],
    points: &[CurvePoint],
    diag: &[(&str, String)],
) -> String {
    let cfg0 = runs[0].cfg;
    let param = cfg0.system.param_name();
    let ref_eps = cfg0.eval.reference_eps;
    let mut s = String::from("# stiffx sweep report\n\n");
    let seeds: Vec<u64> = {
        let mut v: Vec<u64> = runs.iter().map(|r| r.cfg.seed).collect();
        v.sort();
        v.dedup();
        v
    };
    s.push_str(&format!(
        "{} runs: configurations {} × seeds {:?}, system `{}`, stiffness grid {:?} (training) and {:?} (unseen).\n\n",
        runs.len(),
        names.join(", "),
        seeds,
        crate::plugins::registry::name_of(&cfg0.system),
        cfg0.system.train_grid(),
        cfg0.system.unseen_grid()
    ));
    s.push_str("Metrics are evaluated along the system's fixed test initial states (RK4 rollouts, eq. 17; eigenvalue errors at every point of the reference trajectories, eq. 18) ");
    s.push_str(&format!(
        "with Δt = {}, T = {}: at the reference {param} = {ref_eps} (the paper's Table 1 setting) and as the mean over the training grid.\n\n",
        cfg0.eval.dt, cfg0.eval.horizon
    ));

    s.push_str("## Settings\n\n");
    let mut t = Table::new(["config", "sampler", "labeller", "transform (fitted)", "model", "training"]);
    for n in names {
        if let Some(r) = runs.iter().find(|r| r.name == *n) {
            let c = r.cfg;
            let schedule = match c.train.schedule {
                crate::train::config::Schedule::Constant => format!("lr {} constant", c.train.lr),
                crate::train::config::Schedule::Cosine => format!("lr {} → {} cosine", c.train.lr, c.train.lr_final),
            };
            t.row([
                n.to_string(),
                r.metrics.sampler.clone(),
                r.metrics.labeller.clone(),
                r.metrics.transform.chars().take(120).collect::<String>(),
                format!("{}×{} {}, {}", c.model.hidden, c.model.width, c.model.activation.name(), r.metrics.backend),
                format!(
                    "{} epochs, batch {}, {schedule}, {} samples",
                    c.train.epochs,
                    c.train.batch,
                    r.metrics.n_train + r.metrics.n_val
                ),
            ]);
        }
    }
    s.push_str(&t.markdown());

    s.push_str(&format!("\n## Table 1: seed means at {param} = {ref_eps}, side by side with the paper\n\n"));
    let mut t = Table::new([
        "config",
        "rollout L2",
        "paper",
        "\\|Δλ_fast\\|",
        "paper",
        "\\|Δλ_slow\\|",
        "paper",
        "fast rel",
        "S_comb (median-normalized)",
    ]);
    for n in names {
        let g: Vec<&Row> = rows.iter().filter(|r| r.config == *n).collect();
        let m = |f: fn(&Row) -> f64| cell(&g, f);
        let p = PAPER_TABLE1.iter().find(|p| p.0 == *n);
        let pv = |f: fn(&(&str, f64, f64, f64)) -> f64| p.map_or("—".to_string(), |p| e3(f(p)));
        t.row([
            n.to_string(),
            m(|r| r.rollout_l2),
            pv(|p| p.1),
            m(|r| r.fast_abs),
            pv(|p| p.2),
            m(|r| r.slow_abs),
            pv(|p| p.3),
            m(|r| r.fast_rel),
            m(|r| r.s_comb),
        ]);
    }
    s.push_str(&t.markdown());
    s.push_str(
        "\nThe same, as the mean over the training grid (each run's grid mean, then mean ± std over seeds):\n\n",
    );
    let mut t = Table::new([
        "config",
        "rollout L2",
        "\\|Δλ_fast\\|",
        "\\|Δλ_slow\\|",
        "fast rel",
        "worst training-eps fast rel",
    ]);
    for n in names {
        let g: Vec<&Row> = rows.iter().filter(|r| r.config == *n).collect();
        let m = |f: fn(&Row) -> f64| cell(&g, f);
        t.row([
            n.to_string(),
            m(|r| r.grid_rollout_l2),
            m(|r| r.grid_fast_abs),
            m(|r| r.grid_slow_abs),
            m(|r| r.grid_fast_rel),
            m(|r| r.worst_eps_mean_fast_rel),
        ]);
    }
    s.push_str(&t.markdown());
    s.push_str("\nPer run: [`table1.md`](table1.md), [`table1.csv`](table1.csv). A rollout of `inf` (a learned state above 1000× the largest reference magnitude, or not finite) means the learned RHS blew up along the rollout: the learned field, not the integrator, is unstable there. Such runs are counted (`n/m diverged`) and left out of every mean ± std and of the figures' axes (see the per-eps values in `eps_curve.csv`, column `diverged`).\n\n![Fig. 9](figures/fig9_seed_averages.png)\n\n");

    s.push_str(&format!(
        "## Across {param}: relative fast-eigenvalue error |λ_fast/λ*_fast − 1| (mean over seeds; unseen values in *italics*)\n\n"
    ));
    let mut eps: Vec<f64> = points.iter().map(|p| p.eps).collect();
    eps.sort_by(f64::total_cmp);
    eps.dedup();
    s.push_str(&eps_table(points, names, &eps, |p| format!("{:.2}%", 100.0 * p.fast_rel)));
    s.push_str("\nFast-subspace fidelity: mean angle (degrees) between the learned and the true fast eigenvector:\n\n");
    s.push_str(&eps_table(points, names, &eps, |p| format!("{:.3}°", p.fast_angle_deg)));
    for n in names {
        let un: Vec<&CurvePoint> = points.iter().filter(|p| p.config == *n && p.unseen).collect();
        let tr: Vec<&CurvePoint> = points.iter().filter(|p| p.config == *n && !p.unseen).collect();
        let worst = |v: &[&CurvePoint]| v.iter().map(|p| p.fast_rel).fold(0.0f64, f64::max);
        let un_txt = if un.is_empty() { "not evaluated".to_string() } else { format!("{:.2} %", 100.0 * worst(&un)) };
        s.push_str(&format!(
            "\n- {n}: worst seed-mean relative fast error {:.2} % on the training grid, {un_txt} on the unseen grid.",
            100.0 * worst(&tr),
        ));
    }
    s.push_str("\n\nAll metrics per eps (mean ± std over seeds): [`eps_curve.csv`](eps_curve.csv).\n\n![Fig. 10](figures/fig10_errors_vs_eps.png)\n\n");

    s.push_str("## Training and rollouts\n\n![Fig. 6](figures/fig6_loss.png)\n\n![Fig. 7](figures/fig7_trajectories.png)\n\n![Fig. 8](figures/fig8_eigenvalues.png)\n\n");

    s.push_str("## Target diagnostics (Figs. 2–5)\n\nSkewness and normal Q-Q correlation R of each target component, raw and after the config's fitted transform, on the trajectory points (`base`) and on the whole dataset (`all`).\n\n");
    for (n, md) in diag {
        s.push_str(&format!("### {n}\n\n"));
        // Keep the table, drop the file's own heading.
        for line in md.lines().filter(|l| l.starts_with('|') || l.starts_with("config") || l.starts_with("Config")) {
            s.push_str(line);
            s.push('\n');
        }
        s.push_str(&format!("\n![histograms](data/{n}/histograms.png)\n![Q-Q](data/{n}/qq.png)\n\n"));
    }

    // A dataset shared by several runs is generated once: count each data key once.
    let mut seen = Vec::new();
    let mut d = 0.0;
    for r in runs {
        let key = crate::engine::cache::data_key(r.cfg);
        if !seen.contains(&key) {
            d += r.metrics.seconds.sample + r.metrics.seconds.label;
            seen.push(key);
        }
    }
    let (t, e) = rows.iter().fold((0.0, 0.0), |a, r| (a.0 + r.seconds_train, a.1 + r.seconds_eval));
    s.push_str(&format!(
        "## Wall time\n\nSum over the {} runs: data generation {d:.0} s ({} datasets, each shared by the runs with the same seed and data settings), training {t:.0} s, evaluation {e:.0} s; total {:.0} s ({:.1} h). Unseen-eps evaluations and the report add a few seconds.\n\nPer run: every run directory (`<config>-s<seed>/`) holds `metrics.json`, `per_eps.csv`, `loss_curve.csv`, `label_bias.csv`, `traces.csv`, `checkpoint.json` and its own figures.\n",
        rows.len(),
        seen.len(),
        d + t + e,
        (d + t + e) / 3600.0
    ));
    s
}
