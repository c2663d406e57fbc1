//! `stiffx eval`: evaluates checkpoints (one, several seeds averaged, or their ensemble) and writes the
//! per-eps tables, the error-vs-eps curve and the per-decade-of-t windows (`windows.csv`, `windows.md`).

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::{EvalArgs, device_options};
use crate::engine::checkpoint::Checkpoint;
use crate::error::Result;
use crate::eval::evaluate::{evaluate_prepared, prepare_together};
use crate::io::{write_csv, write_json};

use super::{print_eval_table, time_label};

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
    for ck in &mut cks {
        crate::engine::evalspec::override_eval(&mut ck.config, a.horizon, a.integrator, "--horizon")?;
        if let Some(p) = &a.initial_states {
            ck.config.eval.initial_states = Some(p.display().to_string());
            ck.config.test_states()?;
        }
    }
    if let Some(s) = &a.system {
        let truth = crate::cli::system_flag("--system", s)?;
        for ck in &mut cks {
            replace_system(&mut ck.config, truth.clone(), "--system", s)?;
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
    if let Some(path) = &a.data {
        return super::eval_data::eval_data(path, &a.checkpoint, &cks, &out, &backend.device()?, precision, jacobian);
    }
    for &e in &a.eps {
        sys.check_param(e).map_err(|_| crate::Error::invalid("--eps", e, "stiffness values > 0"))?;
    }
    let eps_of = |ck: &Checkpoint| crate::engine::evalspec::eval_grid(&ck.config, &a.eps, a.unseen);
    let device = backend.device()?;
    let mut all = Vec::new();
    // Decade windows pooled over eps, one list per checkpoint (log-spaced evaluations only).
    let mut windows: Vec<(String, Vec<crate::eval::metrics::PooledWindow>)> = Vec::new();
    // Checkpoints of one system and evaluation share the reference trajectories, and their
    // Jacobians along them come from one stacked pass (the same results as one by one). A failure
    // there is each checkpoint's own again when it is evaluated alone; a stop signal stops here.
    let prepared = match prepare_together(
        &cks.iter().map(Some).collect::<Vec<_>>(),
        &cks.iter().map(eps_of).collect::<Vec<_>>(),
        &device,
        precision,
        jacobian,
    ) {
        Ok(p) => p,
        Err(e @ crate::Error::Interrupted { .. }) => return Err(e),
        Err(_) => vec![None; cks.len()],
    };
    let mut prepared = prepared.into_iter();
    for (i, ck) in cks.iter().enumerate() {
        let (ev, traces) = evaluate_prepared(ck, &eps_of(ck), &device, precision, jacobian, prepared.next().flatten())?;
        // A learned rollout that a stop signal ended is a NaN row: write nothing of it.
        crate::interrupt::check(|| format!("evaluating {}; nothing of it is written", a.checkpoint[i].display()))?;
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
        crate::interrupt::check(|| "evaluating the ensemble; nothing of it is written".into())?;
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
    let mut t = crate::table::Table::new(std::iter::once("model".to_string()).chain(head));
    let pct = |x: f64| format!("{:.0} %", 100.0 * x);
    for (name, w) in per_checkpoint {
        t.row(std::iter::once(name.clone()).chain(w.iter().map(|x| pct(x.all_within))));
    }
    t.row(std::iter::once("mean ± std".to_string()).chain((0..n).map(|k| {
        let (m, s) = stat(k, |w| w.all_within);
        format!("{:.0} ± {:.0} %", 100.0 * m, 100.0 * s)
    })));
    if let Some(e) = ensemble {
        t.row(std::iter::once("ensemble".to_string()).chain(e.iter().map(|x| pct(x.all_within))));
    }
    md += &t.markdown();
    crate::io::write_atomic(&out.join("windows.md"), md.as_bytes())
}
/// Puts `truth` (`flag flag_value` on the command line) in place of a checkpoint config's system:
/// the network's outputs are the old system's state names in order, so the new one must have the
/// same; a network trained with invariants projected out keeps that projection only if the new
/// system declares the same invariants (one trained with none keeps none).
pub(super) fn replace_system(
    cfg: &mut crate::config::Config,
    truth: Box<dyn crate::plugins::system::StiffSystem>,
    flag: &str,
    flag_value: &str,
) -> Result<()> {
    let (old, new) = (cfg.system.state_names(), truth.state_names());
    if old != new {
        return Err(crate::Error::invalid(
            flag,
            format!("{flag_value} (states {})", new.join(", ")),
            format!("a system whose states are the checkpoint's, in its order: {}", old.join(", ")),
        ));
    }
    if cfg.model.project_invariants && cfg.system.invariants().is_empty() {
        // Trained with nothing to project: the network's field stays as it was trained.
        cfg.model.project_invariants = false;
    } else if cfg.model.project_invariants && !same_span(&cfg.system.invariants(), &truth.invariants(), old.len()) {
        return Err(crate::Error::invalid(
            flag,
            flag_value,
            format!(
                "a system with the invariants the network was trained to conserve ({:?}; model.project_invariants), not {:?}",
                cfg.system.invariants(),
                truth.invariants()
            ),
        ));
    }
    cfg.system = truth;
    // The held-out file of the run (`eval.data`) is not needed to evaluate, and may have moved.
    cfg.eval.data = None;
    cfg.validate()
}

/// Whether two lists of invariants `w` (`d` weights each) span the same space: their orthogonal
/// projectors `Wᵀ(WWᵀ)⁻¹W` agree to 1e-6 (the data system's are found to ~1e-8, a mechanism's exact).
fn same_span(a: &[Vec<f64>], b: &[Vec<f64>], d: usize) -> bool {
    use nalgebra::DMatrix;
    let projector = |w: &[Vec<f64>]| -> Option<DMatrix<f64>> {
        if w.is_empty() {
            return Some(DMatrix::zeros(d, d));
        }
        let m = DMatrix::from_fn(w.len(), d, |i, k| w[i].get(k).copied().unwrap_or(f64::NAN));
        let gram = (&m * m.transpose()).try_inverse()?;
        Some(m.transpose() * gram * m)
    };
    match (projector(a), projector(b)) {
        (Some(p), Some(q)) => a.len() == b.len() && (p - q).abs().max() <= 1e-6,
        _ => false,
    }
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
