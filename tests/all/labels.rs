use rand::SeedableRng;
use rand::rngs::StdRng;
use stiffx::plugins::cloud::CloudSampler;
use stiffx::plugins::labeller::{Burst, Direct, FiniteDifference, Labeller, TauMode};
use stiffx::plugins::sampler::{Sampler, TrajectorySampler};

fn setup() -> (Box<dyn stiffx::plugins::system::StiffSystem>, stiffx::plugins::sampler::SampleSet) {
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let c = CloudSampler {
        base: Box::new(TrajectorySampler { per_eps: 2, horizon: 2.0, dt: 0.05, ..Default::default() }),
        k: 2,
        ..Default::default()
    };
    let set = c.sample(sys.as_ref(), &[0.02, 0.05, 0.2], &mut StdRng::seed_from_u64(2)).unwrap();
    (sys, set)
}

fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn burst_error_shrinks_as_tau_squared() {
    let (sys, set) = setup();
    let exact = Direct {}.label(sys.as_ref(), &set).unwrap();
    let err = |tau: f64| {
        let b = Burst { tau, mode: TauMode::Fixed, rtol: 1e-12, atol: 1e-14, ..Burst::default() };
        max_rel_err(&b.label(sys.as_ref(), &set).unwrap(), &exact)
    };
    let (e1, e2) = (err(2e-3), err(1e-3));
    // Leading term (λτ)²/6 with λ = -1/0.02: 1.7e-3 at τ = 2e-3.
    assert!(e1 > 1e-4 && e1 < 3e-3, "e(2e-3) = {e1}");
    let ratio = e1 / e2;
    assert!((ratio - 4.0).abs() < 0.2, "halving tau divides the error by {ratio}, expected 4");
}

#[test]
fn paper_tau_bias_is_sinh_and_bias_control_removes_it() {
    let (sys, set) = setup();
    let exact = Direct {}.label(sys.as_ref(), &set).unwrap();
    // The fast component at eps = 0.02 with τ = 1e-2: relative bias sinh(λτ)/(λτ) - 1 with λτ = -0.5.
    let paper = Burst::default().label(sys.as_ref(), &set).unwrap();
    let expect = (0.5f64).sinh() / 0.5 - 1.0;
    let i = (0..set.len()).find(|&i| set.eps[i] == 0.02 && exact[2 * i + 1].abs() > 1.0).unwrap();
    let bias = paper[2 * i + 1] / exact[2 * i + 1] - 1.0;
    // z' = -(z - h(y))/eps is linear in z with rate -1/eps; the slow forcing adds a small O(eps) part.
    assert!((bias - expect).abs() < 0.1 * expect, "bias {bias} vs sinh prediction {expect}");
    for mode in [TauMode::Scaled, TauMode::Richardson] {
        let b = Burst { mode, ..Burst::default() };
        let e = max_rel_err(&b.label(sys.as_ref(), &set).unwrap(), &exact);
        assert!(e < 2e-3, "{mode:?}: max relative label error {e}");
    }
}

#[test]
fn finite_differences_need_trajectories() {
    let (sys, set) = setup();
    let err = FiniteDifference {}.label(sys.as_ref(), &set).unwrap_err().to_string();
    assert!(err.contains("finite-difference") && err.contains("burst"), "{err}");
    let traj = TrajectorySampler { per_eps: 2, horizon: 2.0, dt: 0.001, ..Default::default() }
        .sample(sys.as_ref(), &[0.3], &mut StdRng::seed_from_u64(1))
        .unwrap();
    let fd = FiniteDifference {}.label(sys.as_ref(), &traj).unwrap();
    let exact = Direct {}.label(sys.as_ref(), &traj).unwrap();
    assert!(max_rel_err(&fd, &exact) < 1e-4);
}

/// The three-point weights are exact for quadratics on any grid, and reduce to eq. 14 on a uniform one.
#[test]
fn finite_difference_weights_are_exact_for_quadratics_on_log_grids() {
    use stiffx::plugins::labeller::fd_weights;
    let times = stiffx::ode::output_times(stiffx::ode::Spacing::Log, 0.0, 10.0, 1e-3, 12);
    let f = |t: f64| 3.0 * t * t - 2.0 * t + 1.0;
    for j in 0..times.len() {
        let (first, w) = fd_weights(&times, j);
        let d: f64 = (0..3).map(|m| w[m] * f(times[first + m])).sum();
        let exact = 6.0 * times[j] - 2.0;
        assert!((d - exact).abs() < 1e-9 * (1.0 + exact.abs()), "j={j} {d} vs {exact}");
    }
    let (_, w) = fd_weights(&[0.0, 0.1, 0.2, 0.3], 2);
    assert!((w[0] + 5.0).abs() < 1e-12 && w[1].abs() < 1e-12 && (w[2] - 5.0).abs() < 1e-12, "{w:?}");
}
