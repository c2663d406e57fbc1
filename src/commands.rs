//! The subcommands behind the CLI: `run`, `eval` and `bench`. Each returns a typed error; `main`
//! maps it to the exit code.

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::backend::{Backend, Precision};
use crate::cli::{BenchArgs, DiagnoseArgs, EvalArgs, RunArgs, SweepArgs, device_options, run_config};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::io::{write_csv, write_json};
use crate::labeller::{Burst, Labeller, TauMode};
use crate::model::{Normalizer, Weights};
use crate::pipeline::{Checkpoint, RunMetrics, evaluate, run as run_pipeline};
use crate::sampler::{CloudSampler, Sampler};
use crate::spectral::{JacobianMode, LearnedRhs, eigenvalues};
use crate::train::{Dataset, Silent, train};
use crate::transform::Identity;

fn print_summary(m: &RunMetrics) {
    println!(
        "best val loss {:.3e} (epoch {}), {:.0} samples/s on {}",
        m.best_val_loss, m.best_epoch, m.train_samples_per_sec, m.backend
    );
    println!(
        "{:>8} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "eps", "rollout L2", "|dl_fast|", "|dl_slow|", "fast rel", "complex"
    );
    for e in &m.eval.per_eps {
        println!(
            "{:>8} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>9.3}",
            e.eps, e.rollout_l2, e.fast_abs, e.slow_abs, e.fast_rel, e.complex_fraction
        );
    }
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

/// `stiffx eval`.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let ck = Checkpoint::load(&a.checkpoint)?;
    let (backend, jacobian, precision) = device_options(&a.device)?;
    for &e in &a.eps {
        ck.config.system.check_param(e).map_err(|_| crate::Error::invalid("--eps", e, "stiffness values > 0"))?;
    }
    let mut eps = if a.eps.is_empty() { ck.config.eval_eps() } else { a.eps.clone() };
    if a.unseen {
        eps.extend(ck.config.system.unseen_grid());
    }
    let device = backend.device()?;
    let (ev, _) = evaluate(&ck, &eps, &device, precision, jacobian)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.checkpoint.parent().map(|p| p.join("eval")).unwrap_or_else(|| PathBuf::from("eval")));
    write_csv(&out.join("per_eps.csv"), &ev.per_eps)?;
    write_json(&out.join("evaluation.json"), &ev)?;
    println!("{:>8} {:>11} {:>11} {:>11} {:>11}", "eps", "rollout L2", "|dl_fast|", "|dl_slow|", "fast rel");
    for e in &ev.per_eps {
        println!(
            "{:>8} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e}",
            e.eps, e.rollout_l2, e.fast_abs, e.slow_abs, e.fast_rel
        );
    }
    println!("results in {}", out.display());
    Ok(())
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

fn median_of(v: &[f64]) -> f64 {
    crate::transform::median(v)
}

/// `stiffx bench`: medians of training samples/s (default 4×128 model, batch 8192), Jacobian +
/// eigenvalues for 10,000 points (forward and reverse mode, f32 and f64) and burst labels/s.
pub fn bench(a: &BenchArgs) -> Result<()> {
    let backend: Backend = a.backend.parse()?;
    let reps = a.reps.max(1);
    for o in &a.only {
        if !["train", "jacobian", "burst"].contains(&o.as_str()) {
            return Err(crate::Error::invalid("--only", o, "train, jacobian, burst"));
        }
    }
    let want = |p: &str| a.only.is_empty() || a.only.iter().any(|o| o == p);
    let mut rows = Vec::new();
    let sys = crate::registry::system("davis-skodje")?;
    let n = 8192 * 10;
    let (ds, val) = Dataset::synthetic(n, 3, 2, 7);
    let init = Weights::init(3, 4, 128, 2, 1);
    let device = backend.device()?;
    let cfg = TrainConfig { epochs: 1, ..Default::default() };
    if want("train") {
        // warm-up
        train(&init, &ds, &val, &cfg, 1, &device, &mut Silent)?;
        let mut s = Vec::new();
        for r in 0..reps {
            let t = train(&init, &ds, &val, &cfg, r as u64, &device, &mut Silent)?;
            s.push(t.samples_per_sec);
        }
        rows.push(BenchRow {
            what: format!("train 4x128 batch 8192 ({backend})"),
            median: median_of(&s),
            unit: "samples/s".into(),
            samples: s,
        });
    }

    // Jacobian + eigenvalues at 10k points.
    let npts = 10_000;
    let x: Vec<f64> =
        (0..npts).flat_map(|i| [0.5 + 2.0 * (i as f64 / npts as f64), 0.3 + (i % 7) as f64 * 0.1]).collect();
    let eps: Vec<f64> = (0..npts).map(|i| [0.01, 0.05, 0.1][i % 3]).collect();
    let norm = Normalizer { mean: vec![1.5, 0.6, 0.1], std: vec![0.6, 0.4, 0.09] };
    for precision in [Precision::F32, Precision::F64].into_iter().filter(|_| want("jacobian")) {
        let rhs = LearnedRhs::new(&init, norm.clone(), Box::new(Identity {}), 2, device.clone(), precision.dtype())?;
        for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
            let _ = eigenvalues(&rhs.jacobian(&x, &eps, mode), 2);
            let mut s = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                let ev = eigenvalues(&rhs.jacobian(&x, &eps, mode), 2);
                std::hint::black_box(ev);
                s.push(t.elapsed().as_secs_f64() * 1e3);
            }
            rows.push(BenchRow {
                what: format!("jacobian+eig 10k points {mode:?} {precision:?} ({backend})"),
                median: median_of(&s),
                unit: "ms".into(),
                samples: s,
            });
        }
    }

    // Burst labels: the cloud around 9 × 16 trajectories, K = 8 (≈ 780k states) is too slow for a
    // quick bench; use 2 trajectories per eps and K = 8 (≈ 97k states).
    let cloud = CloudSampler {
        base: Box::new(crate::sampler::TrajectorySampler { per_eps: 2, ..Default::default() }),
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
        rows.push(BenchRow {
            what: format!("burst labels {mode:?} batch {batch} rtol 1e-9 ({} states)", set.len()),
            median: median_of(&s),
            unit: "labels/s".into(),
            samples: s,
        });
    }
    for r in &rows {
        println!("{:<60} {:>14.4e} {}", r.what, r.median, r.unit);
    }
    if let Some(o) = &a.out {
        write_json(o, &rows)?;
    }
    Ok(())
}

/// `stiffx sweep`.
pub fn sweep(a: &SweepArgs) -> Result<()> {
    let (backend, jacobian, eval_precision) = device_options(&a.device)?;
    let opts = crate::pipeline::RunOptions { out: None, backend, eval_precision, jacobian, progress: !a.quiet };
    let rows = crate::sweep::sweep(&a.file, &opts, a.out.as_deref())?;
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
/// the trajectory points alone (`base`) and for the whole dataset (`all`, with the cloud), plus
/// histograms of log10 |value| — the paper's sections 5.2–5.3. The transform is fitted on all samples.
pub fn diagnose(a: &DiagnoseArgs) -> Result<()> {
    use crate::diagnostics::{ComponentStats, log_histogram};
    use crate::sampler::Origin;
    let cfg = crate::config::Config::from_file(&a.config)?;
    cfg.validate()?;
    let data = crate::pipeline::generate(&cfg)?;
    let d = data.set.dim;
    let mut t = cfg.transform.clone();
    t.fit(&data.labels, &data.set.eps, d)?;
    let tr = crate::transform::forward_all(t.as_ref(), &data.labels, &data.set.eps, d);
    let names = cfg.system.state_names();
    let (mut stats, mut hist) = (Vec::new(), Vec::new());
    for subset in ["base", "all"] {
        let keep: Vec<usize> = (0..data.set.len())
            .filter(|&i| subset == "all" || matches!(data.set.origin[i], Origin::Trajectory { .. }))
            .collect();
        for k in 0..d {
            let raw: Vec<f64> = keep.iter().map(|&i| data.labels[i * d + k]).collect();
            let tv: Vec<f64> = keep.iter().map(|&i| tr[i * d + k]).collect();
            stats.push(ComponentStats::new(subset, &names[k], &raw, &tv));
            hist.extend(log_histogram(subset, &names[k], "raw", &raw, 48));
            hist.extend(log_histogram(subset, &names[k], "transformed", &tv, 48));
        }
    }
    write_csv(&a.out.join("diagnostics.csv"), &stats)?;
    write_csv(&a.out.join("histograms.csv"), &hist)?;
    let mut md = format!(
        "# Target diagnostics\n\nConfig `{}`; transform {}.\n\n| subset | component | n | skew raw | skew T | Q-Q R raw | Q-Q R T |\n|---|---|---|---|---|---|---|\n",
        a.config.display(),
        t.describe()
    );
    for s in &stats {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.3} |\n",
            s.subset, s.name, s.n, s.skew_raw, s.skew_transformed, s.qq_raw, s.qq_transformed
        ));
    }
    crate::io::write_atomic(&a.out.join("diagnostics.md"), md.as_bytes())?;
    print!("{md}");
    Ok(())
}
