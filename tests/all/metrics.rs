//! Pointwise eigenvalue metrics (`eval::metrics::pointwise`) through their public interface.

use nalgebra::Complex;
use stiffx::eval::metrics::{EigenErrors, EpsMetrics, Summary};

/// 100 points with fast errors 0, 0.001 … 0.099 and one slow error of 10 % (point 37): the
/// nearest-rank quantiles, the maxima, and the worst point is 37 (its slow eigenvalue), not the
/// point with the worst fast error; the run summary carries them through JSON, and a summary
/// written before the rename reads its `fast_rel_worst`.
#[test]
fn pointwise_quantiles_and_the_worst_point() {
    let c = |re: f64| Complex::new(re, 0.0);
    let mut e = EigenErrors::default();
    for i in 0..100 {
        let slow = if i == 37 { -1.1 } else { -1.0 };
        let fast = -100.0 * (1.0 + i as f64 / 1000.0);
        e.add_at(&[c(fast), c(slow)], &[c(-100.0), c(-1.0)], 0, 0.05, i as f64 * 0.1, &[i as f64, 1.0]);
    }
    let m = EpsMetrics::new(0.05, &[0.0], &[0.0], &[], &e);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(m.fast_rel_p50, 0.050) && close(m.fast_rel_p95, 0.094), "{m:?}");
    assert!(close(m.fast_rel_p99, 0.098) && close(m.fast_rel_max, 0.099), "{m:?}");
    assert!(m.slow_rel_p99 == 0.0 && close(m.slow_rel_max, 0.1), "{m:?}");
    // Point 37's worst is its slow 0.1, not its fast 0.037: the median moves up one rank.
    assert!(close(m.all_rel_p50, 0.051) && close(m.all_rel_max, 0.1), "{m:?}");
    assert!(close(m.worst_t, 3.7) && m.worst_state == "3.7e1 1e0" && m.worst_eigenvalue == 2, "{m:?}");
    assert_eq!((m.worst_learned.as_str(), m.worst_true.as_str()), ("-1.1e0", "-1e0"));
    let p = e.pointwise();
    let w = p.worst_point.clone().unwrap();
    assert!(w.eps == 0.05 && w.state == vec![37.0, 1.0] && w.eigenvalue == 2 && close(w.rel, 0.1), "{w:?}");
    assert!(w.describe().contains("eigenvalue 2 learned -1.100000e0, true -1.000000e0"), "{}", w.describe());
    assert!(close(p.fast_rel.p99, 0.098) && close(p.slow_rel.max, 0.1) && p.points == 100);
    let mut s = Summary::mean(&[m]);
    s.pointwise = Some(p);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), s, "{json}");
    let old = json.replace("fast_rel_worst_eps_mean", "fast_rel_worst").replace(r#","pointwise":"#, r#","old":"#);
    let read: Summary = serde_json::from_str(&old).unwrap();
    assert!(read.fast_rel_worst_eps_mean == s.fast_rel_worst_eps_mean && read.pointwise.is_none());
    // A diverged point (NaN learned eigenvalue) is the worst, and shows in the maximum.
    e.add_at(&[c(f64::NAN), c(-1.0)], &[c(-100.0), c(-1.0)], 0, 0.05, 9.9, &[0.0, 0.0]);
    let m = EpsMetrics::new(0.05, &[0.0], &[0.0], &[], &e);
    assert!(m.fast_rel_max.is_infinite() && m.worst_t == 9.9, "{m:?}");
}
