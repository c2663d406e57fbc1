//! Criterion benchmarks of the hot paths: one training epoch of the default 4×128 MLP at batch 8192,
//! Jacobian + eigenvalues at 10,000 points (forward and reverse mode, f32 and f64), and burst labels.
//! `stiffx bench` reports the same figures as throughputs; this harness gives criterion's statistics.
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::DType;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use stiffx::backend::Backend;
use stiffx::eval::spectral::{JacobianMode, LearnedRhs, eigenvalues};
use stiffx::model::{Normalizer, Weights};
use stiffx::plugins::cloud::CloudSampler;
use stiffx::plugins::labeller::{Burst, Labeller, TauMode};
use stiffx::plugins::sampler::{Sampler, TrajectorySampler};
use stiffx::plugins::transform::Asinh;
use stiffx::train::config::TrainConfig;
use stiffx::train::{Dataset, Silent, train};

fn training(c: &mut Criterion) {
    let n = 8 * 8192;
    let (ds, val) = Dataset::synthetic(n, 3, 2, 7);
    let init = Weights::init(3, 4, 128, 2, 1);
    let backend = Backend::default_compiled().unwrap();
    let device = backend.device().unwrap();
    let mut group = c.benchmark_group("train");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(n as u64));
    for batch in [8192i64, 1024] {
        let cfg = TrainConfig { epochs: 1, batch, shards: backend.default_shards(), ..Default::default() };
        group.bench_function(format!("epoch_4x128_batch{batch}"), |b| {
            b.iter(|| black_box(train(&init, &ds, &val, &cfg, 1, &device, &mut Silent).unwrap()))
        });
    }
    group.finish();
}

fn jacobian(c: &mut Criterion) {
    let npts = 10_000;
    let x: Vec<f64> =
        (0..npts).flat_map(|i| [0.5 + 2.0 * (i as f64 / npts as f64), 0.3 + (i % 7) as f64 * 0.1]).collect();
    let eps: Vec<f64> = (0..npts).map(|i| [0.01, 0.05, 0.1][i % 3]).collect();
    let norm = Normalizer {
        mean: vec![1.5, 0.6, 0.1],
        std: vec![0.6, 0.4, 0.09],
        state_scale: Vec::new(),
        state_map: Default::default(),
    };
    let w = Weights::init(3, 4, 128, 2, 1);
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let mut group = c.benchmark_group("jacobian_eig_10k");
    group.sample_size(20).throughput(Throughput::Elements(npts as u64));
    for dtype in [DType::F32, DType::F64] {
        let rhs = LearnedRhs::new(
            &w,
            norm.clone(),
            Box::new(Asinh { scales: vec![0.5, 3.0], ..Default::default() }),
            2,
            device.clone(),
            dtype,
        )
        .unwrap();
        for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
            group.bench_function(format!("{mode:?}_{dtype:?}"), |b| {
                b.iter(|| black_box(eigenvalues(&rhs.jacobian(&x, &eps, mode), 2)))
            });
        }
    }
    group.finish();
}

fn burst(c: &mut Criterion) {
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let cloud = CloudSampler {
        base: Box::new(TrajectorySampler { per_eps: 1, horizon: 6.0, dt: 0.01, ..Default::default() }),
        k: 2,
        ..Default::default()
    };
    let set = cloud.sample(sys.as_ref(), &sys.train_grid(), &mut StdRng::seed_from_u64(1)).unwrap();
    let mut group = c.benchmark_group("burst_labels");
    group.sample_size(10).throughput(Throughput::Elements(set.len() as u64));
    for mode in [TauMode::Fixed, TauMode::Scaled, TauMode::Richardson] {
        let b = Burst { mode, ..Burst::default() };
        group.bench_function(format!("{mode:?}"), |bch| bch.iter(|| black_box(b.label(sys.as_ref(), &set).unwrap())));
    }
    group.finish();
}

criterion_group!(benches, training, jacobian, burst);
criterion_main!(benches);
