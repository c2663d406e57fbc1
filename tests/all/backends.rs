//! Backend parity: every compiled backend (flex by default; ndarray, wgpu, tch with their features)
//! computes the same network outputs and Jacobians as an independent f64 host implementation of the
//! MLP, and a short training run reaches the same metrics on each. Run the non-default backends with
//! `cargo test --features wgpu backends` (wgpu needs a Vulkan driver; lavapipe works, see README) or
//! `bash .ci/backends`.
//!
//! Tolerances: f32 evaluation 2e-4 relative (single-precision GEMMs of width 128, accumulated over 5
//! layers); f64 evaluation 1e-9 (where the backend supports f64).

use stiffx::backend::{Backend, Precision};
use stiffx::eval::spectral::{JacobianMode, LearnedRhs};
use stiffx::model::{Normalizer, Weights};
use stiffx::plugins::transform::Identity;

/// The MLP on the host in f64: standardised inputs, SiLU hidden layers, linear output.
fn host_forward(w: &Weights, norm: &Normalizer, x: &[f64]) -> Vec<f64> {
    let mut h: Vec<f64> = x.iter().enumerate().map(|(i, v)| (v - norm.mean[i]) / norm.std[i]).collect();
    for (l, layer) in w.layers.iter().enumerate() {
        let mut o: Vec<f64> = layer.b.clone();
        for (i, hi) in h.iter().enumerate() {
            for (k, ok) in o.iter_mut().enumerate() {
                *ok += hi * layer.w[i * layer.d_out + k];
            }
        }
        if l + 1 < w.layers.len() {
            o.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp());
        }
        h = o;
    }
    h
}

fn points() -> (Vec<f64>, Vec<f64>) {
    let n = 64;
    let x = (0..n).flat_map(|i| [0.5 + 2.0 * i as f64 / n as f64, 0.2 + 0.013 * (i % 11) as f64]).collect();
    let eps = (0..n).map(|i| [0.01, 0.05, 0.2][i % 3]).collect();
    (x, eps)
}

fn backends() -> Vec<Backend> {
    // GPU-only devices need their hardware; opt in with STIFFX_TEST_GPU=1 (CUDA devices everywhere but
    // macOS, libtorch's MPS on macOS).
    let gpu = std::env::var("STIFFX_TEST_GPU").is_ok();
    let mac = cfg!(target_os = "macos");
    Backend::compiled()
        .into_iter()
        .filter(|b| match b {
            Backend::TchCuda => gpu && !mac,
            Backend::TchMps => gpu && mac,
            _ => true,
        })
        .collect()
}

#[test]
fn every_backend_matches_the_host_network_and_its_jacobian() {
    let w = Weights::init(3, 4, 128, 2, 7);
    let norm = Normalizer {
        mean: vec![1.5, 0.4, 0.1],
        std: vec![0.6, 0.3, 0.08],
        state_scale: Vec::new(),
        state_map: Default::default(),
    };
    let (x, eps) = points();
    let host: Vec<f64> =
        (0..eps.len()).flat_map(|j| host_forward(&w, &norm, &[x[2 * j], x[2 * j + 1], eps[j]])).collect();
    // Host Jacobian by central differences of the f64 host network (error ~1e-10).
    let h = 1e-6;
    let host_jac: Vec<f64> = (0..eps.len())
        .flat_map(|j| {
            let mut jac = vec![0.0; 4];
            for c in 0..2 {
                let mut p = [x[2 * j], x[2 * j + 1], eps[j]];
                let mut m = p;
                p[c] += h;
                m[c] -= h;
                let (fp, fm) = (host_forward(&w, &norm, &p), host_forward(&w, &norm, &m));
                for r in 0..2 {
                    jac[r * 2 + c] = (fp[r] - fm[r]) / (2.0 * h);
                }
            }
            jac
        })
        .collect();
    let rel = |a: &[f64], b: &[f64]| {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f64, |m, (p, q)| m.max((p - q).abs())) / scale
    };
    for backend in backends() {
        let device = backend.device().unwrap();
        for (precision, tol_f, tol_j) in [(Precision::F32, 2e-4, 2e-4), (Precision::F64, 1e-9, 1e-7)] {
            if precision == Precision::F64 && !backend.supports_f64() {
                eprintln!("{backend}: no f64 (WGSL); f64 evaluations run in f32 there");
                continue;
            }
            let rhs =
                match LearnedRhs::new(&w, norm.clone(), Box::new(Identity {}), 2, device.clone(), precision.dtype()) {
                    Ok(r) => r,
                    Err(e) if precision == Precision::F64 => {
                        eprintln!("{backend}: no f64 ({e})");
                        continue;
                    }
                    Err(e) => panic!("{backend}: {e}"),
                };
            let out = rhs.rhs(&x, &eps);
            let e_out = rel(&out, &host);
            assert!(e_out < tol_f, "{backend} {precision:?}: outputs differ from the host by {e_out:e}");
            for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
                let j = rhs.jacobian(&x, &eps, mode);
                let e_j = rel(&j, &host_jac);
                assert!(e_j < tol_j, "{backend} {precision:?} {mode:?}: Jacobian differs by {e_j:e}");
            }
            eprintln!("{backend} {precision:?}: outputs {e_out:.1e}, Jacobians ok");
        }
    }
}

#[test]
fn a_short_training_run_reaches_the_same_metrics_on_every_backend() {
    let cfg = crate::tiny_config();
    let mut results = Vec::new();
    for backend in backends() {
        let eval_precision = if backend.supports_f64() { Precision::F64 } else { Precision::F32 };
        let opts =
            stiffx::engine::pipeline::RunOptions { backend, eval_precision, figures: false, ..Default::default() };
        let t = std::time::Instant::now();
        let m = stiffx::engine::pipeline::run(&cfg, &opts).unwrap();
        eprintln!(
            "{backend}: best val loss {:.5e}, grid-mean fast rel {:.5e} ({:.1} s)",
            m.best_val_loss,
            m.eval.grid_mean.fast_rel,
            t.elapsed().as_secs_f64()
        );
        results.push((backend, m.best_val_loss, m.eval.grid_mean.fast_rel));
    }
    let (_, v0, f0) = results[0];
    for &(b, v, f) in &results[1..] {
        // Same data, same initial weights, same batches: f32 rounding differences only, amplified
        // over 30 epochs of Adam; the metrics must agree to a few per cent.
        assert!((v - v0).abs() <= 0.05 * v0, "{b}: val loss {v} vs {v0}");
        assert!((f - f0).abs() <= 0.05 * f0.max(1e-3), "{b}: fast rel {f} vs {f0}");
    }
}

#[test]
fn a_gpu_backend_either_starts_or_says_why_without_panicking() {
    // Every compiled GPU backend, whatever the machine: a missing runtime (no driver, no adapter, no
    // CUDA in libtorch) must come back as an error naming the backend, never as a panic.
    for backend in Backend::compiled().into_iter().filter(|b| b.is_gpu()) {
        match backend.device() {
            Ok(_) => eprintln!("{backend}: starts"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("backend `{backend}`")) && msg.contains("cannot start"), "{msg}");
                eprintln!("{backend}: {msg}");
            }
        }
    }
}
