//! `stiffx sweep`: the paper's Table 1 experiment — several configurations × several seeds — in one
//! command, as a spec of the experiment engine: runs that share a seed and the same
//! data settings (system, sampler, labeller) share one generated dataset (`engine::cache`); a finished
//! run is skipped (`engine::job`), so an interrupted sweep resumes where it stopped. Writes `table1.csv` and `table1.md` (per run, plus mean ± std per
//! configuration, and S_comb of eq. 32 with medians over all runs of the sweep).
//!
//! ```toml
//! out = "runs/table1"
//! seeds = [1, 2, 3]
//! configs = ["baseline.toml", "asinh.toml", "cloud.toml", "asinh_cloud.toml"]  # relative to this file
//! epochs = 60        # optional override for every run
//! ```

pub use super::report::Row;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::pipeline::{RunMetrics, RunOptions};
use crate::error::{Error, Result};
use crate::eval::metrics::s_comb;
use crate::io::{write_atomic, write_csv};
use crate::table::{Column, Table, mean_std_cell};

/// A sweep file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Output directory (relative to the working directory).
    pub out: PathBuf,
    /// Seeds of every configuration.
    pub seeds: Vec<u64>,
    /// Config files, relative to the sweep file.
    pub configs: Vec<PathBuf>,
    /// Optional epoch override for every run.
    #[serde(default)]
    pub epochs: Option<i64>,
}

/// The named configs of a sweep, in its order (configs × seeds), with seeds and the epoch override
/// set and each validated; config files are relative to `dir` (the sweep file's folder).
pub fn configs(sc: &SweepConfig, dir: &Path) -> Result<Vec<(String, Config)>> {
    if sc.seeds.is_empty() || sc.configs.is_empty() {
        return Err(Error::invalid("seeds/configs", "[]", "at least one seed and one config"));
    }
    let mut jobs: Vec<(String, Config)> = Vec::new();
    for c in &sc.configs {
        let base = Config::from_file(&dir.join(c))?;
        base.require_reference(&format!("a sweep's spectral tables ({})", c.display()))?;
        let name = c.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        for &seed in &sc.seeds {
            let mut cfg = base.clone();
            cfg.seed = seed;
            if let Some(e) = sc.epochs {
                cfg.train.epochs = e;
            }
            cfg.validate()?;
            jobs.push((name.clone(), cfg));
        }
    }
    Ok(jobs)
}

/// Writes a sweep's tables (`table1.csv`, `table1.md`) and, with figures on, its report into `out`
/// from its finished runs `(name, config, metrics)`. Returns the rows and the Markdown table.
pub fn tables(
    sc: &SweepConfig,
    out: &Path,
    mut results: Vec<(String, Config, RunMetrics)>,
    backend_opts: &RunOptions,
) -> Result<(Vec<Row>, String)> {
    // Report in the sweep file's order of configs (the paper's: baseline, asinh, cloud, asinh_cloud).
    let stems: Vec<String> = sc
        .configs
        .iter()
        .map(|c| c.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
        .collect();
    results.sort_by_key(|(name, cfg, _)| (stems.iter().position(|s| s == name), cfg.seed));
    let triples: Vec<(f64, f64, f64)> = results
        .iter()
        .map(|(_, _, m)| (m.eval.reference.rollout_l2, m.eval.reference.fast_abs, m.eval.reference.slow_abs))
        .collect();
    let scores = s_comb(&triples);
    let mut rows: Vec<Row> = results
        .iter()
        .zip(scores)
        .map(|((name, cfg, m), s)| Row {
            config: name.clone(),
            seed: cfg.seed,
            transform: crate::plugins::registry::name_of(&cfg.transform),
            cloud: crate::plugins::registry::name_of(&cfg.sampler) == "cloud",
            best_val_loss: m.best_val_loss,
            rollout_l2: m.eval.reference.rollout_l2,
            fast_abs: m.eval.reference.fast_abs,
            slow_abs: m.eval.reference.slow_abs,
            s_comb: s,
            fast_rel: m.eval.reference.fast_rel,
            grid_rollout_l2: m.eval.grid_mean.rollout_l2,
            grid_fast_abs: m.eval.grid_mean.fast_abs,
            grid_slow_abs: m.eval.grid_mean.slow_abs,
            grid_fast_rel: m.eval.grid_mean.fast_rel,
            worst_eps_mean_fast_rel: m.eval.grid_mean.fast_rel_worst_eps_mean,
            fast_rel_max: m.eval.grid_mean.pointwise.as_ref().map_or(f64::NAN, |p| p.fast_rel.max),
            slow_rel_max: m.eval.grid_mean.pointwise.as_ref().map_or(f64::NAN, |p| p.slow_rel.max),
            seconds_data: m.seconds.sample + m.seconds.label,
            // A pass of networks trained together counts once over its members (`--together`).
            seconds_train: m.seconds.train / m.trained_together.max(1) as f64,
            seconds_eval: m.seconds.eval,
        })
        .collect();
    rows.sort_by_key(|r| (stems.iter().position(|s| *s == r.config), r.seed));
    let md = markdown(&rows, sc);
    write_csv(&out.join("table1.csv"), &rows)?;
    write_atomic(&out.join("table1.md"), md.as_bytes())?;
    if backend_opts.figures {
        let runs: Vec<crate::engine::report::SweepRun<'_>> = results
            .iter()
            .map(|(name, cfg, m)| crate::engine::report::SweepRun {
                name,
                cfg,
                metrics: m,
                dir: out.join(format!("{name}-s{}", cfg.seed)),
            })
            .collect();
        crate::engine::report::sweep_report(out, &runs, &rows, backend_opts)?;
    }
    Ok((rows, md))
}

/// The Markdown report of a sweep: per-run table (the paper's Table 1 layout), per-config mean ± std
/// at the reference eps and over the grid, and wall time.
pub fn markdown(rows: &[Row], sc: &SweepConfig) -> String {
    let mut s = String::new();
    s.push_str("# Table 1 sweep\n\n");
    s.push_str(&format!("Configs: {:?}; seeds {:?}. Metrics at the reference eps (0.05 unless the configs say otherwise) and as the mean over the evaluated grid. S_comb (eq. 32): medians over all {} runs of this sweep.\n\n", sc.configs, sc.seeds, rows.len()));
    let mut t = Table::new([
        "config",
        "seed",
        "transform",
        "cloud",
        "best_val_loss",
        "rollout L2",
        "\\|Δλ_fast\\|",
        "\\|Δλ_slow\\|",
        "S_comb",
        "fast rel",
        "grid fast rel",
        "worst eps-mean fast rel",
        "pointwise max fast rel",
    ]);
    for r in rows {
        t.row([
            r.config.clone(),
            r.seed.to_string(),
            r.transform.clone(),
            (if r.cloud { "yes" } else { "no" }).to_string(),
            format!("{:.3e}", r.best_val_loss),
            format!("{:.3e}", r.rollout_l2),
            format!("{:.3e}", r.fast_abs),
            format!("{:.3e}", r.slow_abs),
            format!("{:.3e}", r.s_comb),
            format!("{:.2e}", r.fast_rel),
            format!("{:.2e}", r.grid_fast_rel),
            format!("{:.2e}", r.worst_eps_mean_fast_rel),
            format!("{:.2e}", r.fast_rel_max),
        ]);
    }
    s.push_str(&t.markdown());
    s.push_str("\n## Mean ± std over seeds (Fig. 9)\n\n");
    let cols: [Column<Row>; 8] = [
        ("rollout L2", |r| r.rollout_l2),
        ("\\|Δλ_fast\\|", |r| r.fast_abs),
        ("\\|Δλ_slow\\|", |r| r.slow_abs),
        ("fast rel", |r| r.fast_rel),
        ("grid rollout L2", |r| r.grid_rollout_l2),
        ("grid \\|Δλ_fast\\|", |r| r.grid_fast_abs),
        ("grid \\|Δλ_slow\\|", |r| r.grid_slow_abs),
        ("grid fast rel", |r| r.grid_fast_rel),
    ];
    let mut t = Table::new(std::iter::once("config").chain(cols.iter().map(|c| c.0)));
    let mut names: Vec<&String> = rows.iter().map(|r| &r.config).collect();
    names.dedup();
    for n in names {
        let g: Vec<&Row> = rows.iter().filter(|r| &r.config == n).collect();
        let cells = cols.iter().map(|(_, f)| mean_std_cell(&g.iter().map(|r| f(r)).collect::<Vec<_>>(), 3, "diverged"));
        t.row(std::iter::once(n.clone()).chain(cells));
    }
    s.push_str(&t.markdown());
    let (d, t, e) =
        rows.iter().fold((0.0, 0.0, 0.0), |a, r| (a.0 + r.seconds_data, a.1 + r.seconds_train, a.2 + r.seconds_eval));
    s.push_str(&format!("\nWall time of the runs: data {d:.0} s (shared datasets counted once per run that used them), training {t:.0} s, evaluation {e:.0} s.\n"));
    s.push_str("\nThe paper's Table 1 (seed means): baseline rollout 1.07e-3, fast 1.79, slow 1.24e-2; asinh 2.10e-3, 7.84, 4.65e-3; cloud 1.73e-3, 0.122, 2.56e-2; asinh_cloud 1.20e-4, 0.135, 7.84e-4.\n");
    s
}
