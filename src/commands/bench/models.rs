//! `stiffx bench --only models`: M networks trained together ([`crate::train::many`]) against one
//! alone, aggregate samples/s; and M networks' Jacobians + eigenvalues in one stacked pass
//! ([`crate::eval::stacked`]) against one by one, aggregate points/s; repetitions interleaved.

use std::time::Instant;

use super::{Bench, BenchRow, interleaved, jacobian_points};
use crate::backend::Precision;
use crate::error::Result;
use crate::eval::spectral::{JacobianMode, LearnedRhs, eigenvalues};
use crate::eval::stacked::{jacobians, stack};
use crate::model::Weights;
use crate::plugins::transform::Identity;
use crate::train::config::TrainConfig;
use crate::train::many::{Member, train_many};
use crate::train::{Dataset, Silent, TrainObserver, train};

/// Many networks trained together ([`crate::train::many`]): for every `--batch`, `--shards` and
/// `--models` M, one epoch (10 batches of each member's own data) of M stacked 4×128 networks,
/// aggregate samples/s (M × 10 × batch over the epoch's seconds), and one network trained alone
/// beside them (what M runs one by one reach together), repetitions interleaved. Measured only when
/// asked for (`--only models`): at M = 48 and batch 8192 an epoch holds 4M rows.
pub(super) fn bench_models(ctx: &Bench) -> Result<Vec<BenchRow>> {
    let Bench { args: a, backends, devices, init, reps } = *ctx;
    let most = a.models.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    for (b, device) in devices.iter().enumerate() {
        for &batch in &a.batch {
            let data: Vec<(Dataset, Dataset)> =
                (0..most).map(|m| Dataset::synthetic(10 * batch, 3, 2, 7 + m as u64)).collect();
            let inits: Vec<Weights> = (0..most).map(|m| Weights::init(3, 4, 128, 2, 1 + m as u64)).collect();
            for &shards in &a.shards {
                let cfg = TrainConfig { epochs: 1, batch: batch as i64, shards, ..Default::default() };
                let once = |m: usize| -> Result<f64> {
                    if m == 0 {
                        return Ok(train(init, &data[0].0, &data[0].1, &cfg, 1, device, &mut Silent)?.samples_per_sec);
                    }
                    let members: Vec<Member> = (0..m)
                        .map(|i| Member {
                            init: &inits[i],
                            train: &data[i].0,
                            val: &data[i].1,
                            seed: i as u64,
                            resume: None,
                        })
                        .collect();
                    let mut silents: Vec<Silent> = (0..m).map(|_| Silent).collect();
                    let mut obs: Vec<&mut dyn TrainObserver> =
                        silents.iter_mut().map(|s| s as &mut dyn TrainObserver).collect();
                    let trained = train_many(&members, &cfg, device, &mut obs)?;
                    let mut total = 0.0;
                    for t in trained {
                        total += t?.samples_per_sec;
                    }
                    Ok(total)
                };
                // 0: one network alone (the one-by-one rate); then each M together.
                let ms: Vec<usize> = std::iter::once(0).chain(a.models.iter().copied()).collect();
                let s = interleaved(ms.len(), reps, "models", |i, _| once(ms[i]))?;
                for (m, s) in ms.into_iter().zip(s) {
                    let what = match m {
                        0 => format!("models 1 x 4x128 batch {batch}, {shards} shard(s), alone ({})", backends[b]),
                        m => format!("models {m} x 4x128 batch {batch}, {shards} shard(s), together ({})", backends[b]),
                    };
                    rows.push(BenchRow::new(what, "samples/s", s));
                }
            }
        }
    }
    Ok(rows)
}

/// Many networks' Jacobians + eigenvalues ([`crate::eval::stacked`]): for every `--models` M and
/// precision, the forward-mode Jacobians of M different 4×128 networks at `--points` points and their
/// eigenvalues, in one stacked pass and one network after another, aggregate points/s (M × points over
/// the seconds), repetitions interleaved.
pub(super) fn bench_models_jacobian(ctx: &Bench) -> Result<Vec<BenchRow>> {
    let Bench { args: a, backends, devices, reps, .. } = *ctx;
    let (x, eps, norm) = jacobian_points(a.points);
    let most = a.models.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    for (b, device) in devices.iter().enumerate() {
        for precision in [Precision::F32, Precision::F64] {
            if precision == Precision::F64 && !backends[b].supports_f64() {
                continue;
            }
            let nets: Vec<LearnedRhs> = (0..most)
                .map(|m| {
                    let w = Weights::init(3, 4, 128, 2, 1 + m as u64);
                    LearnedRhs::new(&w, norm.clone(), Box::new(Identity {}), 2, device.clone(), precision.dtype())
                })
                .collect::<Result<_>>()?;
            // (M, stacked): the stacked networks are built once, as a group's or an ensemble's are.
            let cases: Vec<(usize, bool)> = a
                .models
                .iter()
                .flat_map(|&m| [(m, true), (m, false)])
                .filter(|&(m, stacked)| m > 1 || !stacked)
                .collect();
            let stacks: Vec<_> =
                cases.iter().map(|&(m, stacked)| if stacked { stack(&nets[..m]) } else { None }).collect();
            let s = interleaved(cases.len(), reps, "models jacobian", |i, _| {
                let (m, net) = (cases[i].0, stacks[i].as_ref());
                let t = Instant::now();
                for j in jacobians(&nets[..m], net, &x, &eps, JacobianMode::Forward) {
                    std::hint::black_box(eigenvalues(&j, 2));
                }
                Ok((m * a.points) as f64 / t.elapsed().as_secs_f64())
            })?;
            for ((m, stacked), s) in cases.into_iter().zip(s) {
                let how = if stacked { "stacked" } else { "one by one" };
                rows.push(BenchRow::new(
                    format!(
                        "models {m} x 4x128 jacobian+eig {} points Forward {precision:?}, {how} ({})",
                        a.points, backends[b]
                    ),
                    "points/s",
                    s,
                ));
            }
        }
    }
    Ok(rows)
}
