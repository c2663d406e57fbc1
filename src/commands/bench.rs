//! `stiffx bench`: training throughput (batch sizes, shards, the Jacobian loss, L-BFGS rounds, f64
//! against f32, a reaction network against the MLP), Jacobian + eigenvalue timings and burst labels/s,
//! as medians over interleaved repetitions.

use std::time::Instant;

use clap::ValueEnum;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::backend::{Backend, Precision};
use crate::cli::BenchArgs;
use crate::error::Result;
use crate::eval::spectral::{JacobianMode, LearnedRhs, eigenvalues};
use crate::io::write_json;
use crate::model::{Normalizer, Weights};
use crate::plugins::cloud::CloudSampler;
use crate::plugins::labeller::{Burst, Labeller, TauMode};
use crate::plugins::sampler::Sampler;
use crate::plugins::transform::Identity;
use crate::train::config::TrainConfig;
use crate::train::{Dataset, Silent, Trained, train};

mod models;

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
    interleaved(jobs.len(), reps, name, |i, rep| {
        let (ds, val, cfg, device, init) = &jobs[i];
        // The warm-up trains with seed 1, repetition r with seed r.
        Ok(train(init, ds, val, cfg, rep.map_or(1, |r| r as u64), device, &mut Silent)?.samples_per_sec)
    })
}

/// The figures of `cases` measurements, `once(i, rep)` for case `i`: a warm-up of each (`rep` is
/// `None`, its figure dropped), then `reps` repetitions interleaved across the cases so that a noisy
/// machine slows all alike, with a progress bar called `name`. Returns each case's repetitions.
fn interleaved(
    cases: usize,
    reps: usize,
    name: &str,
    mut once: impl FnMut(usize, Option<usize>) -> Result<f64>,
) -> Result<Vec<Vec<f64>>> {
    let bar = crate::engine::pipeline::bar(true, (cases * (reps + 1)) as u64, name);
    for i in 0..cases {
        once(i, None)?;
        bar.inc(1);
    }
    let mut s = vec![Vec::new(); cases];
    for r in 0..reps {
        for (i, s) in s.iter_mut().enumerate() {
            s.push(once(i, Some(r))?);
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

/// The Jacobian measurements' `n` points of a 2-state system (states, eps) and the standardisation
/// of the networks evaluated at them.
fn jacobian_points(n: usize) -> (Vec<f64>, Vec<f64>, Normalizer) {
    let x: Vec<f64> = (0..n).flat_map(|i| [0.5 + 2.0 * (i as f64 / n as f64), 0.3 + (i % 7) as f64 * 0.1]).collect();
    let eps: Vec<f64> = (0..n).map(|i| [0.01, 0.05, 0.1][i % 3]).collect();
    let norm = Normalizer {
        mean: vec![1.5, 0.6, 0.1],
        std: vec![0.6, 0.4, 0.09],
        state_scale: Vec::new(),
        state_map: Default::default(),
    };
    (x, eps, norm)
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
fn model_rates(ctx: &Bench, name: &'static str, models: &[(&Weights, Precision, f64)]) -> Result<VariantRates> {
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
    if a.models.is_empty() || a.models.contains(&0) {
        return Err(crate::Error::invalid("--models", format!("{:?}", a.models), "positive integers, e.g. 1,3,12,48"));
    }
    // The sizes the flags imply, refused above the memory limit before anything is allocated: the
    // synthetic data (10 batches per size, train and validation, plus L-BFGS's copy at the largest),
    // a batch's activations (4×128 network) and the Jacobian points' forward-mode tangents.
    let largest = a.batch.iter().copied().max().unwrap_or(0) as f64;
    let rows: f64 = a.batch.iter().map(|&b| 10.0 * b as f64).sum::<f64>() + 10.0 * largest;
    let parts = [
        ("--batch", rows * 5.0 * 8.0 * 2.0 + largest * 128.0 * 4.0 * 8.0 * 12.0),
        ("--points", a.points as f64 * 128.0 * 4.0 * 8.0 * 8.0),
        // The `models` part: each network's data and its batch's activations; `models-jacobian`: each
        // network's Jacobians.
        (
            "--models",
            match a.only.iter().any(|p| matches!(p, crate::cli::BenchPart::Models)) {
                true => {
                    let m = a.models.iter().copied().max().unwrap_or(1) as f64;
                    m * (10.0 * largest * 5.0 * 8.0 * 2.0 + largest * 128.0 * 4.0 * 8.0 * 12.0)
                }
                false => 0.0,
            } + match a.only.iter().any(|p| matches!(p, crate::cli::BenchPart::ModelsJacobian)) {
                // The stacked pass works in chunks; every network's Jacobians and outputs are kept.
                true => a.models.iter().copied().max().unwrap_or(1) as f64 * a.points as f64 * 6.0 * 8.0 * 4.0,
                false => 0.0,
            },
        ),
    ];
    crate::resources::check(&parts, crate::resources::limit())?;
    let want =
        |p: &str| a.only.is_empty() || a.only.iter().any(|o| o.to_possible_value().is_some_and(|v| v.get_name() == p));
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
    if a.only.iter().any(|p| matches!(p, crate::cli::BenchPart::Models)) {
        rows.extend(models::bench_models(&ctx)?);
    }
    if a.only.iter().any(|p| matches!(p, crate::cli::BenchPart::ModelsJacobian)) {
        rows.extend(models::bench_models_jacobian(&ctx)?);
    }

    // Jacobian + eigenvalues at `--points` points, every backend × precision × mode, reps interleaved.
    let npts = a.points;
    let (x, eps, norm) = jacobian_points(npts);
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
    let set = match want("burst") {
        true => cloud.sample(sys.as_ref(), &sys.train_grid(), &mut StdRng::seed_from_u64(1))?,
        false => Default::default(),
    };
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
