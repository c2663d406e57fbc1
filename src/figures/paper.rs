//! Builders of the paper's figures from stiffx's outputs: loss curves (Fig. 6), learned vs exact
//! trajectories with the slow manifold (Fig. 7), learned vs exact eigenvalues along trajectories
//! (Fig. 8), seed averages with error bars (Fig. 9), errors across the stiffness parameter with
//! training and unseen values marked (Fig. 10), and the target diagnostics — histograms of
//! `log10 |value|` (Figs. 2, 4) and normal Q-Q plots (Figs. 3, 5).

use std::path::Path;

use super::{Axis, Mark, Panel, Series, render};
use crate::error::Result;
use crate::eval::diagnostics::{ComponentStats, HistBin, QqPoint};
use crate::eval::evaluate::Traces;
use crate::eval::metrics::CurvePoint;
use crate::plugins::system::StiffSystem;
use crate::train::EpochRecord;

/// Fig. 6: one panel per configuration; training (solid) and validation (dashed) loss per seed.
pub fn loss_curves(path: &Path, runs: &[(String, u64, Vec<EpochRecord>)]) -> Result<()> {
    let mut names: Vec<&String> = runs.iter().map(|r| &r.0).collect();
    names.dedup();
    let panels: Vec<Panel> = names
        .iter()
        .map(|n| {
            let mut series = Vec::new();
            for (i, (_, seed, curve)) in runs.iter().filter(|r| &r.0 == *n).enumerate() {
                let tr = curve.iter().filter(|r| r.epoch > 0).map(|r| (r.epoch as f64, r.train_loss)).collect();
                let va = curve.iter().map(|r| (r.epoch as f64, r.val_loss)).collect();
                series.push(Series::new(format!("train s{seed}"), tr, i, Mark::Line));
                series.push(Series::new(format!("val s{seed}"), va, i, Mark::Dashed));
            }
            Panel { title: n.to_string(), x: Axis::linear("epoch"), y: Axis::log("loss (transformed space)"), series }
        })
        .collect();
    render(path, "Loss vs epochs (Fig. 6)", &panels, panels.len().min(4), (420, 330))
}

/// Indices of the trajectories of `tr` evaluated at stiffness `eps`.
fn trajectories_at(tr: &Traces, eps: f64) -> Vec<usize> {
    (0..tr.eps.len()).filter(|&j| tr.eps[j] == eps).collect()
}

/// Fig. 7: learned rollouts (dashed; RK4 or BDF, as `eval.integrator` says) vs exact (solid) trajectories in the plane of the first two state
/// components at stiffness `eps`, one panel per labelled run, with the system's slow manifold.
pub fn trajectories(path: &Path, sys: &dyn StiffSystem, runs: &[(String, &Traces)], eps: f64) -> Result<()> {
    let d = sys.dim();
    let names = sys.state_names();
    let panels: Vec<Panel> = runs
        .iter()
        .map(|(label, tr)| {
            let np = tr.times.len();
            let mut series = Vec::new();
            let mut xs = (f64::INFINITY, f64::NEG_INFINITY);
            for (n, j) in trajectories_at(tr, eps).into_iter().enumerate() {
                let pick = |v: &[f64]| -> Vec<(f64, f64)> {
                    (0..np).map(|i| (v[(j * np + i) * d], v[(j * np + i) * d + 1])).collect()
                };
                let r = pick(&tr.reference);
                for p in &r {
                    xs = (xs.0.min(p.0), xs.1.max(p.0));
                }
                series.push(Series::new(if n == 0 { "exact" } else { "" }, r, 0, Mark::Line));
                series.push(Series::new(
                    if n == 0 { "learned (rollout)" } else { "" },
                    pick(&tr.learned),
                    3,
                    Mark::Dashed,
                ));
            }
            if xs.0.is_finite() && sys.slow_manifold(xs.0, eps).is_some() {
                let m: Vec<(f64, f64)> = (0..=100)
                    .filter_map(|i| {
                        let y = xs.0 + (xs.1 - xs.0) * i as f64 / 100.0;
                        sys.slow_manifold(y, eps).map(|p| (p[0], p[1]))
                    })
                    .collect();
                series.push(Series::new("slow manifold", m, 7, Mark::Dashed));
            }
            Panel {
                title: format!("{label}, {} = {eps}", sys.param_name()),
                x: Axis::linear(names[0].clone()),
                y: Axis::linear(names.get(1).cloned().unwrap_or_default()),
                series,
            }
        })
        .collect();
    render(path, "Trajectories: learned vs exact (Fig. 7)", &panels, panels.len().min(4), (420, 360))
}

/// Fig. 8: `-Re λ_k` (log axis) of the learned Jacobian (dashed) and of the exact one (solid) along the
/// first test trajectory, one row per stiffness value in `eps_list` and one column per run. A gap in a
/// dashed line is a learned eigenvalue with `Re λ ≥ 0` (an unstable or wrong-signed mode). The exact
/// zeros of a system's invariants are not drawn; log-spaced times get a log time axis.
pub fn eigenvalues(path: &Path, sys: &dyn StiffSystem, runs: &[(String, &Traces)], eps_list: &[f64]) -> Result<()> {
    let d = sys.dim();
    let shown = d.saturating_sub(sys.invariants().len()).max(1);
    let mut panels = Vec::new();
    for &eps in eps_list {
        for (label, tr) in runs {
            let np = tr.times.len();
            let t = &tr.times;
            let log_time =
                np > 2 && t[1] > 0.0 && t[np - 1] / t[1] > 1e3 && (t[2] - t[1]) < 0.5 * (t[np - 1] - t[np - 2]);
            let mut series = Vec::new();
            if let Some(&j) = trajectories_at(tr, eps).first() {
                for k in 0..shown {
                    let name = match (k, shown) {
                        (0, _) => "fast".to_string(),
                        (k, d) if k + 1 == d => "slow".to_string(),
                        (k, _) => format!("λ{k}"),
                    };
                    let line = |v: &Vec<Vec<nalgebra::Complex<f64>>>| -> Vec<(f64, f64)> {
                        (0..np).filter(|&i| !log_time || t[i] > 0.0).map(|i| (t[i], -v[j * np + i][k].re)).collect()
                    };
                    series.push(Series::new(format!("{name} exact"), line(&tr.reference_eigs), k, Mark::Line));
                    series.push(Series::new(format!("{name} learned"), line(&tr.learned_eigs), k, Mark::Dashed));
                }
            }
            panels.push(Panel {
                title: format!("{label}, {} = {eps}", sys.param_name()),
                x: if log_time { Axis::log("t") } else { Axis::linear("t") },
                y: Axis::log("-Re λ"),
                series,
            });
        }
    }
    render(path, "Jacobian eigenvalues along a test trajectory (Fig. 8)", &panels, runs.len().clamp(1, 4), (420, 330))
}

/// Mean and sample standard deviation of one metric for one configuration.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Configuration name.
    pub config: String,
    /// Mean over seeds.
    pub mean: f64,
    /// Standard deviation over seeds.
    pub std: f64,
    /// Seeds whose value is not finite (a diverged rollout), left out of `mean` and `std` and written
    /// under the bar's label.
    pub diverged: usize,
    /// Seeds in all.
    pub seeds: usize,
}

impl Bar {
    /// The bar of `values` (one per seed): mean ± std over the finite ones, the others counted.
    pub fn of(config: impl Into<String>, values: &[f64]) -> Self {
        let (mean, std, diverged) = crate::stats::finite_mean_std(values);
        Bar { config: config.into(), mean, std, diverged, seeds: values.len() }
    }

    /// The bar's label: its configuration, and `(n/m diverged)` when some seeds diverged.
    pub fn label(&self) -> String {
        diverged_label(&self.config, self.diverged, self.seeds)
    }
}

/// `name`, followed by `(n/m diverged)` when `diverged` of `seeds` runs diverged.
fn diverged_label(name: &str, diverged: usize, seeds: usize) -> String {
    if diverged > 0 { format!("{name} ({diverged}/{seeds} diverged)") } else { name.to_string() }
}

/// Fig. 9: one panel per metric, configurations on the horizontal axis, mean ± std over seeds (over
/// the finite values: diverged seeds are named under their bar, never set an axis).
pub fn seed_averages(path: &Path, metrics: &[(String, Vec<Bar>)]) -> Result<()> {
    bar_panels(path, "Seed-averaged metrics, mean ± std (Fig. 9)", metrics, metrics.len().min(4))
}

/// Panels of mean ± std markers over categorical configurations (log vertical axis), `cols` per row.
pub fn bar_panels(path: &Path, title: &str, metrics: &[(String, Vec<Bar>)], cols: usize) -> Result<()> {
    let marks = [Mark::Circle, Mark::Cross, Mark::Triangle, Mark::Circle];
    let panels: Vec<Panel> = metrics
        .iter()
        .map(|(name, bars)| {
            let cats: Vec<String> = bars.iter().map(Bar::label).collect();
            let series = bars
                .iter()
                .enumerate()
                .map(|(i, b)| Series {
                    err: Some(vec![b.std]),
                    ..Series::new("", vec![(i as f64, b.mean)], i, marks[i % marks.len()])
                })
                .collect();
            Panel { title: name.clone(), x: Axis::categorical("configuration", cats), y: Axis::log(name), series }
        })
        .collect();
    render(path, title, &panels, cols, (430, 360))
}

/// Fig. 10: errors across the stiffness parameter, one line per configuration (mean ± std over
/// seeds); circles mark training values, triangles unseen ones.
pub fn eps_curves(path: &Path, param: &str, points: &[CurvePoint]) -> Result<()> {
    let mut names: Vec<&String> = points.iter().map(|p| &p.config).collect();
    names.dedup();
    type Metric = (&'static str, fn(&CurvePoint) -> (f64, f64));
    let metrics: [Metric; 5] = [
        ("relative fast error |λf/λf* − 1|", |p| (p.fast_rel, p.fast_rel_std)),
        ("|Δλ_fast|", |p| (p.fast_abs, p.fast_abs_std)),
        ("|Δλ_slow|", |p| (p.slow_abs, p.slow_abs_std)),
        ("rollout L2", |p| (p.rollout_l2, p.rollout_l2_std)),
        ("fast-subspace angle (degrees)", |p| (p.fast_angle_deg, p.fast_angle_deg_std)),
    ];
    let panels: Vec<Panel> = metrics
        .iter()
        .map(|(title, f)| {
            let mut series = Vec::new();
            for (c, n) in names.iter().enumerate() {
                let mut pts: Vec<&CurvePoint> = points.iter().filter(|p| &p.config == *n).collect();
                pts.sort_by(|a, b| a.eps.total_cmp(&b.eps));
                // Diverged seeds are left out of the means; the legend says so.
                let diverged = pts.iter().map(|p| p.diverged).max().unwrap_or(0);
                let seeds = pts.first().map_or(0, |p| p.seeds);
                series.push(Series::new(
                    diverged_label(n, diverged, seeds),
                    pts.iter().map(|p| (p.eps, f(p).0)).collect(),
                    c,
                    Mark::Line,
                ));
                for (unseen, mark) in [(false, Mark::Circle), (true, Mark::Triangle)] {
                    let sel: Vec<&&CurvePoint> = pts.iter().filter(|p| p.unseen == unseen).collect();
                    series.push(Series {
                        err: Some(sel.iter().map(|p| f(p).1).collect()),
                        ..Series::new("", sel.iter().map(|p| (p.eps, f(p).0)).collect(), c, mark)
                    });
                }
            }
            Panel { title: title.to_string(), x: Axis::log(param), y: Axis::log(*title), series }
        })
        .collect();
    render(
        path,
        &format!("Errors across {param}, mean ± std over seeds; ● training, ▲ unseen (Fig. 10)"),
        &panels,
        2,
        (520, 380),
    )
}

/// Figs. 2 and 4: histograms of `log10 |value|` per target component, raw (left) and transformed
/// (right); trajectory points only (`base`) and the whole dataset (`all`, with the cloud).
pub fn histograms(path: &Path, title: &str, hist: &[HistBin]) -> Result<()> {
    let mut names: Vec<&String> = hist.iter().map(|h| &h.name).collect();
    names.sort();
    names.dedup();
    let mut panels = Vec::new();
    for n in &names {
        for space in ["raw", "transformed"] {
            let series = ["base", "all"]
                .iter()
                .enumerate()
                .map(|(c, subset)| {
                    let pts = hist
                        .iter()
                        .filter(|h| &h.name == *n && h.space == space && h.subset == *subset)
                        .map(|h| (0.5 * (h.lo + h.hi), h.fraction))
                        .collect();
                    Series::new(if *subset == "base" { "trajectories" } else { "all (with cloud)" }, pts, c, Mark::Line)
                })
                .collect();
            panels.push(Panel {
                title: format!("{n}, {space}"),
                x: Axis::linear("log10 |value|"),
                y: Axis::linear("fraction of samples"),
                series,
            });
        }
    }
    render(path, title, &panels, 2, (430, 320))
}

/// Figs. 3 and 5: normal Q-Q plots of the standardized targets, raw and transformed, with the
/// identity line and the Q-Q correlation `R` in the panel titles.
pub fn qq_plots(path: &Path, title: &str, qq: &[QqPoint], stats: &[ComponentStats]) -> Result<()> {
    let mut names: Vec<&String> = qq.iter().map(|h| &h.name).collect();
    names.sort();
    names.dedup();
    let mut panels = Vec::new();
    for n in &names {
        for space in ["raw", "transformed"] {
            let mut series = vec![Series::new("", vec![(-4.0, -4.0), (4.0, 4.0)], 7, Mark::Dashed)];
            let mut rs = Vec::new();
            for (c, subset) in ["base", "all"].iter().enumerate() {
                let pts: Vec<(f64, f64)> = qq
                    .iter()
                    .filter(|h| &h.name == *n && h.space == space && h.subset == *subset)
                    .map(|h| (h.normal, h.sample))
                    .collect();
                if let Some(s) = stats.iter().find(|s| &s.name == *n && s.subset == *subset) {
                    rs.push(format!("R {}={:.3}", subset, if space == "raw" { s.qq_raw } else { s.qq_transformed }));
                }
                series.push(Series::new(
                    if *subset == "base" { "trajectories" } else { "all (with cloud)" },
                    pts,
                    c,
                    Mark::Circle,
                ));
            }
            panels.push(Panel {
                title: format!("{n}, {space}: {}", rs.join(", ")),
                x: Axis::linear("normal quantile"),
                y: Axis::linear("standardized sample quantile"),
                series,
            });
        }
    }
    render(path, title, &panels, 2, (430, 360))
}

/// `histograms.png` (PDF of log10 |target|, Figs. 2/4) and `qq.png` (normal Q-Q plots, Figs. 3/5) of
/// a dataset's target diagnostics, into `dir`.
pub fn diagnostics(dir: &Path, d: &crate::eval::diagnostics::Diagnostics, source: &str) -> Result<()> {
    histograms(&dir.join("histograms.png"), &format!("PDF of log10 |target| (Figs. 2, 4): {source}"), &d.hist)?;
    qq_plots(&dir.join("qq.png"), &format!("Normal Q-Q plots of the targets (Figs. 3, 5): {source}"), &d.qq, &d.stats)
}

#[cfg(test)]
mod tests {
    use super::super::{Axis, Mark, Panel, Series, range};
    use super::{Bar, bar_panels};

    /// Fig. 9 with a seed whose rollout blew up (1e87, reported as `inf` by the evaluator): the bar
    /// is the mean over the finite seeds, its label says `1/3 diverged`, and the axis spans the finite
    /// bars only.
    #[test]
    fn a_diverged_seed_is_named_and_never_sets_an_axis() {
        let ok = Bar::of("asinh", &[1e-4, 2e-4, 3e-4]);
        let bad = Bar::of("baseline", &[5e-4, f64::INFINITY, 7e-4]);
        assert!((bad.mean - 6e-4).abs() < 1e-15 && (bad.diverged, bad.seeds) == (1, 3));
        assert_eq!(bad.label(), "baseline (1/3 diverged)");
        assert_eq!(ok.label(), "asinh");
        let all = Bar::of("x", &[f64::INFINITY]);
        assert!(all.mean.is_nan() && all.label() == "x (1/1 diverged)");
        let panel = Panel {
            title: "rollout".into(),
            x: Axis::categorical("configuration", vec![ok.label(), bad.label(), all.label()]),
            y: Axis::log("rollout"),
            series: [&ok, &bad, &all]
                .iter()
                .enumerate()
                .map(|(i, b)| Series {
                    err: Some(vec![b.std]),
                    ..Series::new("", vec![(i as f64, b.mean)], i, Mark::Circle)
                })
                .collect(),
        };
        let (lo, hi) = range(&panel, &panel.y, |q| q.1, true);
        assert!(lo >= 1e-6 && hi <= 1e-2, "{lo:e} … {hi:e}");
        let dir = tempfile::tempdir().unwrap();
        bar_panels(&dir.path().join("f9.png"), "f9", &[("rollout".into(), vec![ok, bad, all])], 1).unwrap();
    }
}
