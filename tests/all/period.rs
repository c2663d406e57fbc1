//! The oscillation-period metric (`metrics::period_rel`) on a real oscillator: Van der Pol at μ = 1,
//! whose limit-cycle period is published, rollouts whose period is off by a known fraction, and its
//! wiring into the evaluation (`pipeline::evaluate_field`) with the exact field standing in for a
//! learned one.

use stiffx::eval::metrics::{oscillation_period, period_rel, upward_crossings};

/// From (2, 0) over t = 0 … 40 sampled every 0.01 (RK4's grid in `stiffx run`), the crossing-based
/// period of the reference is Hairer–Nørsett–Wanner's T = 6.6632868593 (μ = 1) to 1e-4; a "learned"
/// rollout that is the same trajectory slowed by 1 % (`x(t/1.01)`) has `period_rel` = 0.01, one that is
/// exact has 0, and one that relaxes to a point has an infinite error.
#[test]
fn period_rel_measures_the_published_van_der_pol_period() {
    let sys = stiffx::plugins::registry::system("van-der-pol").unwrap();
    let times: Vec<f64> = (0..=4000).map(|j| j as f64 * 0.01).collect();
    let solve = |ts: &[f64]| stiffx::ode::solve_at(sys.as_ref(), 1.0, &[2.0, 0.0], ts, 1e-11, 1e-13, false).unwrap();
    let reference = solve(&times);
    let (lo, hi) =
        reference.iter().step_by(2).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let c = upward_crossings(&reference, &times, 2, 0, 0.5 * (lo + hi), 0.1 * (hi - lo));
    assert_eq!(c.len(), 6, "{c:?}");
    let t = oscillation_period(&c).unwrap();
    assert!((t - 6.663_286_859_3).abs() < 1e-4, "period {t}");

    let stretched: Vec<f64> = times.iter().map(|t| t / 1.01).collect();
    let slow = solve(&stretched);
    let r = period_rel(&slow, &reference, &times, 2).unwrap();
    assert!((r - 0.01).abs() < 2e-4, "period_rel {r}");
    assert!(period_rel(&reference, &reference, &times, 2).unwrap() < 1e-12);
    let relaxed: Vec<f64> = times.iter().flat_map(|_| [0.0, 0.0]).collect();
    assert!(period_rel(&relaxed, &reference, &times, 2).unwrap().is_infinite());
}

/// The exact Van der Pol field, its time running `1/slow` times slower (`slow = 1`: exact): a stand-in
/// for a learned field whose period is off by a known factor.
struct Exact {
    sys: Box<dyn stiffx::plugins::system::StiffSystem>,
    slow: f64,
}

impl stiffx::eval::spectral::LearnedField for Exact {
    fn dim(&self) -> usize {
        self.sys.dim()
    }
    fn rhs(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        let d = self.dim();
        let mut out = vec![0.0; x.len()];
        for (i, (xi, oi)) in x.chunks(d).zip(out.chunks_mut(d)).enumerate() {
            self.sys.rhs(xi, eps[i], oi);
            oi.iter_mut().for_each(|v| *v /= self.slow);
        }
        out
    }
    fn jacobian(&self, x: &[f64], eps: &[f64], _mode: stiffx::eval::spectral::JacobianMode) -> Vec<f64> {
        let d = self.dim();
        x.chunks(d)
            .zip(eps)
            .flat_map(|(xi, &e)| {
                let j = self.sys.jacobian(xi, e) / self.slow;
                (0..d * d).map(move |k| j[(k / d, k % d)])
            })
            .collect()
    }
}

/// `evaluate_field` wires the metric to each test trajectory: the exact field's RK4 rollouts over
/// t = 0…20 have the reference's period (error ~ RK4's, < 1e-4), a field 2 % slower has
/// `period_rel` ≈ 0.02 at every eps, and a relaxing system (Davis–Skodje) has none.
#[test]
fn evaluation_reports_the_period_of_each_oscillating_rollout() {
    let toml = |system: &str, eps: &str| {
        format!(
            "[system]\ntype = \"{system}\"\ntrain_eps = {eps}\n[sampler]\ntype = \"trajectory\"\n[labeller]\ntype = \"direct\"\n\
             [transform]\ntype = \"identity\"\n[eval]\nhorizon = 20.0\nreference_eps = {}\n",
            if system == "van-der-pol" { "0.3" } else { "0.1" }
        )
    };
    let cfg = stiffx::config::Config::from_toml(&toml("van-der-pol", "[0.1, 0.3]")).unwrap();
    let eval = |slow: f64, cfg: &stiffx::config::Config| {
        let field = Exact { sys: cfg.system.clone(), slow };
        stiffx::eval::evaluate::evaluate_field(cfg, &field, &cfg.eval_eps(), Default::default()).unwrap().0
    };
    let exact = eval(1.0, &cfg);
    assert_eq!(exact.per_eps.len(), 2);
    for m in &exact.per_eps {
        let p = m.period_rel.unwrap();
        assert!(p < 1e-4, "eps {}: {p}", m.eps);
        assert_eq!(m.all_within, 1.0);
    }
    for m in &eval(1.02, &cfg).per_eps {
        let p = m.period_rel.unwrap();
        assert!((p - 0.02).abs() < 1e-3, "eps {}: {p}", m.eps);
    }
    let ds = stiffx::config::Config::from_toml(&toml("davis-skodje", "[0.1]")).unwrap();
    assert!(eval(1.0, &ds).per_eps.iter().all(|m| m.period_rel.is_none()));
}
