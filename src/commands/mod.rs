//! The subcommands behind the CLI: `run`, `eval`, `bench`, `sweep`, `diagnose`, `compare` and
//! `inspect`. Each returns a typed error; `main` maps it to the exit code.

pub mod jobs;

use std::path::PathBuf;

use clap::ValueEnum;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::backend::{Backend, Precision};
use crate::cli::{BenchArgs, DiagnoseArgs, EvalArgs, RunArgs, SweepArgs, device_options, run_config};
use crate::train::config::TrainConfig;
use crate::error::Result;
use crate::io::{write_csv, write_json};
use crate::plugins::labeller::{Burst, Labeller, TauMode};
use crate::model::{Normalizer, Weights};
use crate::engine::checkpoint::Checkpoint;
use crate::engine::pipeline::{RunMetrics, run as run_pipeline};
use crate::eval::evaluate::evaluate;
use crate::plugins::sampler::{CloudSampler, Sampler};
use crate::eval::spectral::{JacobianMode, LearnedRhs, eigenvalues};
use crate::train::{Dataset, Silent, Trained, train};
use crate::plugins::transform::Identity;

fn print_summary(m: &RunMetrics) {
    println!(
        "best val loss {:.3e} (epoch {}), {:.0} samples/s on {}{}",
        m.best_val_loss,
        m.best_epoch,
        m.train_samples_per_sec,
        m.backend,
        if m.train_precision.is_f32() { "" } else { " (f64 training)" }
    );
    print_eval_table(&m.eval.per_eps);
    let r = &m.eval.reference;
    println!(
        "at eps = {}: rollout {:.3e}, fast {:.3e}, slow {:.3e}, fast rel {:.3e}",
        r.eps, r.rollout_l2, r.fast_abs, r.slow_abs, r.fast_rel
    );
    let g = &m.eval.grid_mean;
    println!(
        "grid mean: rollout {:.3e}, fast {:.3e}, slow {:.3e}, fast rel {:.3e} (worst eps {:.3e})",
        g.rollout_l2, g.fast_abs, g.slow_abs, g.fast_rel, g.fast_rel_worst
    );
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

/// `stiffx run`.
pub fn run(a: &RunArgs) -> Result<()> {
    let (cfg, opts) = run_config(a)?;
    let m = run_pipeline(&cfg, &opts)?;
    print_summary(&m);
    if let Some(o) = &opts.out {
        println!("results in {}", o.display());
    }
    Ok(())
}

/// `stiffx eval`: evaluates one or several checkpoints at the config's grid, at `--eps` values and/or
/// on the unseen grid. Several checkpoints (seeds of one configuration) are also averaged: per-eps
/// mean ± std in `eps_curve.csv` and `errors_vs_eps.png` (the paper's Fig. 10).
pub fn eval(a: &EvalArgs) -> Result<()> {
    let (backend, jacobian, precision) = device_options(&a.device)?;
    let out = match (&a.out, a.checkpoint.as_slice()) {
        (Some(o), _) => o.clone(),
        (None, [one]) => one.parent().map(|p| p.join("eval")).unwrap_or_else(|| PathBuf::from("eval")),
        (None, _) => {
            return Err(crate::Error::invalid(
                "--out",
                "(none)",
                "an output directory when several checkpoints are given",
            ));
        }
    };
    if a.ensemble && a.checkpoint.len() < 2 {
        return Err(crate::Error::invalid(
            "--ensemble",
            format!("{} checkpoint", a.checkpoint.len()),
            "at least two checkpoints (the ensemble's members)",
        ));
    }
    let mut cks: Vec<Checkpoint> = a.checkpoint.iter().map(|p| Checkpoint::load(p)).collect::<Result<_>>()?;
    if let Some(integrator) = a.integrator {
        for ck in &mut cks {
            ck.config.eval.integrator = integrator;
        }
    }
    if let Some(h) = a.horizon {
        crate::Error::positive("--horizon", h)?;
        for ck in &mut cks {
            let e = &mut ck.config.eval;
            e.horizon = h;
            crate::ode::check_times("eval", e.spacing, e.dt, e.horizon, e.t_first, e.points).map_err(|err| {
                crate::Error::invalid(
                    "--horizon",
                    h,
                    format!("a horizon the checkpoint's evaluation grid allows ({err})"),
                )
            })?;
        }
    }
    let sys = &cks[0].config.system;
    for (ck, p) in cks.iter().zip(&a.checkpoint) {
        if crate::plugins::registry::name_of(&ck.config.system) != crate::plugins::registry::name_of(sys) {
            return Err(crate::Error::invalid(
                "--checkpoint",
                p.display(),
                format!("checkpoints of one system (the first is `{}`)", crate::plugins::registry::name_of(sys)),
            ));
        }
    }
    for &e in &a.eps {
        sys.check_param(e).map_err(|_| crate::Error::invalid("--eps", e, "stiffness values > 0"))?;
    }
    let eps_of = |ck: &Checkpoint| {
        let mut eps = if a.eps.is_empty() { ck.config.eval_eps() } else { a.eps.clone() };
        if a.unseen {
            eps.extend(ck.config.system.unseen_grid());
        }
        eps.sort_by(f64::total_cmp);
        eps.dedup();
        eps
    };
    let device = backend.device()?;
    let mut all = Vec::new();
    // Decade windows pooled over eps, one list per checkpoint (log-spaced evaluations only).
    let mut windows: Vec<(String, Vec<crate::eval::metrics::PooledWindow>)> = Vec::new();
    for (i, ck) in cks.iter().enumerate() {
        let (ev, traces) = evaluate(ck, &eps_of(ck), &device, precision, jacobian)?;
        let dir = if cks.len() == 1 { out.clone() } else { out.join(format!("checkpoint{}", i + 1)) };
        write_csv(&dir.join("per_eps.csv"), &ev.per_eps)?;
        let w = crate::eval::evaluate::write_time_windows(&dir, &ck.config, &traces)?;
        windows.push((format!("checkpoint{}", i + 1), crate::eval::metrics::pool_windows(&w)));
        write_json(&dir.join("evaluation.json"), &ev)?;
        println!("{}", a.checkpoint[i].display());
        print_eval_table(&ev.per_eps);
        all.push(ev.per_eps);
    }
    let mut ensemble = None;
    if a.ensemble {
        let dir = out.join("ensemble");
        let (ev, traces, spread, spread_windows) =
            crate::eval::evaluate::evaluate_ensemble(&cks, &eps_of(&cks[0]), &device, precision, jacobian)?;
        write_csv(&dir.join("per_eps.csv"), &ev.per_eps)?;
        let w = crate::eval::evaluate::write_time_windows(&dir, &cks[0].config, &traces)?;
        write_csv(&dir.join("ensemble.csv"), &spread)?;
        if !spread_windows.is_empty() {
            write_csv(&dir.join("ensemble_windows.csv"), &spread_windows)?;
        }
        write_json(&dir.join("evaluation.json"), &ev)?;
        println!("ensemble of {} checkpoints (mean field; its Jacobian is the mean of theirs)", cks.len());
        print_eval_table(&ev.per_eps);
        println!(
            "{:>16} {:>11} {:>11} {:>10} {:>10} {:>8} {:>14} {:>17} {:>10}",
            "eps / window",
            "fast spread",
            "slow spread",
            "fast cov",
            "slow cov",
            "agreed",
            "agreed within",
            "disagreed within",
            "all ≤ 5 %"
        );
        for m in spread.iter().chain(&spread_windows) {
            let eps = if m.eps.is_nan() {
                format!("t {}…{}", time_label(m.t_from), time_label(m.t_to))
            } else {
                m.eps.to_string()
            };
            println!(
                "{:>16} {:>11.3e} {:>11.3e} {:>10.3} {:>10.3} {:>8.3} {:>14.3} {:>17.3} {:>10.3}",
                eps,
                m.fast_spread_median,
                m.slow_spread_median,
                m.fast_coverage,
                m.slow_coverage,
                m.agreed,
                m.agreed_within,
                m.disagreed_within,
                m.all_within
            );
        }
        ensemble = Some((ev.per_eps, crate::eval::metrics::pool_windows(&w)));
    }
    let label = if cks.len() == 1 { "checkpoint".to_string() } else { format!("mean of {} checkpoints", cks.len()) };
    let runs: Vec<&[crate::eval::metrics::EpsMetrics]> = all.iter().map(|v| v.as_slice()).collect();
    let mut curve = crate::eval::metrics::eps_curve(&label, &runs, &sys.unseen_grid());
    if let Some((per_eps, _)) = &ensemble {
        let name = format!("ensemble of {} checkpoints", cks.len());
        curve.extend(crate::eval::metrics::eps_curve(&name, &[per_eps.as_slice()], &sys.unseen_grid()));
    }
    write_csv(&out.join("eps_curve.csv"), &curve)?;
    crate::figures::paper::eps_curves(&out.join("errors_vs_eps.png"), &sys.param_name(), &curve)?;
    if cks.len() > 1 {
        println!("{label} (± std over checkpoints)");
        println!("{:>8} {:>7} {:>20} {:>20}", "eps", "unseen", "fast rel", "rollout L2");
        for p in curve.iter().filter(|p| p.config == label) {
            println!(
                "{:>8} {:>7} {:>11.3e} ± {:.1e} {:>11.3e} ± {:.1e}",
                p.eps, p.unseen, p.fast_rel, p.fast_rel_std, p.rollout_l2, p.rollout_l2_std
            );
        }
    }
    let same_windows = |w: &[crate::eval::metrics::PooledWindow]| {
        w.len() == windows[0].1.len()
            && w.iter().zip(&windows[0].1).all(|(a, b)| (a.t_from, a.t_to) == (b.t_from, b.t_to))
    };
    if cks.len() > 1 && !windows[0].1.is_empty() && windows.iter().all(|(_, w)| same_windows(w)) {
        write_windows(&out, &windows, ensemble.as_ref().map(|e| e.1.as_slice()))?;
        println!("every nonzero eigenvalue within 5 %, per decade of t: {}", out.join("windows.md").display());
    }
    println!("results in {} (per_eps.csv, eps_curve.csv, errors_vs_eps.png)", out.display());
    Ok(())
}

/// The per-eps table `stiffx run` and `stiffx eval` print.
fn print_eval_table(per_eps: &[crate::eval::metrics::EpsMetrics]) {
    // The period column only for systems whose test trajectories oscillate over the horizon.
    let oscillating = per_eps.iter().any(|e| e.period_rel.is_some());
    println!(
        "{:>8} {:>11} {:>11} {:>11} {:>11} {:>10} {:>8} {:>10} {:>9}{}",
        "eps",
        "rollout L2",
        "rollout rel",
        "|dl_fast|",
        "|dl_slow|",
        "fast rel",
        "complex",
        "angle deg",
        "all ≤ 5 %",
        if oscillating { format!(" {:>12}", "period rel") } else { String::new() }
    );
    for e in per_eps {
        println!(
            "{:>8} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>10.3e} {:>8.3} {:>10.3} {:>9.3}{}",
            e.eps,
            e.rollout_l2,
            e.rollout_rel,
            e.fast_abs,
            e.slow_abs,
            e.fast_rel,
            e.complex_fraction,
            e.fast_angle_deg,
            e.all_within,
            match (oscillating, e.period_rel) {
                (false, _) => String::new(),
                (true, Some(p)) => format!(" {p:>12.3e}"),
                (true, None) => format!(" {:>12}", "—"),
            }
        );
    }
}

/// A window edge as people write it: `0`, `0.01` … `1000`, else `1e-4`, `1e5`.
fn time_label(t: f64) -> String {
    if t == 0.0 || (1e-2..=1e3).contains(&t) { format!("{t}") } else { format!("{t:e}") }
}

/// One row of `windows.csv`: a checkpoint's (or the ensemble's, or the mean/std over checkpoints)
/// share of points within 5 % in one window of t, pooled over eps.
#[derive(Debug, Serialize)]
struct WindowRow {
    model: String,
    t_from: f64,
    t_to: f64,
    points: usize,
    fast_within: f64,
    slow_within: f64,
    all_within: f64,
}

/// Writes `windows.csv` and `windows.md`: per decade of t (and over all points, the last column), the
/// share of points where every nonzero eigenvalue is within 5 %, for each checkpoint, their mean ± std
/// and, when given, their ensemble.
fn write_windows(
    out: &std::path::Path,
    per_checkpoint: &[(String, Vec<crate::eval::metrics::PooledWindow>)],
    ensemble: Option<&[crate::eval::metrics::PooledWindow]>,
) -> Result<()> {
    let first = &per_checkpoint[0].1;
    // Mean and sample std over the checkpoints of one field of window `k`.
    let stat = |k: usize, f: fn(&crate::eval::metrics::PooledWindow) -> f64| {
        crate::stats::mean_std(&per_checkpoint.iter().map(|(_, w)| f(&w[k])).collect::<Vec<_>>())
    };
    let row = |model: &str, w: &crate::eval::metrics::PooledWindow| WindowRow {
        model: model.to_string(),
        t_from: w.t_from,
        t_to: w.t_to,
        points: w.points,
        fast_within: w.fast_within,
        slow_within: w.slow_within,
        all_within: w.all_within,
    };
    let mut rows: Vec<WindowRow> = per_checkpoint.iter().flat_map(|(name, w)| w.iter().map(|x| row(name, x))).collect();
    let (mut means, mut stds) = (Vec::new(), Vec::new());
    for (k, w) in first.iter().enumerate() {
        let (f, s, a) = (stat(k, |w| w.fast_within), stat(k, |w| w.slow_within), stat(k, |w| w.all_within));
        let at = |(fast_within, slow_within, all_within), model: &str| WindowRow {
            fast_within,
            slow_within,
            all_within,
            ..row(model, w)
        };
        means.push(at((f.0, s.0, a.0), "mean"));
        stds.push(at((f.1, s.1, a.1), "std"));
    }
    rows.extend(means);
    rows.extend(stds);
    if let Some(e) = ensemble {
        rows.extend(e.iter().map(|x| row("ensemble", x)));
    }
    write_csv(&out.join("windows.csv"), &rows)?;
    let n = first.len();
    let head: Vec<String> = first[..n - 1]
        .iter()
        .map(|w| format!("t {}…{}", time_label(w.t_from), time_label(w.t_to)))
        .chain(std::iter::once("all points".to_string()))
        .collect();
    let mut md = String::from(
        "Share of evaluation points where every nonzero eigenvalue is within 5 % of the true one, per decade of t \
         (all eps and test trajectories pooled). Written by `stiffx eval`; the same figures, with the fast and \
         slow eigenvalues separately, are in windows.csv.\n\n",
    );
    md += &format!("| model | {} |\n|---|{}\n", head.join(" | "), "---|".repeat(n));
    let pct = |x: f64| format!("{:.0} %", 100.0 * x);
    for (name, w) in per_checkpoint {
        md += &format!("| {name} | {} |\n", w.iter().map(|x| pct(x.all_within)).collect::<Vec<_>>().join(" | "));
    }
    md += &format!(
        "| mean ± std | {} |\n",
        (0..n)
            .map(|k| {
                let (m, s) = stat(k, |w| w.all_within);
                format!("{:.0} ± {:.0} %", 100.0 * m, 100.0 * s)
            })
            .collect::<Vec<_>>()
            .join(" | ")
    );
    if let Some(e) = ensemble {
        md += &format!("| ensemble | {} |\n", e.iter().map(|x| pct(x.all_within)).collect::<Vec<_>>().join(" | "));
    }
    crate::io::write_atomic(&out.join("windows.md"), md.as_bytes())
}

/// One benchmark figure.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// What was measured.
    pub what: String,
    /// Median over the repetitions.
    pub median: f64,
    /// Unit of `median`.
    pub unit: String,
    /// Every repetition.
    pub samples: Vec<f64>,
}

impl BenchRow {
    /// A figure from its repetitions: their median, in `unit`.
    fn new(what: String, unit: &str, samples: Vec<f64>) -> Self {
        Self { what, median: crate::stats::median(&samples), unit: unit.into(), samples }
    }
}

/// Training samples/s of every job (data, validation data, one-epoch config, device), a warm-up each,
/// then `reps` repetitions interleaved across the jobs so that a noisy machine slows all alike.
fn interleaved_train_rates(
    jobs: &[(&Dataset, &Dataset, TrainConfig, &burn::tensor::Device)],
    init: &Weights,
    reps: usize,
    name: &'static str,
) -> Result<Vec<Vec<f64>>> {
    let jobs: Vec<_> = jobs.iter().map(|(ds, val, cfg, device)| (*ds, *val, cfg.clone(), *device, init)).collect();
    interleaved_rates(&jobs, reps, name)
}

/// [`interleaved_train_rates`] with an initial network per job.
fn interleaved_rates(
    jobs: &[(&Dataset, &Dataset, TrainConfig, &burn::tensor::Device, &Weights)],
    reps: usize,
    name: &'static str,
) -> Result<Vec<Vec<f64>>> {
    let bar = crate::engine::pipeline::bar(true, (jobs.len() * (reps + 1)) as u64, name);
    for (ds, val, cfg, device, init) in jobs {
        train(init, ds, val, cfg, 1, device, &mut Silent)?; // warm-up
        bar.inc(1);
    }
    let mut s = vec![Vec::new(); jobs.len()];
    for r in 0..reps {
        for (i, (ds, val, cfg, device, init)) in jobs.iter().enumerate() {
            s[i].push(train(init, ds, val, cfg, r as u64, device, &mut Silent)?.samples_per_sec);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(s)
}

/// What every part of `stiffx bench` measures on: the arguments, the backends and their devices, the
/// initial network and the number of repetitions.
#[derive(Clone, Copy)]
struct Bench<'a> {
    args: &'a BenchArgs,
    backends: &'a [Backend],
    devices: &'a [burn::tensor::Device],
    init: &'a Weights,
    reps: usize,
}

/// The cost of the Jacobian (exact Sobolev) loss, `train.jacobian`: training samples/s at each `--batch`
/// with the backend's default shards, without the term, with Jacobian labels on every 9th row (a
/// K = 8 cloud around each trajectory point, as in `configs/robertson.toml`) and on every row,
/// repetitions interleaved. Data as in the `train` part, with 2 state axes labelled.
fn bench_sobolev(ctx: &Bench) -> Result<Vec<BenchRow>> {
    let Bench { args: a, backends, devices, init, reps } = *ctx;
    let labelled = |n: usize, every: usize| -> (Dataset, Dataset) {
        let (mut ds, mut val) = Dataset::synthetic(n, 3, 2, 7);
        for d in [&mut ds, &mut val] {
            let m = d.len();
            d.jac_axes = 2;
            d.jacobian = (0..m * 4).map(|i| ((i % 13) as f64 - 6.0) * 0.1).collect();
            d.jacobian_weights =
                (0..m * 4).map(|i| if every > 0 && (i / 4) % every == 0 { 1.0 } else { 0.0 }).collect();
        }
        (ds, val)
    };
    let kinds =
        [("no Jacobian term", 0usize), ("Jacobian labels on 1 row in 9", 9), ("Jacobian labels on every row", 1)];
    let variants: Vec<(usize, usize, usize)> = (0..backends.len())
        .flat_map(|b| a.batch.iter().flat_map(move |&n| (0..kinds.len()).map(move |k| (b, n, k))))
        .collect();
    let data: Vec<(Dataset, Dataset)> = variants.iter().map(|&(_, n, k)| labelled(10 * n, kinds[k].1)).collect();
    let cfg = |b: usize, n: usize| TrainConfig {
        epochs: 1,
        batch: n as i64,
        shards: backends[b].default_shards(),
        ..Default::default()
    };
    let jobs: Vec<_> =
        variants.iter().zip(&data).map(|(&(b, n, _), (ds, val))| (ds, val, cfg(b, n), &devices[b])).collect();
    let s = interleaved_train_rates(&jobs, init, reps, "sobolev")?;
    Ok(variants
        .into_iter()
        .zip(s)
        .map(|((b, n, k), s)| {
            BenchRow::new(
                format!(
                    "train 4x128 batch {n}, {} shard(s), {} ({})",
                    backends[b].default_shards(),
                    kinds[k].0,
                    backends[b]
                ),
                "samples/s",
                s,
            )
        })
        .collect())
}

/// The cost of L-BFGS after Adam (`train.lbfgs`) against Adam's: on `10 × max(--batch)` rows of a
/// smooth synthetic field, one Adam epoch (at the largest `--batch`, the backend's default shards)
/// followed by one L-BFGS round of [`LBFGS_ROUND`](crate::train::LBFGS_ROUND) iterations, repetitions
/// interleaved across backends. Reported per backend: Adam's samples/s, the L-BFGS round's seconds,
/// its full-batch evaluations, and their rate in samples/s (an evaluation is a forward and backward
/// pass over every row, the unit of an L-BFGS iteration's cost).
fn bench_lbfgs(ctx: &Bench) -> Result<Vec<BenchRow>> {
    let Bench { args: a, backends, devices, init, reps } = *ctx;
    let batch = *a.batch.iter().max().expect("--batch checked non-empty");
    let (ds, val) = Dataset::synthetic_smooth(10 * batch, 7);
    let round = crate::train::LBFGS_ROUND;
    let cfg = |b: usize| TrainConfig {
        epochs: 1,
        batch: batch as i64,
        shards: backends[b].default_shards(),
        lbfgs: round as i64,
        ..Default::default()
    };
    let bar = crate::engine::pipeline::bar(true, (backends.len() * (reps + 1)) as u64, "lbfgs");
    let mut runs: Vec<Vec<Trained>> = vec![Vec::new(); backends.len()];
    for r in 0..=reps {
        for (b, device) in devices.iter().enumerate() {
            let t = train(init, &ds, &val, &cfg(b), r as u64, device, &mut Silent)?;
            if r > 0 {
                runs[b].push(t); // rep 0 is the warm-up
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut rows = Vec::new();
    for (b, runs) in runs.iter().enumerate() {
        let n = ds.len();
        rows.push(BenchRow::new(
            format!("lbfgs: Adam epoch, 4x128 batch {batch}, {n} rows ({})", backends[b]),
            "samples/s",
            runs.iter().map(|t| t.samples_per_sec).collect(),
        ));
        rows.push(BenchRow::new(
            format!("lbfgs: one L-BFGS round ({round} iterations, validation included), {n} rows ({})", backends[b]),
            "s",
            runs.iter().map(|t| t.lbfgs_seconds).collect(),
        ));
        rows.push(BenchRow::new(
            format!("lbfgs: full-batch evaluations in that round ({})", backends[b]),
            "evaluations",
            runs.iter().map(|t| t.lbfgs_evaluations as f64).collect(),
        ));
        rows.push(BenchRow::new(
            format!("lbfgs: full-batch evaluation rate ({})", backends[b]),
            "samples/s",
            runs.iter().map(|t| (t.lbfgs_evaluations * n) as f64 / t.lbfgs_seconds.max(1e-9)).collect(),
        ));
    }
    Ok(rows)
}

/// Per `(backend, batch)` variant, one list of training samples/s repetitions per model.
type VariantRates = Vec<((usize, usize), Vec<Vec<f64>>)>;

/// Training samples/s of `models` (initial network, precision, `order_l1`) side by side, one Adam epoch
/// on the `train` part's data, at each `--batch` with the backend's default shards, on every backend
/// with f64, repetitions interleaved so that the models share the machine's noise. Returns the
/// `(backend, batch)` variants and, per variant, one repetition list per model.
fn model_rates(
    ctx: &Bench,
    name: &'static str,
    models: &[(&Weights, Precision, f64)],
) -> Result<VariantRates> {
    let Bench { args: a, backends, devices, reps, .. } = *ctx;
    let data: std::collections::BTreeMap<usize, (Dataset, Dataset)> =
        a.batch.iter().map(|&b| (b, Dataset::synthetic(10 * b, 3, 2, 7))).collect();
    let variants: Vec<(usize, usize)> = (0..backends.len())
        .filter(|&b| backends[b].supports_f64())
        .flat_map(|b| a.batch.iter().map(move |&n| (b, n)))
        .collect();
    let data = &data;
    let jobs: Vec<_> = variants
        .iter()
        .flat_map(|&(b, batch)| {
            models.iter().map(move |&(w, precision, order_l1)| {
                let cfg = TrainConfig {
                    epochs: 1,
                    batch: batch as i64,
                    shards: backends[b].default_shards(),
                    precision,
                    order_l1,
                    ..Default::default()
                };
                (&data[&batch].0, &data[&batch].1, cfg, &devices[b], w)
            })
        })
        .collect();
    let s = interleaved_rates(&jobs, reps, name)?;
    Ok(variants.into_iter().zip(s.chunks(models.len()).map(<[_]>::to_vec)).collect())
}

/// The cost of f64 training (`train.precision`): Adam's training samples/s of the default network in
/// f32 and in f64 ([`model_rates`]), and the median ratio f64/f32 per backend and batch, from
/// repetitions taken side by side.
fn bench_precision(ctx: &Bench) -> Result<Vec<BenchRow>> {
    let models = [(ctx.init, Precision::F32, 0.0), (ctx.init, Precision::F64, 0.0)];
    let mut rows = Vec::new();
    for ((b, batch), rates) in model_rates(ctx, "precision", &models)? {
        let name = |p: &str| format!("precision: train 4x128 batch {batch}, {p} ({})", ctx.backends[b]);
        rows.push(BenchRow::new(name("f32"), "samples/s", rates[0].clone()));
        rows.push(BenchRow::new(name("f64"), "samples/s", rates[1].clone()));
        let ratio = rates[1].iter().zip(&rates[0]).map(|(d, f)| d / f).collect();
        rows.push(BenchRow::new(name("f64 / f32 throughput"), "ratio", ratio));
    }
    Ok(rows)
}

/// The `crnn` part: training samples/s of a mass-action reaction network (1 × 3 `exp` units, f64,
/// orders projected with `order_l1`, as `configs/robertson_crnn.toml`) beside the 4 × 128 SiLU MLP in
/// f32 and f64 ([`model_rates`]).
fn bench_crnn(ctx: &Bench) -> Result<Vec<BenchRow>> {
    let crnn = Weights::init(3, 1, 3, 2, 1).with_activation(crate::model::Activation::Exp).with_mass_action();
    let models = [(ctx.init, Precision::F32, 0.0), (ctx.init, Precision::F64, 0.0), (&crnn, Precision::F64, 1e-4)];
    let mut rows = Vec::new();
    for ((b, batch), rates) in model_rates(ctx, "crnn", &models)? {
        let name = |p: &str| format!("crnn: train batch {batch}, {p} ({})", ctx.backends[b]);
        rows.push(BenchRow::new(name("MLP 4x128 f32"), "samples/s", rates[0].clone()));
        rows.push(BenchRow::new(name("MLP 4x128 f64"), "samples/s", rates[1].clone()));
        rows.push(BenchRow::new(name("CRNN 1x3 f64"), "samples/s", rates[2].clone()));
        let ratio = rates[2].iter().zip(&rates[0]).map(|(c, m)| c / m).collect();
        rows.push(BenchRow::new(name("CRNN f64 / MLP f32 throughput"), "ratio", ratio));
    }
    Ok(rows)
}

/// `stiffx bench`: medians of training samples/s (default 4×128 model; batches 8192 and 1024 unless
/// `--batch` says otherwise), the same with the Jacobian loss (`sobolev`), L-BFGS rounds against Adam
/// epochs (`lbfgs`), f64 training against f32 (`precision`), a reaction network against the MLP
/// (`crnn`), Jacobian + eigenvalues for `--points`
/// points (forward and reverse mode, f32 and f64) and burst labels/s.
pub fn bench(a: &BenchArgs) -> Result<()> {
    let backends: Vec<Backend> = a.backend.clone();
    // `device()` is also the "not compiled in" check, naming the feature to enable.
    let devices = backends.iter().map(|b| b.device()).collect::<Result<Vec<_>>>()?;
    let reps = a.reps.max(1);
    if a.batch.is_empty() || a.batch.contains(&0) {
        return Err(crate::Error::invalid("--batch", format!("{:?}", a.batch), "positive integers, e.g. 8192,1024"));
    }
    if a.shards.is_empty() || a.shards.iter().any(|&s| s < 1) {
        return Err(crate::Error::invalid("--shards", format!("{:?}", a.shards), "positive integers, e.g. 1,2,4"));
    }
    if a.points == 0 {
        return Err(crate::Error::invalid("--points", "0", "a positive integer"));
    }
    let want = |p: &str| {
        a.only.is_empty() || a.only.iter().any(|o| o.to_possible_value().is_some_and(|v| v.get_name() == p))
    };
    let mut rows = Vec::new();
    let sys = crate::plugins::registry::system("davis-skodje")?;
    let init = Weights::init(3, 4, 128, 2, 1);
    if want("train") {
        // An epoch is 10 batches of each variant's own size, so that a large batch in the list does
        // not make the small ones slow to measure.
        let data: std::collections::BTreeMap<i64, (Dataset, Dataset)> =
            a.batch.iter().map(|&b| (b as i64, Dataset::synthetic(10 * b, 3, 2, 7))).collect();
        // Serial and data-parallel (2 shards: the default on flex and ndarray) batches on every backend,
        // interleaved rep by rep so that a noisy machine slows all alike; by default batch 8192 (the
        // paper's) and 1024 (the configs').
        let variants: Vec<(usize, i64, i64)> = (0..backends.len())
            .flat_map(|b| a.batch.iter().flat_map(move |&n| a.shards.iter().map(move |&s| (b, n as i64, s))))
            .collect();
        let cfgs: Vec<TrainConfig> = variants
            .iter()
            .map(|&(_, batch, shards)| TrainConfig { epochs: 1, batch, shards, ..Default::default() })
            .collect();
        let jobs: Vec<_> = cfgs
            .into_iter()
            .zip(&variants)
            .map(|(cfg, &(b, batch, _))| (&data[&batch].0, &data[&batch].1, cfg, &devices[b]))
            .collect();
        let s = interleaved_train_rates(&jobs, &init, reps, "train")?;
        for ((b, batch, shards), s) in variants.into_iter().zip(s) {
            rows.push(BenchRow::new(
                format!("train 4x128 batch {batch}, {shards} shard(s) ({})", backends[b]),
                "samples/s",
                s,
            ));
        }
    }

    let ctx = Bench { args: a, backends: &backends, devices: &devices, init: &init, reps };
    if want("sobolev") {
        rows.extend(bench_sobolev(&ctx)?);
    }
    if want("lbfgs") {
        rows.extend(bench_lbfgs(&ctx)?);
    }
    if want("precision") {
        rows.extend(bench_precision(&ctx)?);
    }
    if want("crnn") {
        rows.extend(bench_crnn(&ctx)?);
    }

    // Jacobian + eigenvalues at `--points` points, every backend × precision × mode, reps interleaved.
    let npts = a.points;
    let x: Vec<f64> =
        (0..npts).flat_map(|i| [0.5 + 2.0 * (i as f64 / npts as f64), 0.3 + (i % 7) as f64 * 0.1]).collect();
    let eps: Vec<f64> = (0..npts).map(|i| [0.01, 0.05, 0.1][i % 3]).collect();
    let norm = Normalizer {
        mean: vec![1.5, 0.6, 0.1],
        std: vec![0.6, 0.4, 0.09],
        state_scale: Vec::new(),
        state_map: Default::default(),
    };
    let (mut combos, mut rhss) = (Vec::new(), Vec::new());
    for (b, backend) in backends.iter().enumerate().filter(|_| want("jacobian")) {
        for precision in [Precision::F32, Precision::F64] {
            if precision == Precision::F64 && !backend.supports_f64() {
                continue;
            }
            let rhs =
                LearnedRhs::new(&init, norm.clone(), Box::new(Identity {}), 2, devices[b].clone(), precision.dtype())?;
            for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
                let _ = eigenvalues(&rhs.jacobian(&x, &eps, mode), 2); // warm-up
                combos.push((b, precision, mode, rhss.len()));
            }
            rhss.push(rhs);
        }
    }
    let mut s = vec![Vec::new(); combos.len()];
    for _ in 0..reps {
        for (i, &(_, _, mode, r)) in combos.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(eigenvalues(&rhss[r].jacobian(&x, &eps, mode), 2));
            s[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    for ((b, precision, mode, _), s) in combos.into_iter().zip(s) {
        rows.push(BenchRow::new(
            format!("jacobian+eig {npts} points {mode:?} {precision:?} ({})", backends[b]),
            "ms",
            s,
        ));
    }

    // Burst labels: the cloud around 9 × 16 trajectories, K = 8 (≈ 780k states) is too slow for a
    // quick bench; use 2 trajectories per eps and K = 8 (≈ 97k states).
    let cloud = CloudSampler {
        base: Box::new(crate::plugins::sampler::TrajectorySampler { per_eps: 2, ..Default::default() }),
        ..CloudSampler::default()
    };
    let set = cloud.sample(sys.as_ref(), &sys.train_grid(), &mut StdRng::seed_from_u64(1))?;
    let variants = [
        (TauMode::Fixed, 16),
        (TauMode::Fixed, 64),
        (TauMode::Fixed, 128),
        (TauMode::Fixed, 512),
        (TauMode::Scaled, 64),
        (TauMode::Richardson, 64),
    ];
    for (mode, batch) in variants.into_iter().filter(|_| want("burst")) {
        let b = Burst { mode, batch, ..Burst::default() };
        let mut s = Vec::new();
        for _ in 0..reps.min(3) {
            let t = Instant::now();
            std::hint::black_box(b.label(sys.as_ref(), &set)?);
            s.push(set.len() as f64 / t.elapsed().as_secs_f64());
        }
        rows.push(BenchRow::new(
            format!("burst labels {mode:?} batch {batch} rtol 1e-9 ({} states)", set.len()),
            "labels/s",
            s,
        ));
    }
    for r in &rows {
        println!("{:<60} {:>14.4e} {}", r.what, r.median, r.unit);
    }
    if let Some(o) = &a.out {
        write_json(o, &rows)?;
    }
    Ok(())
}

/// `stiffx sweep`: expands a spec, runs every job here and collects (a compare spec prints its table).
pub fn sweep(a: &SweepArgs) -> Result<()> {
    let opts = crate::cli::run_options(&a.device, a.quiet, a.no_figures)?;
    let spec = crate::engine::Spec::load(&a.file, a.out.as_deref())?;
    if let crate::engine::spec::Kind::Compare { .. } = spec.kind {
        spec.run_all(&opts)?;
        print!("{}", spec.collect(&spec.results()?, &opts)?);
        return Ok(());
    }
    let rows = crate::engine::local::sweep(&a.file, &opts, a.out.as_deref())?;
    println!(
        "{:<14} {:>4} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "config", "seed", "rollout L2", "|dl_fast|", "|dl_slow|", "S_comb", "fast rel"
    );
    for r in &rows {
        println!(
            "{:<14} {:>4} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>9.2e}",
            r.config, r.seed, r.rollout_l2, r.fast_abs, r.slow_abs, r.s_comb, r.fast_rel
        );
    }
    Ok(())
}

/// `stiffx diagnose`: skewness and Q-Q correlation of each target component, raw and transformed, for
/// the trajectory points alone (`base`) and for the whole dataset (`all`, with the cloud), histograms
/// of log10 |value| and Q-Q plots — the paper's sections 5.2–5.3 and Figs. 2–5. The transform is
/// fitted on all samples.
pub fn diagnose(a: &DiagnoseArgs) -> Result<()> {
    let cfg = crate::config::Config::from_file(&a.config)?;
    cfg.validate()?;
    let data = crate::engine::data::generate(&cfg)?;
    let diag = crate::eval::diagnostics::Diagnostics::of(&cfg, &data)?;
    let source = format!("config `{}`", a.config.display());
    diag.write(&a.out, &source)?;
    crate::figures::paper::diagnostics(&a.out, &diag, &source)?;
    print!("{}", diag.markdown(&source));
    println!("results in {} (diagnostics.md/.csv, histograms.png, qq.png)", a.out.display());
    Ok(())
}

/// `stiffx compare`: writes the comparison as a spec (`<out>/compare_spec.toml`, config paths made
/// absolute, so that `stiffx jobs`/`run-job`/`collect` work on it later), runs it and prints its table.
pub fn compare(a: &crate::cli::CompareArgs) -> Result<()> {
    if let Some(e) = a.epochs {
        crate::Error::at_least_one("--epochs", e)?;
    }
    let bases = a.config.iter().map(|p| crate::config::Config::from_file(p)).collect::<Result<Vec<_>>>()?;
    let opts = crate::cli::run_options(&a.device, a.quiet, a.no_figures)?;
    let file = crate::engine::spec::CompareFile {
        kind: "compare".into(),
        out: a.out.clone(),
        systems: a.systems.clone(),
        transforms: a.transforms.clone(),
        samplers: a.samplers.clone(),
        seeds: a.seeds.clone(),
        configs: a.config.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect(),
        epochs: a.epochs,
    };
    let spec = crate::engine::compare::CompareSpec {
        systems: file.systems.clone(),
        transforms: file.transforms.clone(),
        samplers: file.samplers.clone(),
        seeds: file.seeds.clone(),
        epochs: a.epochs,
    };
    // Checks every name before anything is written.
    crate::engine::compare::jobs(&bases, &spec)?;
    let text = toml::to_string_pretty(&file)
        .map_err(|e| crate::Error::Unsupported(format!("the compare spec does not serialise: {e}")))?;
    crate::io::write_atomic(&a.out.join("compare_spec.toml"), text.as_bytes())?;
    let (_, md) = crate::engine::local::compare(&bases, &spec, &a.out, &opts)?;
    print!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::PooledWindow;

    #[test]
    fn windows_table_has_a_row_per_checkpoint_mean_std_and_ensemble() {
        let w = |t_from: f64, t_to: f64, all: f64| PooledWindow {
            t_from,
            t_to,
            points: 10,
            fast_within: 1.0,
            slow_within: all,
            all_within: all,
        };
        let runs = vec![
            ("checkpoint1".to_string(), vec![w(0.0, 1e-4, 0.2), w(1e-4, 1.0, 0.6), w(0.0, 1.0, 0.4)]),
            ("checkpoint2".to_string(), vec![w(0.0, 1e-4, 0.4), w(1e-4, 1.0, 0.8), w(0.0, 1.0, 0.6)]),
        ];
        let ens = [w(0.0, 1e-4, 0.5), w(1e-4, 1.0, 0.9), w(0.0, 1.0, 0.7)];
        let d = tempfile::tempdir().unwrap();
        write_windows(d.path(), &runs, Some(&ens)).unwrap();
        let md = std::fs::read_to_string(d.path().join("windows.md")).unwrap();
        assert!(md.contains("| model | t 0…1e-4 | t 1e-4…1 | all points |"), "{md}");
        assert!(md.contains("| checkpoint2 | 40 % | 80 % | 60 % |"), "{md}");
        // Sample std over the two checkpoints: 0.1·√2 ≈ 14 %.
        assert!(md.contains("| mean ± std | 30 ± 14 % | 70 ± 14 % | 50 ± 14 % |"), "{md}");
        assert!(md.contains("| ensemble | 50 % | 90 % | 70 % |"), "{md}");
        let csv = std::fs::read_to_string(d.path().join("windows.csv")).unwrap();
        // 2 checkpoints + mean + std + ensemble, 3 rows each.
        assert_eq!(csv.lines().count(), 1 + 5 * 3, "{csv}");
        assert!(csv.lines().any(|l| l.starts_with("mean,0.0001,1.0,10,1.0,")), "{csv}");
    }
}

/// The learned operator against the exact one at one state ([`inspect`]).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Stiffness value.
    pub eps: f64,
    /// The state.
    pub state: Vec<f64>,
    /// Learned RHS `F_θ(x, eps)` (projected onto the invariants as in the evaluation).
    pub rhs_learned: Vec<f64>,
    /// Exact RHS.
    pub rhs_exact: Vec<f64>,
    /// Learned Jacobian, row-major `d × d`.
    pub jacobian_learned: Vec<f64>,
    /// Exact Jacobian, row-major.
    pub jacobian_exact: Vec<f64>,
    /// Learned eigenvalues sorted by decreasing modulus, `[re, im]`.
    pub eigenvalues_learned: Vec<[f64; 2]>,
    /// Exact eigenvalues sorted by decreasing modulus, `[re, im]`.
    pub eigenvalues_exact: Vec<[f64; 2]>,
}

/// Parses `--state` values: `dim` comma-separated finite numbers each.
pub fn parse_states(states: &[String], dim: usize) -> Result<Vec<Vec<f64>>> {
    states
        .iter()
        .map(|s| {
            let bad = || {
                crate::Error::invalid(
                    "--state",
                    s,
                    format!("{dim} comma-separated finite numbers (the system's dimension)"),
                )
            };
            let v: Vec<f64> =
                s.split(',').map(|t| t.trim().parse::<f64>().map_err(|_| bad())).collect::<Result<_>>()?;
            if v.len() != dim || v.iter().any(|x| !x.is_finite()) {
                return Err(bad());
            }
            Ok(v)
        })
        .collect()
}

/// `stiffx inspect`: the learned RHS, Jacobian (the evaluation's: autodiff, transform chain rule, input
/// slopes, invariant projection) and eigenvalues at each `--state`, printed entry by entry next to the
/// exact ones — the tool for finding *which* Jacobian entry puts an eigenvalue off.
pub fn inspect(a: &crate::cli::InspectArgs) -> Result<()> {
    let (backend, jacobian, precision) = device_options(&a.device)?;
    let ck = Checkpoint::load(&a.checkpoint)?;
    let sys = ck.config.system.as_ref();
    sys.check_param(a.eps).map_err(|_| crate::Error::invalid("--eps", a.eps, "an admissible stiffness value (> 0)"))?;
    let d = sys.dim();
    let states = parse_states(&a.state, d)?;
    // All states in one batch through the network, as the evaluation does.
    let rhs = crate::eval::evaluate::learned_rhs(&ck, &backend.device()?, precision)?;
    let (x, eps): (Vec<f64>, Vec<f64>) = (states.concat(), vec![a.eps; states.len()]);
    let (f, j) = (rhs.rhs(&x, &eps), rhs.jacobian(&x, &eps, jacobian));
    // nalgebra stores column-major: the transpose's storage is the row-major matrix.
    let je: Vec<f64> = states.iter().flat_map(|s| sys.jacobian(s, a.eps).transpose().as_slice().to_vec()).collect();
    let pairs = |ev: Vec<Vec<nalgebra::Complex<f64>>>| -> Vec<Vec<[f64; 2]>> {
        ev.into_iter().map(|e| e.iter().map(|l| [l.re, l.im]).collect()).collect()
    };
    let (ev, eve) = (pairs(eigenvalues(&j, d)), pairs(eigenvalues(&je, d)));
    let names = sys.state_names();
    let mut out = Vec::new();
    for (p, (state, (eigenvalues_learned, eigenvalues_exact))) in
        states.into_iter().zip(ev.into_iter().zip(eve)).enumerate()
    {
        let mut rhs_exact = vec![0.0; d];
        sys.rhs(&state, a.eps, &mut rhs_exact);
        let ins = Inspection {
            eps: a.eps,
            state,
            rhs_learned: f[p * d..(p + 1) * d].to_vec(),
            rhs_exact,
            jacobian_learned: j[p * d * d..(p + 1) * d * d].to_vec(),
            jacobian_exact: je[p * d * d..(p + 1) * d * d].to_vec(),
            eigenvalues_learned,
            eigenvalues_exact,
        };
        println!("eps = {}, x = {:?}", ins.eps, ins.state);
        println!("  {:>10} {:>13} {:>13}", "", "learned", "exact");
        for (i, name) in names.iter().enumerate().take(d) {
            println!("  {:>10} {:>13.5e} {:>13.5e}", format!("d{name}/dt"), ins.rhs_learned[i], ins.rhs_exact[i]);
        }
        println!("  Jacobian, learned | exact (row i: ∂F_i/∂x_j):");
        for i in 0..d {
            let row = |m: &[f64]| (0..d).map(|c| format!("{:>12.4e}", m[i * d + c])).collect::<Vec<_>>().join(" ");
            println!("  {} | {}", row(&ins.jacobian_learned), row(&ins.jacobian_exact));
        }
        println!("  eigenvalues (by modulus), learned | exact:");
        for (l, e) in ins.eigenvalues_learned.iter().zip(&ins.eigenvalues_exact) {
            println!("  {:>12.5e} {:+.3e}i | {:>12.5e} {:+.3e}i", l[0], l[1], e[0], e[1]);
        }
        out.push(ins);
    }
    if let Some(reactions) = ck.weights.reactions(&ck.normalizer) {
        println!("learned reactions (mass-action network; r = k · eps^β · Π (x_i + c_i)^ν_i, dx/dt += s · r):");
        for (j, r) in reactions.iter().enumerate() {
            let orders = names
                .iter()
                .zip(&r.orders)
                .filter(|(_, v)| **v != 0.0)
                .map(|(n, v)| format!("{n}^{v:.4}"))
                .collect::<Vec<_>>()
                .join(" ");
            let s = r.stoichiometry.iter().map(|v| format!("{v:+.4}")).collect::<Vec<_>>().join(", ");
            println!("  r{}: k = {:.5e}, eps^{:.4}, {orders}; s = ({s})", j + 1, r.rate_constant, r.eps_exponent);
        }
    }
    if let Some(p) = &a.out {
        write_json(p, &out)?;
        println!("written to {}", p.display());
    }
    Ok(())
}
