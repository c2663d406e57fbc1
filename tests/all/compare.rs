use stiffx::engine::compare::CompareSpec;
use stiffx::engine::local::compare;
use stiffx::engine::pipeline::RunOptions;

#[test]
fn compare_runs_every_combination_and_writes_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let base = crate::tiny_config();
    let spec = CompareSpec {
        systems: vec!["davis-skodje".into(), "michaelis-menten".into()],
        transforms: vec!["asinh".into()],
        samplers: vec!["trajectory".into(), "cloud".into()],
        seeds: vec![1],
        epochs: Some(5),
    };
    let (rows, _) = compare(std::slice::from_ref(&base), &spec, dir.path(), &RunOptions::default()).unwrap();
    assert_eq!(rows.len(), 4);
    // `trajectory` is the base cloud's own base sampler: the cloud (K = 2, base points kept) has 3×
    // its samples.
    let ds: Vec<_> = rows.iter().filter(|r| r.system == "davis-skodje").collect();
    assert_eq!(ds[0].sampler, "trajectory");
    assert_eq!(3 * ds[0].samples, ds[1].samples);
    // The base config's system keeps its grid (3 eps); the other system uses its registry default.
    let mm = std::fs::read_to_string(dir.path().join("michaelis-menten/asinh-cloud-s1/per_eps.csv")).unwrap();
    assert_eq!(
        mm.lines().count(),
        1 + stiffx::plugins::registry::system("michaelis-menten").unwrap().train_grid().len()
    );
    for f in ["compare.csv", "compare.md", "compare.png", "davis-skodje/asinh-trajectory-s1/metrics.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(dir.path().join("compare.md")).unwrap();
    assert!(md.contains("| michaelis-menten | asinh | cloud |"), "{md}");
    let bad = CompareSpec { systems: vec!["nope".into()], ..spec };
    let err = compare(&[base], &bad, dir.path(), &RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("van-der-pol"), "{err}");
}

/// A system with its own base config (Robertson: log-spaced times, BDF rollouts) beside one that uses
/// the first base; Robertson's zero eigenvalue stays out of its relative errors.
#[test]
fn compare_uses_a_systems_own_base_config() {
    let dir = tempfile::tempdir().unwrap();
    let rob = stiffx::config::Config::from_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/tiny_robertson.toml"
    )))
    .unwrap();
    let spec = CompareSpec {
        systems: vec!["davis-skodje".into(), "robertson".into()],
        transforms: vec!["asinh".into()],
        samplers: vec!["cloud".into()],
        seeds: vec![1],
        epochs: Some(2),
    };
    let (rows, _) = compare(&[crate::tiny_config(), rob], &spec, dir.path(), &RunOptions::default()).unwrap();
    assert_eq!(rows.len(), 2);
    let cfg = std::fs::read_to_string(dir.path().join("robertson/asinh-cloud-s1/config.toml")).unwrap();
    assert!(cfg.contains("spacing = \"log\"") && cfg.contains("integrator = \"bdf\""), "{cfg}");
    let r = &rows[1];
    assert_eq!(r.system, "robertson");
    assert!(r.all_rel.is_finite() && r.rollout_rel.is_finite(), "{r:?}");
    let md = std::fs::read_to_string(dir.path().join("compare.md")).unwrap();
    assert!(md.contains("own base config: robertson"), "{md}");
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("robertson/asinh-cloud-s1/metrics.json")).unwrap(),
    )
    .unwrap();
    let e = &m["eval"]["per_eps"][0];
    assert_eq!(e["points"].as_u64().unwrap(), 3 * 13);
    // Log-spaced evaluation: per-decade errors, t = 0 joining the first decade (1e-4 … 1e3: 7 rows).
    let w = std::fs::read_to_string(dir.path().join("robertson/asinh-cloud-s1/time_windows.csv")).unwrap();
    assert_eq!(w.lines().count(), 1 + 7, "{w}");
    // The same, pooled over eps in metrics.json, then over all 39 points.
    let pooled = m["windows"].as_array().unwrap();
    assert_eq!(pooled.len(), 7 + 1);
    assert_eq!(pooled[7]["points"].as_u64().unwrap(), 3 * 13);
    assert_eq!(pooled.iter().take(7).map(|w| w["points"].as_u64().unwrap()).sum::<u64>(), 3 * 13);
    // The projection onto mass conservation makes one learned eigenvalue an exact zero (to rounding) at
    // every point, however poorly trained the network: the smallest one in traces.csv.
    let traces = std::fs::read_to_string(dir.path().join("robertson/asinh-cloud-s1/traces.csv")).unwrap();
    let mut eigs: Vec<(f64, f64)> = Vec::new(); // (|λ_0|, |λ_2|) per point
    for line in traces.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let modulus = f[7].parse::<f64>().unwrap().hypot(f[8].parse::<f64>().unwrap());
        match f[6] {
            "0" => eigs.push((modulus, f64::NAN)),
            "2" => eigs.last_mut().unwrap().1 = modulus,
            _ => {}
        }
    }
    assert_eq!(eigs.len(), 3 * 13);
    assert!(eigs.iter().all(|(fast, zero)| *zero <= 1e-9 * fast.max(1e-300)), "{eigs:?}");
    // An ensemble of the checkpoint with itself is that network: the same metrics, members that agree
    // everywhere, and per-decade rows over the same 39 points.
    let ck = stiffx::engine::checkpoint::Checkpoint::load(&dir.path().join("robertson/asinh-cloud-s1/checkpoint.json"))
        .unwrap();
    let device = stiffx::backend::Backend::default_compiled().unwrap().device().unwrap();
    let (f64_, fwd) = (stiffx::backend::Precision::F64, stiffx::eval::spectral::JacobianMode::Forward);
    let eps = ck.config.eval_eps();
    let (one, _) = stiffx::eval::evaluate::evaluate(&ck, &eps, &device, f64_, fwd).unwrap();
    let (ens, _, spread, windows) =
        stiffx::eval::evaluate::evaluate_ensemble(&[ck.clone(), ck], &eps, &device, f64_, fwd).unwrap();
    for (a, b) in one.per_eps.iter().zip(&ens.per_eps) {
        assert_eq!((a.all_within, a.points), (b.all_within, b.points));
        assert!((a.rollout_rel - b.rollout_rel).abs() <= 1e-9 * a.rollout_rel.abs().max(1e-12), "{a:?} {b:?}");
        assert!((a.fast_rel - b.fast_rel).abs() <= 1e-9 * a.fast_rel.abs(), "{a:?} {b:?}");
    }
    assert_eq!(spread.len(), eps.len());
    assert!(spread.iter().all(|m| m.members == 2 && m.agreed == 1.0 && m.fast_spread_median == 0.0), "{spread:?}");
    assert_eq!(windows.len(), 7);
    assert_eq!(windows.iter().map(|w| w.points).sum::<usize>(), 3 * 13);
    assert!(windows.iter().all(|w| w.eps.is_nan() && w.agreed == 1.0), "{windows:?}");
}
