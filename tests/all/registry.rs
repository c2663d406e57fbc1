use stiffx::error::Error;
use stiffx::registry;

#[test]
fn registry_lists_every_builtin_sorted() {
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
    assert!(registry::sampler("grid").unwrap_err().to_string().contains("cloud, trajectory"));
    assert!(registry::labeller("oracle").unwrap_err().to_string().contains("burst, direct, finite-difference"));
}

#[test]
fn plugins_round_trip_through_config_toml() {
    let cfg = crate::tiny_config();
    let text = cfg.to_toml();
    let back = stiffx::config::Config::from_toml(&text).expect("serialised config parses");
    assert_eq!(back.to_toml(), text);
}
