use stiffx::compare::{CompareSpec, compare};
use stiffx::pipeline::RunOptions;

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
    let rows = compare(&base, &spec, dir.path(), &RunOptions::default()).unwrap();
    assert_eq!(rows.len(), 4);
    // `trajectory` is the base cloud's own base sampler: the cloud (K = 2, base points kept) has 3×
    // its samples.
    let ds: Vec<_> = rows.iter().filter(|r| r.system == "davis-skodje").collect();
    assert_eq!(ds[0].sampler, "trajectory");
    assert_eq!(3 * ds[0].samples, ds[1].samples);
    // The base config's system keeps its grid (3 eps); the other system uses its registry default.
    let mm = std::fs::read_to_string(dir.path().join("michaelis-menten/asinh-cloud-s1/per_eps.csv")).unwrap();
    assert_eq!(mm.lines().count(), 1 + stiffx::registry::system("michaelis-menten").unwrap().train_grid().len());
    for f in ["compare.csv", "compare.md", "compare.png", "davis-skodje/asinh-trajectory-s1/metrics.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(dir.path().join("compare.md")).unwrap();
    assert!(md.contains("| michaelis-menten | asinh | cloud |"), "{md}");
    let bad = CompareSpec { systems: vec!["nope".into()], ..spec };
    let err = compare(&base, &bad, dir.path(), &RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("van-der-pol"), "{err}");
}
