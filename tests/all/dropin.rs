//! The drop-in promise as an executable check: a three-dimensional stiff system defined in this file
//! only, registered with `stiffx::register!`, named in a TOML config and run through the whole pipeline
//! (cloud sampling in its fast subspace, burst labels, training, Jacobian eigenvalues, rollouts,
//! metrics) without any other change to stiffx.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use stiffx::config::Config;
use stiffx::engine::pipeline::{RunOptions, run};
use stiffx::plugins::cloud::{CloudSampler, fast_subspace};
use stiffx::plugins::registry;
use stiffx::plugins::sampler::{Origin, Sampler, TrajectorySampler};
use stiffx::plugins::system::StiffSystem;

/// `a' = -a + b/2`, `b' = -2b + c²`, `c' = -(c - a/(1+a))/eps`: three time scales, the fastest ≈ −1/eps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ThreeScale {}

fn h(a: f64) -> f64 {
    a / (1.0 + a)
}

#[typetag::serde(name = "test-three-scale")]
impl StiffSystem for ThreeScale {
    fn dim(&self) -> usize {
        3
    }
    fn state_names(&self) -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }
    fn train_grid(&self) -> Vec<f64> {
        vec![0.05, 0.1, 0.2]
    }
    fn unseen_grid(&self) -> Vec<f64> {
        vec![0.075]
    }
    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        dx[0] = -x[0] + 0.5 * x[1];
        dx[1] = -2.0 * x[1] + x[2] * x[2];
        dx[2] = -(x[2] - h(x[0])) / eps;
    }
    // No `jacobian`: the trait's finite-difference default is used, and with it the default
    // reference eigenvalues.
    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        use rand::RngExt;
        let a = rng.random_range(0.5..=2.0);
        vec![a, rng.random_range(0.0..=1.0), h(a) + rng.random_range(0.2..=1.0)]
    }
    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        vec![vec![1.0, 0.5, 1.2], vec![1.8, 0.2, 0.9]]
    }
}

stiffx::register!(system, ThreeScale, "a 3-D system defined in a test file");

const CONFIG: &str = r#"
seed = 3
[system]
type = "test-three-scale"
[sampler]
type = "cloud"
k = 2
[sampler.base]
type = "trajectory"
per_eps = 2
horizon = 2.0
dt = 0.05
[labeller]
type = "burst"
mode = "scaled"
[transform]
type = "asinh"
[model]
hidden = 2
width = 16
[train]
epochs = 15
batch = 64
lr = 3e-3
[eval]
horizon = 1.0
"#;

#[test]
fn a_system_defined_in_a_test_runs_the_whole_pipeline() {
    assert!(registry::system_names().iter().any(|n| n == "test-three-scale"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let cfg = Config::from_file(&path).unwrap();
    assert_eq!(cfg.system.dim(), 3);
    let out = dir.path().join("run");
    let m = run(&cfg, &RunOptions { out: Some(out.clone()), ..RunOptions::default() }).unwrap();
    assert_eq!(m.eval.per_eps.len(), 3);
    for e in &m.eval.per_eps {
        assert!(e.rollout_l2.is_finite() && e.fast_abs.is_finite() && e.slow_abs.is_finite(), "{e:?}");
        assert!(e.points > 0);
    }
    // The reference spectrum came from the default finite-difference Jacobian: fastest ≈ −1/eps.
    let tr = stiffx::eval::evaluate::read_traces(&out.join("traces.csv"), 3).unwrap();
    for (p, ev) in tr.reference_eigs.iter().enumerate() {
        let eps = tr.eps[p / tr.times.len()];
        assert!((ev[0].re * eps + 1.0).abs() < 0.3, "eps {eps}: {ev:?}");
    }
    assert!(out.join("figures/trajectories.png").is_file());
}

#[test]
fn three_dimensional_cloud_pushes_along_the_fast_subspace() {
    let sys = registry::system("test-three-scale").unwrap();
    let base = TrajectorySampler { per_eps: 1, horizon: 1.0, dt: 0.1, ..Default::default() };
    let cloud = CloudSampler {
        base: Box::new(base.clone()),
        k: 3,
        sigma_t: 0.0,
        sigma_n: 0.1,
        r_off: 1.0,
        keep_base: false,
        ..Default::default()
    };
    let eps = 0.05;
    let set = cloud.sample(sys.as_ref(), &[eps], &mut StdRng::seed_from_u64(1)).unwrap();
    let b = base.sample(sys.as_ref(), &[eps], &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!(set.dim, 3);
    assert_eq!(set.len(), 3 * b.len());
    assert!(set.origin.iter().all(|o| matches!(o, Origin::Cloud { off: true, .. })));
    let mut moved = 0.0;
    for (i, chunk) in set.x.chunks(9).enumerate() {
        let x = b.state(i);
        let mut f = [0.0; 3];
        sys.rhs(x, eps, &mut f);
        let nf = f.iter().map(|v| v * v).sum::<f64>().sqrt();
        let t: Vec<f64> = f.iter().map(|v| v / nf).collect();
        let fast = &fast_subspace(&sys.jacobian(x, eps), 1, &t)[0];
        for p in chunk.chunks(3) {
            let dv: Vec<f64> = (0..3).map(|c| p[c] - x[c]).collect();
            let norm = dv.iter().map(|v| v * v).sum::<f64>().sqrt();
            let along_t: f64 = dv.iter().zip(&t).map(|(a, b)| a * b).sum();
            let along_fast: f64 = dv.iter().zip(fast).map(|(a, b)| a * b).sum();
            assert!(along_t.abs() < 1e-9 * norm.max(1.0), "normal offsets are orthogonal to the tangent");
            assert!((along_fast.abs() - norm).abs() < 1e-9 * norm.max(1.0), "and lie in the fast subspace");
            moved += norm;
        }
    }
    assert!(moved > 0.1);
}

#[test]
fn fast_subspace_finds_the_fast_eigenvector() {
    // J = V diag(-100, -10, -1) V⁻¹ with non-orthogonal eigenvectors.
    let v = DMatrix::from_row_slice(3, 3, &[1.0, 0.3, 0.1, 0.2, 1.0, 0.4, 0.5, 0.1, 1.0]);
    let j = &v
        * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![-100.0, -10.0, -1.0]))
        * v.clone().try_inverse().unwrap();
    let slow: Vec<f64> = {
        let c = v.column(2);
        let n = c.norm();
        c.iter().map(|x| x / n).collect()
    };
    let basis = fast_subspace(&j, 1, &slow);
    assert_eq!(basis.len(), 1);
    // Expected: the fast eigenvector with its component along t removed, normalised.
    let f = v.column(0).clone_owned();
    let dot: f64 = f.iter().zip(&slow).map(|(a, b)| a * b).sum();
    let mut e: Vec<f64> = f.iter().zip(&slow).map(|(a, b)| a - dot * b).collect();
    let n = e.iter().map(|x| x * x).sum::<f64>().sqrt();
    e.iter_mut().for_each(|x| *x /= n);
    let cos: f64 = basis[0].iter().zip(&e).map(|(a, b)| a * b).sum();
    assert!((cos.abs() - 1.0).abs() < 1e-10, "cos {cos}");
    // Two fast directions span the eigenvectors of -100 and -10 (minus t).
    assert_eq!(fast_subspace(&j, 2, &slow).len(), 2);
}

#[test]
fn sobol_placement_is_refused_for_a_system_that_cannot_place_from_a_unit_cube() {
    use stiffx::plugins::sampler::Placement;
    let sys = registry::system("test-three-scale").unwrap();
    let base =
        TrajectorySampler { per_eps: 2, horizon: 0.1, dt: 0.05, placement: Placement::Sobol, ..Default::default() };
    let e = base.sample(sys.as_ref(), &[0.1], &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
    assert!(e.contains("sampler.placement") && e.contains("random"), "{e}");
    // Inside a cloud, the field is named where it is written.
    let cloud = CloudSampler { base: Box::new(base), ..Default::default() };
    let e = cloud.sample(sys.as_ref(), &[0.1], &mut StdRng::seed_from_u64(1)).unwrap_err().to_string();
    assert!(e.contains("sampler.base.placement"), "{e}");
    // And already when the config is validated, before any work (`jobs` and `sweep` validate first).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, CONFIG.replace("dt = 0.05\n", "dt = 0.05\nplacement = \"sobol\"\n")).unwrap();
    let e = Config::from_file(&path).and_then(|c| c.validate()).unwrap_err().to_string();
    assert!(e.contains("sampler.base.placement") && e.contains("unit cube"), "{e}");
}
