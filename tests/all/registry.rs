use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use stiffx::error::Error;
use stiffx::plugins::registry::{self, name_of};
use stiffx::plugins::system::StiffSystem;

/// The listing of every built-in plugin, sorted within each kind, and its snapshot (which documents
/// the registry). Adding or renaming a plugin, or changing a description, changes the snapshot; accept
/// it with
///
/// ```text
/// INSTA_UPDATE=always cargo test --locked registry::listing
/// ```
///
/// then review `git diff tests/all/snapshots`.
#[test]
fn listing_has_every_builtin_sorted() {
    let names: Vec<(String, String)> =
        registry::list().into_iter().map(|l| (l.kind.to_string(), l.name.to_string())).collect();
    for (kind, name) in [
        ("system", "davis-skodje"),
        ("system", "michaelis-menten"),
        ("system", "van-der-pol"),
        ("transform", "identity"),
        ("transform", "asinh"),
        ("sampler", "trajectory"),
        ("sampler", "cloud"),
        ("sampler", "union"),
        ("labeller", "direct"),
        ("labeller", "burst"),
        ("labeller", "finite-difference"),
    ] {
        assert!(names.contains(&(kind.to_string(), name.to_string())), "{kind} {name} missing from {names:?}");
    }
    for kind in ["system", "transform", "sampler", "labeller"] {
        let of_kind: Vec<&String> = names.iter().filter(|(k, _)| k == kind).map(|(_, n)| n).collect();
        let mut sorted = of_kind.clone();
        sorted.sort();
        assert_eq!(of_kind, sorted, "{kind}s are listed sorted");
    }
    // The built-ins only: systems registered by test files (`test-…`) are left out.
    let builtins: Vec<_> = registry::list().into_iter().filter(|l| !l.name.starts_with("test-")).collect();
    insta::assert_yaml_snapshot!("listing", builtins);
}

#[test]
fn unknown_names_list_the_known_ones() {
    let err = registry::transform("log").unwrap_err();
    match &err {
        Error::Unknown { kind, name, known } => {
            assert_eq!(*kind, "transform");
            assert_eq!(name, "log");
            assert!(known.contains(&"asinh".to_string()) && known.contains(&"identity".to_string()));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("asinh, identity"), "{err}");
    assert!(registry::system("robertsen").unwrap_err().to_string().contains("davis-skodje"));
    assert!(registry::sampler("grid").unwrap_err().to_string().contains("cloud, data, trajectory, union"));
    assert!(registry::labeller("oracle").unwrap_err().to_string().contains("burst, direct, finite-difference"));
}

#[test]
fn plugins_round_trip_through_config_toml() {
    let cfg = crate::tiny_config();
    let text = cfg.to_toml();
    let back = stiffx::config::Config::from_toml(&text).expect("serialised config parses");
    assert_eq!(back.to_toml(), text);
}

/// Central finite differences of `x ↦ F(x, eps)` with a per-component step `h_i = 1e-6 · max(1, |x_i|)`
/// (written out here rather than calling `stiffx::plugins::system::fd_jacobian`, the trait's default Jacobian).
fn central_differences(sys: &dyn StiffSystem, x: &[f64], eps: f64) -> DMatrix<f64> {
    let d = x.len();
    let mut j = DMatrix::zeros(d, d);
    let (mut fp, mut fm) = (vec![0.0; d], vec![0.0; d]);
    for i in 0..d {
        let h = 1e-6 * x[i].abs().max(1.0);
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += h;
        xm[i] -= h;
        sys.rhs(&xp, eps, &mut fp);
        sys.rhs(&xm, eps, &mut fm);
        for k in 0..d {
            j[(k, i)] = (fp[k] - fm[k]) / (xp[i] - xm[i]);
        }
    }
    j
}

/// Every registered system (built-ins and those registered by test files), at its test initial
/// states and a few states drawn from its own initial-state distribution, at every eps of its training
/// grid: `jacobian()` equals central finite differences of `rhs()` to 1e-6 of the Jacobian's largest
/// entry, and `reference_eigenvalues()` has `dim()` finite entries sorted fastest first (non-increasing
/// modulus, the trait's convention).
#[test]
fn every_system_has_a_finite_difference_jacobian_and_sorted_reference_eigenvalues() {
    let names = registry::system_names();
    assert!(!names.is_empty(), "no system is registered");
    let (mut checked, mut without_rhs) = (0, 0);
    for name in &names {
        let sys = registry::system(name).unwrap();
        if !sys.has_reference() {
            // The `data` system: a file of trajectories, no RHS to differentiate (tests/all/data_system.rs).
            without_rhs += 1;
            continue;
        }
        let d = sys.dim();
        let mut rng = StdRng::seed_from_u64(11);
        let mut states = sys.test_initial_states();
        states.extend((0..4).map(|_| sys.sample_initial(&mut rng)));
        let grid = sys.train_grid();
        assert!(!grid.is_empty(), "{name}: empty training grid");
        for x in &states {
            assert_eq!(x.len(), d, "{name}: initial state {x:?} is not of dimension {d}");
            for &eps in &grid {
                let exact = sys.jacobian(x, eps);
                assert_eq!(exact.shape(), (d, d), "{name}: Jacobian shape");
                let fd = central_differences(&*sys, x, eps);
                let scale = exact.abs().max();
                let err = (&exact - &fd).abs().max();
                assert!(
                    scale.is_finite() && err <= 1e-6 * scale,
                    "{name}, eps = {eps}, x = {x:?}: |J - J_fd| = {err:e} vs |J| = {scale:e}\nJ = {exact}J_fd = {fd}"
                );
                let ev = sys.reference_eigenvalues(x, eps);
                assert_eq!(ev.len(), d, "{name}, eps = {eps}, x = {x:?}: {ev:?}");
                assert!(ev.iter().all(|l| l.re.is_finite() && l.im.is_finite()), "{name}, eps = {eps}: {ev:?}");
                assert!(
                    ev.windows(2).all(|w| w[0].norm() >= w[1].norm()),
                    "{name}, eps = {eps}, x = {x:?}: reference eigenvalues not sorted fastest first: {ev:?}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(without_rhs, 1, "only the data system has no RHS");
    assert_eq!(checked + without_rhs, names.len());
}

/// For all four kinds: the registry name is the serialised `typetag` tag of the plugin it builds, and
/// the plugin round-trips through its typetag JSON (what `Clone for Box<dyn …>` and configs rely on).
#[test]
fn registry_names_are_the_typetag_names() {
    fn check<T: serde::Serialize + ?Sized>(
        kind: &str,
        name: &str,
        plugin: &T,
        back: impl Fn(serde_json::Value) -> String,
    ) {
        assert_eq!(name_of(plugin), name, "{kind} registered as `{name}`");
        let json = serde_json::to_value(plugin).unwrap();
        assert_eq!(back(json.clone()), json.to_string(), "{kind} `{name}` round-trips through JSON");
    }
    fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(v: serde_json::Value) -> String {
        let t: T = serde_json::from_value(v).unwrap();
        serde_json::to_value(&t).unwrap().to_string()
    }
    let mut checked = 0;
    for name in registry::system_names() {
        check("system", &name, &*registry::system(&name).unwrap(), round_trip::<Box<dyn StiffSystem>>);
        checked += 1;
    }
    for name in registry::transform_names() {
        let t = registry::transform(&name).unwrap();
        check("transform", &name, &*t, round_trip::<Box<dyn stiffx::plugins::transform::TargetTransform>>);
        checked += 1;
    }
    for name in registry::sampler_names() {
        check(
            "sampler",
            &name,
            &*registry::sampler(&name).unwrap(),
            round_trip::<Box<dyn stiffx::plugins::sampler::Sampler>>,
        );
        checked += 1;
    }
    for name in registry::labeller_names() {
        let l = registry::labeller(&name).unwrap();
        check("labeller", &name, &*l, round_trip::<Box<dyn stiffx::plugins::labeller::Labeller>>);
        checked += 1;
    }
    assert!(registry::system_names().len() >= 5 && checked >= 12, "{checked} plugins checked");
    assert_eq!(checked, registry::list().len());
}

/// Every registered system that places initial states from a unit cube (`sampler.placement = "sobol"`)
/// maps uniform points onto the distribution its `sample_initial` draws from: per component, the
/// quantiles of 4,000 mapped uniform points and of 4,000 draws agree to 0.04 in probability (a
/// two-sample check of the marginals; a map onto another box, a swapped component or a missed branch
/// fails it), and a fixed component is the same fixed value.
#[test]
fn every_unit_cube_placement_matches_the_systems_own_draws() {
    use rand::RngExt;
    let (mut checked, n) = (0, 4000);
    // The draws' sorted values `a` and the mapped ones `b`: each `q`-quantile of `b` is within 0.04 of
    // the `q`-quantile of `a` in probability.
    let same_quantiles = |a: &[f64], b: &[f64], qs: &[f64], what: &str| {
        for &q in qs {
            let v = b[(q * n as f64) as usize];
            let p = a.partition_point(|x| *x <= v) as f64 / n as f64;
            assert!((p - q).abs() < 0.04, "{what}: the mapped {q}-quantile {v} is the draws' {p}-quantile");
        }
    };
    for name in registry::system_names() {
        let sys = registry::system(&name).unwrap();
        let Some(k) = sys.initial_unit_dims().filter(|&k| k > 0) else { continue };
        let d = sys.dim();
        let mut rng = StdRng::seed_from_u64(5);
        let draws: Vec<Vec<f64>> = (0..n).map(|_| sys.sample_initial(&mut rng)).collect();
        let mapped: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let u: Vec<f64> = (0..k).map(|_| rng.random::<f64>()).collect();
                sys.initial_from_unit(&u).unwrap_or_else(|| panic!("{name}: no state for {u:?}"))
            })
            .collect();
        assert!(
            sys.initial_from_unit(&vec![0.5; k + 1]).is_none(),
            "{name}: a point of the wrong dimension is refused"
        );
        for c in 0..d {
            let mut a: Vec<f64> = draws.iter().map(|x| x[c]).collect();
            let mut b: Vec<f64> = mapped.iter().map(|x| x[c]).collect();
            assert!(b.iter().all(|v| v.is_finite()), "{name}: component {c} not finite");
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            if a[0] == a[n - 1] {
                assert!(b.iter().all(|v| *v == a[0]), "{name}: component {c} is fixed at {} in the draws", a[0]);
                continue;
            }
            same_quantiles(&a, &b, &[0.05, 0.25, 0.5, 0.75, 0.95], &format!("{name}, component {c}"));
        }
        // The joint distribution too: per pair of components, the sum and the difference of the two
        // scaled by their ranges (a map that pairs the right marginals wrongly fails here).
        let ranges: Vec<f64> = (0..d)
            .map(|c| {
                let (lo, hi) = draws.iter().fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(x[c]), h.max(x[c])));
                if hi > lo { hi - lo } else { 1.0 }
            })
            .collect();
        for c1 in 0..d {
            for c2 in c1 + 1..d {
                for sign in [1.0, -1.0] {
                    let f = |x: &Vec<f64>| x[c1] / ranges[c1] + sign * x[c2] / ranges[c2];
                    let mut a: Vec<f64> = draws.iter().map(f).collect();
                    let mut b: Vec<f64> = mapped.iter().map(f).collect();
                    a.sort_by(f64::total_cmp);
                    b.sort_by(f64::total_cmp);
                    let tiny = 1e-9 * (a[0].abs() + a[n - 1].abs() + 1.0);
                    if a[n - 1] - a[0] <= tiny {
                        // A conserved combination (Robertson's y1 + y3): the same constant, to rounding.
                        assert!(b[0] >= a[0] - tiny && b[n - 1] <= a[n - 1] + tiny, "{name}: {c1} {sign:+} {c2}");
                        continue;
                    }
                    same_quantiles(&a, &b, &[0.1, 0.5, 0.9], &format!("{name}, components {c1} {sign:+} {c2}"));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} systems place from a unit cube: the built-ins all do");
}
