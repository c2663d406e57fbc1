//! The oscillation-period metric (`metrics::period_rel`) on a real oscillator: Van der Pol at μ = 1,
//! whose limit-cycle period is published, and a rollout whose period is off by a known fraction.

use stiffx::metrics::{oscillation_period, period_rel, upward_crossings};

/// From (2, 0) over t = 0 … 40 sampled every 0.01 (RK4's grid in `stiffx run`), the crossing-based
/// period of the reference is Hairer–Nørsett–Wanner's T = 6.6632868593 (μ = 1) to 1e-4; a "learned"
/// rollout that is the same trajectory slowed by 1 % (`x(t/1.01)`) has `period_rel` = 0.01, one that is
/// exact has 0, and one that relaxes to a point has an infinite error.
#[test]
fn period_rel_measures_the_published_van_der_pol_period() {
    let sys = stiffx::registry::system("van-der-pol").unwrap();
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
