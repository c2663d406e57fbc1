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

/// [`crate::cli::stiffx`] with stdout and stderr together.
fn stiffx(args: &[&str]) -> (i32, String) {
    let (code, out, err) = crate::cli::stiffx(args);
    (code, out + &err)
}

/// Per-eps `fast_rel_max` (pointwise worst) of an evaluation directory, and its point count.
fn worst_and_points(dir: &std::path::Path) -> (f64, u64) {
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evaluation.json")).unwrap()).unwrap();
    let worst =
        ev["per_eps"].as_array().unwrap().iter().map(|e| e["fast_rel_max"].as_f64().unwrap()).fold(0.0, f64::max);
    (worst, ev["grid_mean"]["pointwise"]["points"].as_u64().unwrap())
}

/// `stiffx eval --initial-states FILE`: Davis–Skodje from states *below* the slow manifold
/// (z0 = h(y0) − U[0.1, 0.5], y0 ~ U[0.5, 2.5], which the fixed test states never are): a small model
/// trained with the manifold's both sides sampled (`dz_min = -0.5`) keeps its pointwise worst fast
/// error there within twice its worst on the system's test states; the evaluation really ran from the
/// file (its 6 states, not the system's 3); a bad file is exit 2 naming it.
#[test]
fn eval_from_initial_states_below_the_manifold() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ds.toml");
    std::fs::write(
        &cfg,
        "seed = 1\n[system]\ntype = \"davis-skodje\"\ntrain_eps = [0.05, 0.1, 0.2]\ndz_min = -0.5\n\
         [sampler]\ntype = \"cloud\"\nk = 4\n[sampler.base]\ntype = \"trajectory\"\nper_eps = 8\nhorizon = 3.0\ndt = 0.02\n\
         [labeller]\ntype = \"direct\"\n[transform]\ntype = \"asinh\"\n[model]\nhidden = 2\nwidth = 32\n\
         [train]\nepochs = 150\nbatch = 256\nlr = 3e-3\n[eval]\nhorizon = 1.0\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let (code, out) =
        stiffx(&["run", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--no-figures"]);
    assert_eq!(code, 0, "{out}");
    // Below the manifold, deterministic.
    let mut csv = String::from("z,y\n"); // columns in any order
    let mut u = 0.37f64;
    for _ in 0..6 {
        let mut next = || {
            u = (u * 7.31 + 0.137).fract();
            u
        };
        let y = 0.5 + 2.0 * next();
        let z = y / (1.0 + y) - (0.1 + 0.4 * next());
        csv.push_str(&format!("{z:?},{y:?}\n"));
    }
    let states = dir.path().join("below.csv");
    std::fs::write(&states, &csv).unwrap();
    let ck = run.join("checkpoint.json");
    let (plain, below) = (dir.path().join("plain"), dir.path().join("below"));
    let (code, out) = stiffx(&["eval", "--checkpoint", ck.to_str().unwrap(), "--out", plain.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = stiffx(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        below.to_str().unwrap(),
        "--initial-states",
        states.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let ((w0, n0), (w1, n1)) = (worst_and_points(&plain), worst_and_points(&below));
    assert_eq!((n0, n1), (3 * 101 * 3, 6 * 101 * 3), "3 eps × 101 times × (3 system / 6 file states)");
    assert!(
        w1.is_finite() && w1 <= 2.0 * w0,
        "worst fast error below the manifold {w1} against {w0} on the test states"
    );
    // Bad files: exit 2, the file and the problem named, nothing written.
    for (text, needle) in [
        ("y,q\n1,2\n", "unknown column `q`"),
        ("y\n1\n", "missing column(s) z"),
        ("y,z\n1,nan\n", "line 2, column 2 (`z`)"),
        ("y,z\n", "no states"),
    ] {
        std::fs::write(&states, text).unwrap();
        let bad = dir.path().join("bad");
        let (code, out) = stiffx(&[
            "eval",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--out",
            bad.to_str().unwrap(),
            "--initial-states",
            states.to_str().unwrap(),
        ]);
        assert!(
            code == 2 && out.contains("below.csv") && out.contains(needle) && !out.contains("panicked"),
            "{text:?}: {out}"
        );
        assert!(!bad.exists(), "{text:?}: nothing written");
    }
}
