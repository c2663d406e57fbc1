//! `stiffx compare`: one table of the method's metrics across systems × transforms × samplers, each
//! with seeds — the cross-system check that the framework's plugins compose (issue: beyond
//! Davis–Skodje).
//!
//! Every combination starts from a base config (`--config`; several may be given: a system named by
//! one of them uses that one as its base, the others use the first): the system is the base's when the names
//! match and the registry default of the named system otherwise; a transform or sampler whose name matches the base config's keeps the
//! base's settings (so `asinh` keeps its per-eps scales, `cloud` its K and spreads), `trajectory` is the
//! base cloud's own base sampler when the base config uses a cloud (or the base's union of
//! trajectory samplers, with or without a cloud around it), and `cloud` wraps the base
//! trajectory sampler with the default cloud otherwise. Runs go to `out/<system>/<transform>-<sampler>-s<seed>/`,
//! share datasets (same system, sampler, labeller and seed), and resume like a sweep. Writes
//! `compare.csv`, `compare.md` and `compare.png`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::pipeline::RunOptions;
use crate::error::{Error, Result};
use crate::figures::paper::{Bar, bar_panels};
use crate::io::{write_atomic, write_csv};
use crate::plugins::registry::{self, name_of};
use crate::plugins::sampler::Sampler;
use crate::plugins::transform::TargetTransform;
use crate::stats::mean_std;
use crate::table::{Table, mean_std_cell};

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    /// Registered system names.
    pub systems: Vec<String>,
    /// Registered transform names.
    pub transforms: Vec<String>,
    /// Registered sampler names.
    pub samplers: Vec<String>,
    /// Seeds of every combination.
    pub seeds: Vec<u64>,
    /// Optional epoch override.
    pub epochs: Option<i64>,
}

/// NaN, the default of a metric missing from older results.
fn nan() -> f64 {
    f64::NAN
}

/// One run of the comparison (a row of `compare.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// System name.
    pub system: String,
    /// Transform name.
    pub transform: String,
    /// Sampler name.
    pub sampler: String,
    /// Seed.
    pub seed: u64,
    /// Training + validation samples.
    pub samples: usize,
    /// Best validation loss (transformed space: not comparable across transforms).
    pub best_val_loss: f64,
    /// Mean over the training grid of the rollout L2 error (eq. 17).
    pub rollout_l2: f64,
    /// Mean over the grid of |Δλ_fast| (eq. 18).
    pub fast_abs: f64,
    /// Mean over the grid of |Δλ_slow| (eq. 18).
    pub slow_abs: f64,
    /// Mean over the grid of |λ_fast/λ*_fast − 1|.
    pub fast_rel: f64,
    /// The largest per-eps *mean* relative fast error (was `worst_fast_rel`).
    #[serde(alias = "worst_fast_rel")]
    pub worst_eps_mean_fast_rel: f64,
    /// The pointwise worst relative fast error over every evaluated point (NaN before pointwise metrics).
    #[serde(default = "nan")]
    pub fast_rel_max: f64,
    /// Mean over the grid of |λ_slow/λ*_slow − 1|.
    pub slow_rel: f64,
    /// Mean over the grid of the worst relative error over all nonzero eigenvalues (n-D systems).
    pub all_rel: f64,
    /// Mean over the grid of the per-species relative rollout error.
    pub rollout_rel: f64,
    /// Mean over the grid of the fraction of points with every nonzero eigenvalue within 5 %.
    pub all_within: f64,
    /// Mean over the eps where the reference oscillates of the relative error of the learned
    /// oscillation period ([`crate::eval::metrics::period_rel`]; infinite when a learned rollout stops
    /// oscillating); empty for systems that do not oscillate over the evaluation horizon.
    #[serde(default, with = "crate::io::float_opt")]
    pub period_rel: Option<f64>,
    /// Seconds of data generation (sampling + labelling; shared datasets report their one generation).
    pub seconds_data: f64,
    /// Training seconds (this run's share of a pass of networks trained together, `--together`).
    pub seconds_train: f64,
    /// Evaluation seconds.
    pub seconds_eval: f64,
}

fn plugin_json<T: Serialize + ?Sized>(p: &T) -> Result<serde_json::Value> {
    serde_json::to_value(p).map_err(|e| Error::Unsupported(format!("plugin does not serialise: {e}")))
}

/// The sampler named `name`, built from the base config's as described in the module docs.
#[allow(clippy::borrowed_box)] // the Box's Clone (a serde round trip) is what is needed
fn sampler_for(base: &Box<dyn Sampler>, name: &str) -> Result<Box<dyn Sampler>> {
    if name_of(base) == name {
        return Ok(base.clone());
    }
    let b = plugin_json(base)?;
    let from = |v: serde_json::Value| -> Result<Box<dyn Sampler>> {
        serde_json::from_value(v).map_err(|e| Error::Unsupported(format!("sampler `{name}`: {e}")))
    };
    if b["base"]["type"] == name {
        return from(b["base"].clone());
    }
    // A union of trajectory samplers (long and short trajectories, `union`) is the base's
    // `trajectory` variant: the same trajectories without the cloud.
    let trajectories = |v: &serde_json::Value| {
        v["type"] == "union"
            && v["parts"].as_array().is_some_and(|p| !p.is_empty() && p.iter().all(|x| x["type"] == "trajectory"))
    };
    if name == "trajectory" {
        for v in [&b, &b["base"]] {
            if trajectories(v) {
                return from(v.clone());
            }
        }
    }
    if name == "cloud" {
        return from(serde_json::json!({"type": "cloud", "base": b}));
    }
    registry::sampler(name)
}

#[allow(clippy::borrowed_box)] // as in `sampler_for`
fn transform_for(base: &Box<dyn TargetTransform>, name: &str) -> Result<Box<dyn TargetTransform>> {
    if name_of(base) == name {
        return Ok(base.clone());
    }
    registry::transform(name)
}

/// The base config of `system`: the first of `bases` whose system it is, else the first.
pub fn base_for<'a>(bases: &'a [Config], system: &str) -> &'a Config {
    bases.iter().find(|c| name_of(&c.system) == system).unwrap_or(&bases[0])
}

/// Builds every job `(name, config)` of the comparison; unknown names give the registry's error.
pub fn jobs(bases: &[Config], spec: &CompareSpec) -> Result<Vec<(String, Config)>> {
    if bases.is_empty() {
        return Err(Error::invalid("--config", "(none)", "at least one base config file"));
    }
    for (what, v) in [("--systems", &spec.systems), ("--transforms", &spec.transforms), ("--samplers", &spec.samplers)]
    {
        if v.is_empty() {
            return Err(Error::invalid(what, "(empty)", "a comma-separated list of registered names"));
        }
    }
    if spec.seeds.is_empty() {
        return Err(Error::invalid("--seeds", "(empty)", "a comma-separated list of seeds"));
    }
    let mut jobs = Vec::new();
    for s in &spec.systems {
        let base = base_for(bases, s);
        // The base config's system keeps its own parameters; others get their registry defaults.
        let system = if name_of(&base.system) == *s { base.system.clone() } else { registry::system(s)? };
        for t in &spec.transforms {
            let transform = transform_for(&base.transform, t)?;
            for p in &spec.samplers {
                let sampler = sampler_for(&base.sampler, p)?;
                for &seed in &spec.seeds {
                    let mut cfg = base.clone();
                    cfg.system = system.clone();
                    cfg.transform = transform.clone();
                    cfg.sampler = sampler.clone();
                    cfg.seed = seed;
                    if let Some(e) = spec.epochs {
                        cfg.train.epochs = e;
                    }
                    cfg.validate()?;
                    cfg.require_reference("a comparison's spectral tables")?;
                    jobs.push((format!("{s}/{t}-{p}"), cfg));
                }
            }
        }
    }
    Ok(jobs)
}

/// Writes the comparison's `compare.csv`, `compare.md` and (with figures on) `compare.png` into `out`
/// from its finished runs `(name, config, metrics)`. Returns the rows and the Markdown table.
pub fn tables(
    bases: &[Config],
    spec: &CompareSpec,
    out: &Path,
    results: Vec<(String, Config, crate::engine::pipeline::RunMetrics)>,
    opts: &RunOptions,
) -> Result<(Vec<CompareRow>, String)> {
    let mut rows: Vec<CompareRow> = results
        .iter()
        .map(|(_, cfg, m)| {
            let g = &m.eval.grid_mean;
            CompareRow {
                system: name_of(&cfg.system),
                transform: name_of(&cfg.transform),
                sampler: name_of(&cfg.sampler),
                seed: cfg.seed,
                samples: m.n_train + m.n_val,
                best_val_loss: m.best_val_loss,
                rollout_l2: g.rollout_l2,
                fast_abs: g.fast_abs,
                slow_abs: g.slow_abs,
                fast_rel: g.fast_rel,
                worst_eps_mean_fast_rel: g.fast_rel_worst_eps_mean,
                fast_rel_max: g.pointwise.as_ref().map_or(f64::NAN, |p| p.fast_rel.max),
                slow_rel: g.slow_rel,
                all_rel: g.all_rel,
                rollout_rel: g.rollout_rel,
                all_within: g.all_within,
                period_rel: g.period_rel,
                seconds_data: m.seconds.sample + m.seconds.label,
                // A pass of networks trained together counts once over its members (`--together`).
                seconds_train: m.seconds.train / m.trained_together.max(1) as f64,
                seconds_eval: m.seconds.eval,
            }
        })
        .collect();
    let order = |r: &CompareRow| {
        (
            spec.systems.iter().position(|s| *s == r.system),
            spec.transforms.iter().position(|s| *s == r.transform),
            spec.samplers.iter().position(|s| *s == r.sampler),
            r.seed,
        )
    };
    rows.sort_by_key(order);
    let md = markdown(&rows, spec, bases);
    write_csv(&out.join("compare.csv"), &rows)?;
    write_atomic(&out.join("compare.md"), md.as_bytes())?;
    if opts.figures {
        let mut panels = Vec::new();
        for (title, f) in [
            ("grid-mean relative fast error", (|r: &CompareRow| r.fast_rel) as fn(&CompareRow) -> f64),
            ("grid-mean rollout L2", |r: &CompareRow| r.rollout_l2),
            // Robust to the few points where a reference eigenvalue nears zero and a relative error
            // explodes (Robertson at t = 0), which dominate a mean of relative errors.
            ("points with every nonzero λ within 5 %", |r: &CompareRow| r.all_within),
        ] {
            for s in &spec.systems {
                let mut bars = Vec::new();
                for t in &spec.transforms {
                    for p in &spec.samplers {
                        let v: Vec<f64> = rows
                            .iter()
                            .filter(|r| &r.system == s && &r.transform == t && &r.sampler == p)
                            .map(f)
                            .collect();
                        // Short category labels so that four fit under a panel.
                        let short = |n: &str| match n {
                            "identity" => "id".to_string(),
                            "trajectory" => "traj".to_string(),
                            other => other.to_string(),
                        };
                        bars.push(Bar::of(format!("{}+{}", short(t), short(p)), &v));
                    }
                }
                panels.push((format!("{s}: {title}"), bars));
            }
        }
        bar_panels(
            &out.join("compare.png"),
            "Systems × transforms × samplers, mean ± std over seeds",
            &panels,
            spec.systems.len(),
        )?;
    }
    Ok((rows, md))
}

/// A table cell: mean (± std over several) of the finite values, and how many were not finite, e.g.
/// `1.23e-2 ± 4.0e-3 (1/3 diverged)`; `—` when none is finite ([`mean_std_cell`]).
fn cell(all: &[f64], not_finite: &str) -> String {
    mean_std_cell(all, 2, not_finite)
}

fn markdown(rows: &[CompareRow], spec: &CompareSpec, bases: &[Config]) -> String {
    let base = &bases[0];
    let mut s = format!(
        "# Comparison across systems\n\nSeeds {:?}; labeller {}; model {}×{} {}; {} epochs, batch {}. Metrics are means over each system's training grid and its fixed test initial states (eq. 17 rollouts, {}; eq. 18 eigenvalue errors along the reference trajectories), then mean ± std over seeds. `worst` is the largest per-eps mean relative fast error; `all rel` the worst relative error over all nonzero eigenvalues at a point (exact zeros, such as a conservation law's, excluded), averaged; `≤5 %` the fraction of points where every nonzero eigenvalue is within 5 %; `rollout rel` the largest rollout error of a species relative to its range; `period` the relative error of the learned oscillation period where the reference oscillates (— elsewhere).{}\n\n",
        spec.seeds,
        base.labeller.describe(),
        base.model.hidden,
        base.model.width,
        base.model.activation.name(),
        spec.epochs.unwrap_or(base.train.epochs),
        base.train.batch,
        match base.eval.integrator {
            crate::config::Integrator::Rk4 => format!(
                "RK4 Δt = {}, T = {} unless a system's own config says otherwise",
                base.eval.dt, base.eval.horizon
            ),
            crate::config::Integrator::Bdf => format!(
                "BDF with the learned Jacobian to T = {} unless a system's own config says otherwise",
                base.eval.horizon
            ),
        },
        if bases.len() > 1 {
            format!(
                " Systems with their own base config: {}.",
                bases[1..]
                    .iter()
                    .map(|c| format!(
                        "{} (labeller {}; {}; model {}×{} {})",
                        name_of(&c.system),
                        c.labeller.describe(),
                        c.sampler.describe(),
                        c.model.hidden,
                        c.model.width,
                        c.model.activation.name()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else {
            String::new()
        }
    );
    let mut table = Table::new([
        "system",
        "transform",
        "sampler",
        "samples",
        "fast rel",
        "worst",
        "all rel",
        "≤5 %",
        "\\|Δλ_fast\\|",
        "\\|Δλ_slow\\|",
        "rollout L2",
        "rollout rel",
        "period",
        "data s",
        "train s",
        "eval s",
    ]);
    for sy in &spec.systems {
        for t in &spec.transforms {
            for p in &spec.samplers {
                let g: Vec<&CompareRow> =
                    rows.iter().filter(|r| &r.system == sy && &r.transform == t && &r.sampler == p).collect();
                if g.is_empty() {
                    continue;
                }
                let m = |f: fn(&CompareRow) -> f64| cell(&g.iter().map(|r| f(r)).collect::<Vec<_>>(), "diverged");
                // Only the runs whose reference oscillates have a period error (none: `—`).
                let period = cell(&g.iter().filter_map(|r| r.period_rel).collect::<Vec<_>>(), "stopped oscillating");
                let secs = |f: fn(&CompareRow) -> f64| {
                    format!("{:.1}", mean_std(&g.iter().map(|r| f(r)).collect::<Vec<_>>()).0)
                };
                table.row([
                    sy.clone(),
                    t.clone(),
                    p.clone(),
                    g[0].samples.to_string(),
                    m(|r| r.fast_rel),
                    m(|r| r.worst_eps_mean_fast_rel),
                    m(|r| r.all_rel),
                    m(|r| r.all_within),
                    m(|r| r.fast_abs),
                    m(|r| r.slow_abs),
                    m(|r| r.rollout_l2),
                    m(|r| r.rollout_rel),
                    period,
                    secs(|r| r.seconds_data),
                    secs(|r| r.seconds_train),
                    secs(|r| r.seconds_eval),
                ]);
            }
        }
    }
    s.push_str(&table.markdown());
    s.push_str(
        "\nPer run: `compare.csv`; figure: `compare.png`; run directories `<system>/<transform>-<sampler>-s<seed>/`.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, seed: u64, period_rel: Option<f64>) -> CompareRow {
        CompareRow {
            system: system.into(),
            transform: "asinh".into(),
            sampler: "cloud".into(),
            seed,
            samples: 100,
            best_val_loss: 1e-3,
            rollout_l2: 1e-2,
            fast_abs: 1.0,
            slow_abs: 0.1,
            fast_rel: 0.01,
            worst_eps_mean_fast_rel: 0.02,
            fast_rel_max: 0.05,
            slow_rel: 0.03,
            all_rel: 0.04,
            rollout_rel: 0.05,
            all_within: 0.9,
            period_rel,
            seconds_data: 1.0,
            seconds_train: 2.0,
            seconds_eval: 3.0,
        }
    }

    /// The `trajectory` and `cloud` variants of a base whose trajectories are a union (long and
    /// short): `trajectory` is the union itself, `cloud` keeps the base's cloud around it; a plain
    /// trajectory base is its own `trajectory`; a union with a non-trajectory part is not one.
    #[test]
    fn a_union_of_trajectories_is_the_trajectory_variant() {
        let cfg = Config::from_toml(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/davis_skodje_pointwise.toml"))
                .unwrap(),
        )
        .unwrap();
        let json = |s: Box<dyn Sampler>| plugin_json(&s).unwrap();
        let base = json(cfg.sampler.clone());
        let traj = json(sampler_for(&cfg.sampler, "trajectory").unwrap());
        assert_eq!(traj, base["base"]);
        assert_eq!(traj["parts"][1]["per_eps"], 96);
        assert_eq!(json(sampler_for(&cfg.sampler, "cloud").unwrap()), base);
        let union = sampler_for(&cfg.sampler, "trajectory").unwrap();
        assert_eq!(json(sampler_for(&union, "trajectory").unwrap()), traj);
        assert_eq!(json(sampler_for(&union, "cloud").unwrap())["base"], traj);
        let mut mixed = traj.clone();
        mixed["parts"][1] = json(registry::sampler("data").unwrap());
        let mixed: Box<dyn Sampler> = serde_json::from_value(mixed).unwrap();
        assert_eq!(json(sampler_for(&mixed, "trajectory").unwrap()), json(registry::sampler("trajectory").unwrap()));
    }

    /// The period column: mean ± std over the seeds that kept oscillating, how many stopped, and `—`
    /// for a system whose reference does not oscillate; the CSV keeps `None` as an empty field.
    #[test]
    fn the_table_has_a_period_column_for_oscillators() {
        let rows = vec![
            row("davis-skodje", 1, None),
            row("van-der-pol", 1, Some(0.01)),
            row("van-der-pol", 2, Some(0.03)),
            row("van-der-pol", 3, Some(f64::INFINITY)),
        ];
        let spec = CompareSpec {
            systems: vec!["davis-skodje".into(), "van-der-pol".into()],
            transforms: vec!["asinh".into()],
            samplers: vec!["cloud".into()],
            seeds: vec![1, 2, 3],
            epochs: None,
        };
        let md = markdown(&rows, &spec, &[Config::default()]);
        // Table lines with the escaped pipes of `\|Δλ\|` taken out, so that `|` splits cells.
        let line = |s: &str| md.lines().find(|l| l.starts_with(s)).unwrap().replace("\\|", "");
        let header = line("| system");
        let col = header.split('|').position(|c| c.trim() == "period").unwrap();
        let cell = |l: String| l.split('|').nth(col).unwrap().trim().to_string();
        assert_eq!(cell(line("| davis-skodje")), "—");
        assert_eq!(cell(line("| van-der-pol")), "2.00e-2 ± 1.4e-2 (1/3 stopped oscillating)");
        assert_eq!(header.matches('|').count(), line("|---").matches('|').count());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compare.csv");
        write_csv(&path, &rows).unwrap();
        let back: Vec<CompareRow> = csv::Reader::from_path(&path).unwrap().deserialize().map(|r| r.unwrap()).collect();
        assert_eq!(back[0].period_rel, None);
        assert_eq!(back[1].period_rel, Some(0.01));
        assert_eq!(back[3].period_rel, Some(f64::INFINITY));
    }
}
