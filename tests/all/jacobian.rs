use burn::tensor::DType;
use stiffx::backend::Backend;
use stiffx::eval::spectral::{JacobianMode, LearnedField, LearnedRhs};
use stiffx::eval::stacked::Ensemble;
use stiffx::model::{Normalizer, Weights};
use stiffx::plugins::transform::{Asinh, Identity, TargetTransform};

fn points() -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..40).flat_map(|i| [0.5 + 0.05 * i as f64, 0.2 + 0.031 * ((i * 7) % 13) as f64]).collect();
    let eps: Vec<f64> = (0..40).map(|i| [0.01, 0.05, 0.2, 0.3][i % 4]).collect();
    (x, eps)
}

fn learned(transform: Box<dyn TargetTransform>, dtype: DType) -> LearnedRhs {
    let w = Weights::init(3, 3, 32, 2, 42);
    let norm = Normalizer {
        mean: vec![1.4, 0.6, 0.1],
        std: vec![0.6, 0.35, 0.09],
        state_scale: Vec::new(),
        state_map: Default::default(),
    };
    let device = Backend::default_compiled().unwrap().device().unwrap();
    LearnedRhs::new(&w, norm, transform, 2, device, dtype).unwrap()
}

/// Central differences of the learned *physical* RHS (inverse-transformed network output), in f64.
fn fd_jacobian(rhs: &LearnedRhs, x: &[f64], eps: &[f64]) -> Vec<f64> {
    let n = eps.len();
    let mut jac = vec![0.0; n * 4];
    for i in 0..2 {
        let h = 1e-5;
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        for j in 0..n {
            xp[2 * j + i] += h;
            xm[2 * j + i] -= h;
        }
        let (fp, fm) = (rhs.rhs(&xp, eps), rhs.rhs(&xm, eps));
        for j in 0..n {
            for k in 0..2 {
                jac[j * 4 + k * 2 + i] = (fp[2 * j + k] - fm[2 * j + k]) / (2.0 * h);
            }
        }
    }
    jac
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn autodiff_and_forward_mode_jacobians_match_finite_differences_f64() {
    let (x, eps) = points();
    for t in [
        Box::new(Identity {}) as Box<dyn TargetTransform>,
        Box::new(Asinh { scales: vec![0.3, 4.0], ..Default::default() }),
    ] {
        let rhs = learned(t, DType::F64);
        let fd = fd_jacobian(&rhs, &x, &eps);
        for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
            let j = rhs.jacobian(&x, &eps, mode);
            // f64 throughout: the FD error is O(h²) ≈ 1e-10; an f32-accurate SiLU would give ~1e-3.
            let e = max_rel(&j, &fd);
            assert!(e < 1e-7, "{mode:?} with {}: relative error {e}", rhs.transform.describe());
        }
    }
}

/// A batch large enough to be split over threads (2 on the CPU backends, `host_shards`) gives each
/// point the RHS and Jacobian that the same point gets in a small batch on the calling thread, to
/// rounding (a matrix product's kernel may differ with the batch's row count), and the same numbers
/// again on a second call (the split is fixed, not the machine's).
#[test]
fn sharded_evaluation_of_a_large_batch_matches_small_batches() {
    let backend = Backend::default_compiled().unwrap();
    let shards = stiffx::backend::host_shards(&backend.device().unwrap());
    println!("{backend}: {shards} shards");
    // The device is recognised: a CPU backend's split is its training default (2), not 1.
    assert_eq!(shards, backend.default_shards() as usize, "{backend}");
    let rhs = learned(Box::new(Asinh { scales: vec![0.3, 4.0], ..Default::default() }), DType::F64);
    let n = 5000;
    let x: Vec<f64> =
        (0..n).flat_map(|i| [0.5 + 2.0 * (i as f64 / n as f64), 0.2 + 0.031 * ((i * 7) % 13) as f64]).collect();
    let eps: Vec<f64> = (0..n).map(|i| [0.01, 0.05, 0.2, 0.3][i % 4]).collect();
    for mode in [JacobianMode::Forward, JacobianMode::Reverse] {
        let (f, j) = (rhs.rhs(&x, &eps), rhs.jacobian(&x, &eps, mode));
        assert_eq!(f.len(), 2 * n);
        assert_eq!(j.len(), 4 * n);
        // Points from the start, the middle (each side of the 2-shard split) and the end.
        for p in [0, 1, n / 2 - 1, n / 2, n / 2 + 1, n - 1] {
            let (xp, ep) = (&x[2 * p..2 * p + 2], &eps[p..p + 1]);
            let (fp, jp) = (rhs.rhs(xp, ep), rhs.jacobian(xp, ep, mode));
            assert!(max_rel(&f[2 * p..2 * p + 2], &fp) < 1e-13, "{mode:?} rhs at point {p}");
            assert!(max_rel(&j[4 * p..4 * p + 4], &jp) < 1e-13, "{mode:?} jacobian at point {p}");
        }
        assert_eq!(rhs.jacobian(&x, &eps, mode), j, "{mode:?}: a second call differs");
    }
}

#[test]
fn forward_and_reverse_agree_in_f32() {
    let (x, eps) = points();
    let rhs = learned(Box::new(Asinh { scales: vec![0.3, 4.0], ..Default::default() }), DType::F32);
    let a = rhs.jacobian(&x, &eps, JacobianMode::Reverse);
    let b = rhs.jacobian(&x, &eps, JacobianMode::Forward);
    assert!(max_rel(&a, &b) < 1e-5, "{}", max_rel(&a, &b));
    let c = learned(Box::new(Asinh { scales: vec![0.3, 4.0], ..Default::default() }), DType::F64).jacobian(
        &x,
        &eps,
        JacobianMode::Forward,
    );
    assert!(max_rel(&b, &c) < 1e-4, "f32 vs f64 {}", max_rel(&b, &c));
}

#[test]
fn rk4_rollout_of_a_linear_field_is_exact_to_fifth_order() {
    // With identity weights the network is affine, so RK4 on it must match the matrix exponential
    // to O(dt^4) globally; check convergence order between dt and dt/2.
    let w = Weights {
        layers: vec![stiffx::model::LayerWeights {
            d_in: 3,
            d_out: 2,
            w: vec![-1.0, 0.5, 0.0, -2.0, 0.0, 0.0],
            b: vec![0.0, 0.0],
        }],
        activation: Default::default(),
        mass_action: false,
    };
    let norm =
        Normalizer { mean: vec![0.0; 3], std: vec![1.0; 3], state_scale: Vec::new(), state_map: Default::default() };
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let rhs = LearnedRhs::new(&w, norm, Box::new(Identity {}), 2, device, DType::F64).unwrap();
    // F(x) = A x with A = [[-1, 0], [0.5, -2]] (w is d_in × d_out: F_k = Σ_i x_i w[i][k]).
    let exact_y = (-1.0f64).exp();
    let exact_z = 0.5 * ((-1.0f64).exp() - (-2.0f64).exp());
    let err = |steps: usize| {
        let out = rhs.rollout_rk4(&[1.0, 0.0], &[0.1], 1.0 / steps as f64, steps);
        let last = &out[out.len() - 2..];
        (last[0] - exact_y).abs().max((last[1] - exact_z).abs())
    };
    let (e1, e2) = (err(10), err(20));
    assert!(e1 < 1e-5 && (e1 / e2) > 12.0, "errors {e1} {e2}");
}

#[test]
fn bdf_rollout_of_a_stiff_learned_linear_field_matches_the_exact_solution() {
    // F(x) = A x with A = [[-1, 0], [0.5, -1000]]: RK4 at dt = 0.01 is unstable (|λ|·dt = 10 > 2.78),
    // BDF with the learned Jacobian is not.
    let w = Weights {
        layers: vec![stiffx::model::LayerWeights {
            d_in: 3,
            d_out: 2,
            w: vec![-1.0, 0.5, 0.0, -1000.0, 0.0, 0.0],
            b: vec![0.0, 0.0],
        }],
        activation: Default::default(),
        mass_action: false,
    };
    let norm =
        Normalizer { mean: vec![0.0; 3], std: vec![1.0; 3], state_scale: Vec::new(), state_map: Default::default() };
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let rhs = LearnedRhs::new(&w, norm, Box::new(Identity {}), 2, device, DType::F64).unwrap();
    let times: Vec<f64> = (0..=100).map(|i| i as f64 * 0.01).collect();
    let out = rhs.rollout_bdf(&[1.0, 0.0], &[0.001], &times, 1e-8, 1e-11);
    for (i, &t) in times.iter().enumerate() {
        // z(t) = 0.5/999 (e^{-t} - e^{-1000 t}).
        let (y, z) = ((-t).exp(), 0.5 / 999.0 * ((-t).exp() - (-1000.0 * t).exp()));
        assert!(
            (out[2 * i] - y).abs() < 1e-6 && (out[2 * i + 1] - z).abs() < 1e-6,
            "t={t}: {:?}",
            &out[2 * i..2 * i + 2]
        );
    }
    let rk4 = rhs.rollout_rk4(&[1.0, 0.0], &[0.001], 0.01, 100);
    assert!(!rk4[rk4.len() - 1].is_finite() || rk4[rk4.len() - 1].abs() > 1e3, "RK4 is unstable here");
}

/// The `asinh` state input (its slope enters the chain rule) and the projection onto a linear
/// invariant (`F ← P F`, `J ← P J`): both Jacobian modes still equal finite differences of the learned
/// physical RHS, and the invariant holds exactly: `wᵀF = 0`, `wᵀJ = 0`.
#[test]
fn asinh_state_input_and_invariant_projection_keep_the_jacobian_exact() {
    let (x, eps) = points();
    let w = Weights::init(3, 3, 32, 2, 7);
    let norm = Normalizer {
        mean: vec![2.0, 1.5, 0.1],
        std: vec![0.8, 0.7, 0.09],
        state_scale: vec![0.05, 0.01],
        state_map: Default::default(),
    };
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let t = Box::new(Asinh { scales: vec![0.3, 4.0], ..Default::default() });
    let plain = LearnedRhs::new(&w, norm.clone(), t.clone(), 2, device.clone(), DType::F64).unwrap();
    let f_plain = plain.rhs(&x, &eps);
    // Oblique: component 1 is solved from the invariant, component 0 stays as learned.
    let oblique = LearnedRhs::new(&w, norm.clone(), t.clone(), 2, device.clone(), DType::F64)
        .unwrap()
        .with_invariants(vec![vec![1.0, 2.0]], &[1])
        .unwrap();
    let f_ob = oblique.rhs(&x, &eps);
    for (a, b) in f_ob.chunks(2).zip(f_plain.chunks(2)) {
        assert!((a[0] - b[0]).abs() < 1e-15 && (a[1] + 0.5 * a[0]).abs() < 1e-15, "{a:?} {b:?}");
    }
    let fd_ob = fd_jacobian(&oblique, &x, &eps);
    assert!(max_rel(&oblique.jacobian(&x, &eps, JacobianMode::Forward), &fd_ob) < 1e-7);
    assert!(
        LearnedRhs::new(&w, norm.clone(), t.clone(), 2, device.clone(), DType::F64)
            .unwrap()
            .with_invariants(vec![vec![1.0, 2.0]], &[0, 1])
            .is_err()
    );
    let rhs = LearnedRhs::new(&w, norm, t, 2, device, DType::F64)
        .unwrap()
        .with_invariants(vec![vec![1.0, 2.0]], &[])
        .unwrap();
    let fd = fd_jacobian(&rhs, &x, &eps);
    for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
        let j = rhs.jacobian(&x, &eps, mode);
        let e = max_rel(&j, &fd);
        assert!(e < 1e-7, "{mode:?}: relative error {e}");
        for b in j.chunks(4) {
            // Rows of J weighted by w = (1, 2) cancel column by column.
            assert!((b[0] + 2.0 * b[2]).abs() < 1e-12 && (b[1] + 2.0 * b[3]).abs() < 1e-12, "{b:?}");
        }
    }
    let f = rhs.rhs(&x, &eps);
    assert!(f.chunks(2).all(|v| (v[0] + 2.0 * v[1]).abs() < 1e-12));
    assert!(f.iter().any(|v| v.abs() > 1e-3), "the projection leaves a nonzero field");
}

/// `F(x) = A x` as a one-layer network (`a` row-major 2 × 2).
fn linear(a: [f64; 4]) -> LearnedRhs {
    // w is d_in × d_out: F_k = Σ_i x_i w[i][k], so w = Aᵀ (plus a zero eps row).
    let w = Weights {
        layers: vec![stiffx::model::LayerWeights {
            d_in: 3,
            d_out: 2,
            w: vec![a[0], a[2], a[1], a[3], 0.0, 0.0],
            b: vec![0.0, 0.0],
        }],
        activation: Default::default(),
        mass_action: false,
    };
    let norm =
        Normalizer { mean: vec![0.0; 3], std: vec![1.0; 3], state_scale: Vec::new(), state_map: Default::default() };
    let device = Backend::default_compiled().unwrap().device().unwrap();
    LearnedRhs::new(&w, norm, Box::new(Identity {}), 2, device, DType::F64).unwrap()
}

#[test]
fn an_ensemble_is_the_mean_field_with_the_mean_jacobian_and_rolls_out_stiffly() {
    // Members A1 = [[-1, 0], [0.5, -1000]], A2 = [[-1, 0], [1.5, -3000]]: the mean is
    // [[-1, 0], [1, -2000]], whose solution from (1, 0) is y = e^{-t}, z = (e^{-t} - e^{-2000 t}) / 1999.
    let ens = Ensemble::new(vec![linear([-1.0, 0.0, 0.5, -1000.0]), linear([-1.0, 0.0, 1.5, -3000.0])]).unwrap();
    assert_eq!(LearnedField::dim(&ens), 2);
    let (x, eps) = points();
    let j = LearnedField::jacobian(&ens, &x, &eps, JacobianMode::Forward);
    for block in j.chunks(4) {
        for (got, want) in block.iter().zip([-1.0, 0.0, 1.0, -2000.0]) {
            assert!((got - want).abs() < 1e-9, "{block:?}");
        }
    }
    let f = LearnedField::rhs(&ens, &x, &eps);
    for (p, v) in x.chunks(2).zip(f.chunks(2)) {
        assert!((v[0] + p[0]).abs() < 1e-12 && (v[1] - (p[0] - 2000.0 * p[1])).abs() < 1e-9, "{p:?} {v:?}");
    }
    // Each member's Jacobian is its own, not the mean.
    let members = ens.member_jacobians(&x[..2], &eps[..1], JacobianMode::Reverse);
    assert!((members[0][3] + 1000.0).abs() < 1e-9 && (members[1][3] + 3000.0).abs() < 1e-9, "{members:?}");
    let times: Vec<f64> = (0..=50).map(|i| i as f64 * 0.02).collect();
    let out = ens.rollout_bdf(&[1.0, 0.0], &[0.001], &times, 1e-8, 1e-11);
    for (i, &t) in times.iter().enumerate() {
        let (y, z) = ((-t).exp(), ((-t).exp() - (-2000.0 * t).exp()) / 1999.0);
        assert!(
            (out[2 * i] - y).abs() < 1e-6 && (out[2 * i + 1] - z).abs() < 1e-6,
            "t={t}: {:?}",
            &out[2 * i..2 * i + 2]
        );
    }
    let err = Ensemble::new(Vec::new()).unwrap_err().to_string();
    assert!(err.contains("ensemble") && err.contains("at least one"), "{err}");
}

/// The `exp` activation and the `log` state input (their derivatives enter the forward-mode tangents
/// and the chain rule): both Jacobian modes equal finite differences of the learned physical RHS.
#[test]
fn exp_activation_and_log_state_input_keep_the_jacobian_exact() {
    let (x, eps) = points();
    let w = Weights::init(3, 1, 8, 2, 5).with_activation(stiffx::model::Activation::Exp).with_mass_action();
    let norm = Normalizer {
        mean: vec![0.5, -0.8, 0.1],
        std: vec![0.7, 1.1, 0.09],
        state_scale: vec![1e-3, 0.05],
        state_map: stiffx::model::StateMap::Log,
    };
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let rhs = LearnedRhs::new(&w, norm, Box::new(Identity {}), 2, device, DType::F64).unwrap();
    let fd = fd_jacobian(&rhs, &x, &eps);
    for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
        let e = max_rel(&rhs.jacobian(&x, &eps, mode), &fd);
        assert!(e < 1e-7, "{mode:?}: relative error {e}");
    }
    // The orders (state rows of the first layer) were projected onto ≥ 0; the eps row was not.
    let l = &w.layers[0];
    assert!(l.w[..2 * 8].iter().all(|v| *v >= 0.0) && l.w[..2 * 8].iter().any(|v| *v > 0.0));
    assert!(l.w[2 * 8..].iter().any(|v| *v < 0.0));
}

/// A chemical reaction neural network (`exp` activation, `log` state and eps inputs, one hidden layer)
/// holding Robertson's mechanism by hand, `r = (k1 y1, k2/eps y2², k3/eps y2 y3)`, `F = S r`: the
/// model class contains the system exactly, so its RHS and Jacobian (hence every eigenvalue) equal
/// the exact ones, at the initial states too, where `y2 = y3 = 0` and `asinh` inputs get the rate
/// `k3 y2 y3`'s slope wrong by a factor 2.
#[test]
fn a_reaction_network_holds_robertsons_mechanism_exactly() {
    let sys = stiffx::plugins::registry::system("robertson").unwrap();
    // Layer 0 (d_in × d_out = inputs × reactions): the reaction orders, the last row eps's exponent.
    let orders = [[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 1.0], [0.0, -1.0, -1.0]];
    // Layer 1 (reactions × species): the stoichiometry of each reaction.
    let stoich = [[-1.0, 1.0, 0.0], [0.0, -1.0, 1.0], [1.0, -1.0, 0.0]];
    let w = Weights {
        layers: vec![
            stiffx::model::LayerWeights {
                d_in: 4,
                d_out: 3,
                w: orders.concat(),
                b: vec![0.04f64.ln(), 3e7f64.ln(), 1e4f64.ln()],
            },
            stiffx::model::LayerWeights { d_in: 3, d_out: 3, w: stoich.concat(), b: vec![0.0; 3] },
        ],
        activation: stiffx::model::Activation::Exp,
        mass_action: true,
    };
    let norm = Normalizer {
        mean: vec![0.0; 4],
        std: vec![1.0; 4],
        state_scale: vec![1e-30; 3],
        state_map: stiffx::model::StateMap::Log,
    };
    // Read back as reactions: Robertson's rate constants, orders, eps exponents and stoichiometry.
    let r = w.reactions(&norm).expect("a mass-action network");
    for (j, k) in [0.04, 3e7, 1e4].iter().enumerate() {
        assert!((r[j].rate_constant / k - 1.0).abs() < 1e-14, "{:?}", r[j]);
        assert_eq!(r[j].orders, orders[..3].iter().map(|o| o[j]).collect::<Vec<_>>());
        assert_eq!((r[j].eps_exponent, &r[j].stoichiometry), (orders[3][j], &stoich[j].to_vec()));
    }
    assert!(Weights { activation: stiffx::model::Activation::Silu, ..w.clone() }.reactions(&norm).is_none());
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let rhs = LearnedRhs::new(&w, norm, Box::new(Identity {}), 3, device, DType::F64)
        .unwrap()
        .with_eps_input(stiffx::model::config::EpsInput::Log);
    let states = [[1.0, 0.0, 0.0], [0.7, 0.0, 0.3], [0.99996, 3.6e-5, 4e-6], [0.7, 2.6e-7, 0.3], [0.02, 8e-11, 0.98]];
    for eps in [0.25, 1.0, 4.0] {
        let x: Vec<f64> = states.concat();
        let e = vec![eps; states.len()];
        let f = rhs.rhs(&x, &e);
        for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
            let jac = rhs.jacobian(&x, &e, mode);
            for (p, s) in states.iter().enumerate() {
                let mut exact = [0.0; 3];
                sys.rhs(s, eps, &mut exact);
                for k in 0..3 {
                    let (a, b) = (f[p * 3 + k], exact[k]);
                    assert!((a - b).abs() <= 1e-12 * b.abs() + 1e-30, "F_{k} at {s:?}, eps {eps}: {a} vs {b}");
                }
                let j = sys.jacobian(s, eps);
                let scale = j.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for k in 0..3 {
                    for i in 0..3 {
                        let (a, b) = (jac[p * 9 + k * 3 + i], j[(k, i)]);
                        assert!(
                            (a - b).abs() <= 1e-12 * b.abs() + 1e-14 * scale,
                            "{mode:?}: J_{k}{i} at {s:?}, eps {eps}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
