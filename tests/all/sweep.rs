use stiffx::engine::checkpoint::Checkpoint;
use stiffx::engine::local::sweep;
use stiffx::engine::pipeline::RunOptions;
use stiffx::eval::evaluate::{evaluate, evaluate_prepared, prepare_together};

#[test]
fn tiny_sweep_writes_tables_resumes_and_is_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny_sweep.toml");
    let rows = sweep(&file, &RunOptions::default(), Some(dir.path())).unwrap();
    assert_eq!(rows.len(), 4);
    for f in ["table1.csv", "table1.md", "tiny-s1/metrics.json", "tiny_identity-s2/checkpoint.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(dir.path().join("table1.md")).unwrap();
    assert!(md.contains("| tiny | 1 | asinh |") && md.contains("Mean ± std"), "{md}");
    // S_comb medians are over all runs: their mean over the 4 runs is near 1 only by accident, but each
    // term of the median run is exactly 1, so the minimum is below and the maximum above 1.
    let s: Vec<f64> = rows.iter().map(|r| r.s_comb).collect();
    assert!(s.iter().cloned().fold(f64::INFINITY, f64::min) <= 1.0 && s.iter().cloned().fold(0.0, f64::max) >= 1.0);
    // The report: every linked figure exists and is a PNG; the unseen grid was evaluated for every run
    // and enters the seed-averaged curve.
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("Table 1") && report.contains("Wall time"), "{report}");
    let links: Vec<&str> =
        report.split("](").skip(1).filter_map(|t| t.split(')').next()).filter(|l| l.ends_with(".png")).collect();
    assert!(links.len() >= 9, "{links:?}");
    for l in &links {
        let bytes = std::fs::read(dir.path().join(l)).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(&bytes[1..4], b"PNG", "{l}");
    }
    let curve = std::fs::read_to_string(dir.path().join("eps_curve.csv")).unwrap();
    let unseen_rows = curve.lines().filter(|l| l.contains(",true,")).count();
    assert_eq!(unseen_rows, 2 * 8, "{curve}");
    assert!(dir.path().join("tiny-s2/all_eps.csv").is_file());
    assert!(dir.path().join("data/tiny/diagnostics.md").is_file());
    // Resume: finished runs are read back, not retrained; the table is identical.
    let stamp = std::fs::metadata(dir.path().join("tiny-s1/checkpoint.json")).unwrap().modified().unwrap();
    let again = sweep(&file, &RunOptions::default(), Some(dir.path())).unwrap();
    assert_eq!(rows, again);
    assert_eq!(std::fs::metadata(dir.path().join("tiny-s1/checkpoint.json")).unwrap().modified().unwrap(), stamp);
    let view: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "config": r.config, "seed": r.seed, "transform": r.transform, "cloud": r.cloud,
                "rollout_l2": format!("{:.3e}", r.rollout_l2), "fast_abs": format!("{:.3e}", r.fast_abs),
                "slow_abs": format!("{:.3e}", r.slow_abs), "s_comb": format!("{:.3e}", r.s_comb),
            })
        })
        .collect();
    insta::assert_json_snapshot!("tiny_sweep", view);
}

/// `--together`: the tiny sweep's four runs (two transforms × two seeds, one network shape) train in
/// one batched pass, each with its own data, initialisation and batch order, and follow the path
/// each takes alone: every epoch's training and validation loss within 1e-4 relative of the
/// one-by-one sweep (f32 rounding of batched products), the same best epoch, and the same
/// directories. A second call reads the finished jobs back.
#[test]
fn jobs_of_one_shape_train_together_as_they_train_alone() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny_sweep.toml");
    let (alone, together) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sweep(&file, &RunOptions::default(), Some(alone.path())).unwrap();
    let opts = RunOptions { together: 4, ..RunOptions::default() };
    let rows = sweep(&file, &opts, Some(together.path())).unwrap();
    assert_eq!(rows.len(), 4);
    let curve = |dir: &std::path::Path| -> Vec<(f64, f64)> {
        let text = std::fs::read_to_string(dir.join("loss_curve.csv")).unwrap();
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect()
    };
    let metrics = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
    };
    for id in ["tiny-s1", "tiny-s2", "tiny_identity-s1", "tiny_identity-s2"] {
        let (a, t) = (alone.path().join(id), together.path().join(id));
        let (ca, ct) = (curve(&a), curve(&t));
        assert_eq!(ca.len(), 30, "{id}");
        assert_eq!(ca.len(), ct.len(), "{id}");
        for (e, (x, y)) in ca.iter().zip(&ct).enumerate() {
            for (p, q) in [(x.0, y.0), (x.1, y.1)] {
                assert!((p - q).abs() <= 1e-4 * p.abs(), "{id} epoch {}: alone {p}, together {q}", e + 1);
            }
        }
        let (ma, mt) = (metrics(&a), metrics(&t));
        assert_eq!(ma["best_epoch"], mt["best_epoch"], "{id}");
        assert_eq!(mt["trained_together"], 4, "{id}: {mt}");
        assert!(ma.get("trained_together").is_none(), "{id}: one by one says nothing");
        for f in ["checkpoint.json", "per_eps.csv", "config.toml"] {
            assert!(t.join(f).is_file(), "{id}/{f}");
        }
    }
    // The group's spectral evaluations were prepared together (one reference, the four networks'
    // Jacobians in one stacked pass); each run's metrics are those of its checkpoint evaluated alone.
    let device = opts.backend.device().unwrap();
    let ids = ["tiny-s1", "tiny-s2", "tiny_identity-s1", "tiny_identity-s2"];
    let cks: Vec<Checkpoint> =
        ids.iter().map(|id| Checkpoint::load(&together.path().join(id).join("checkpoint.json")).unwrap()).collect();
    let prepared = prepare_together(
        &cks.iter().map(Some).collect::<Vec<_>>(),
        &cks.iter().map(|ck| ck.config.eval_eps()).collect::<Vec<_>>(),
        &device,
        opts.eval_precision,
        opts.jacobian,
    )
    .unwrap();
    assert!(prepared.iter().all(Option::is_some), "one system and [eval]: all four share a reference");
    for ((id, ck), p) in ids.iter().zip(&cks).zip(prepared) {
        let eps = ck.config.eval_eps();
        let (alone, tr) = evaluate(ck, &eps, &device, opts.eval_precision, opts.jacobian).unwrap();
        let (shared, tr_shared) = evaluate_prepared(ck, &eps, &device, opts.eval_precision, opts.jacobian, p).unwrap();
        assert_eq!(
            serde_json::to_value(&alone.per_eps).unwrap(),
            serde_json::to_value(&shared.per_eps).unwrap(),
            "{id}"
        );
        assert_eq!(tr.learned_eigs, tr_shared.learned_eigs, "{id}");
        assert_eq!(
            serde_json::to_value(&alone.per_eps).unwrap(),
            metrics(&together.path().join(id))["eval"]["per_eps"],
            "{id}"
        );
    }
    // Finished jobs are read back, not trained again.
    let stamp = std::fs::metadata(together.path().join("tiny-s1/checkpoint.json")).unwrap().modified().unwrap();
    assert_eq!(sweep(&file, &opts, Some(together.path())).unwrap(), rows);
    let again = std::fs::metadata(together.path().join("tiny-s1/checkpoint.json")).unwrap().modified().unwrap();
    assert_eq!(again, stamp);
}

/// `--together` over jobs of one network shape whose datasets differ in size: each size trains in its
/// own pass (here two of two runs each), and the results are the one-by-one results' (best epoch).
#[test]
fn jobs_whose_data_differ_in_size_train_in_one_pass_per_size() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(root.join("tiny.toml")).unwrap();
    std::fs::write(dir.path().join("a.toml"), &tiny).unwrap();
    std::fs::write(dir.path().join("b.toml"), tiny.replace("per_eps = 2", "per_eps = 3")).unwrap();
    let file = dir.path().join("sweep.toml");
    std::fs::write(&file, "out = \"x\"\nseeds = [1, 2]\nconfigs = [\"a.toml\", \"b.toml\"]\nepochs = 5\n").unwrap();
    let (alone, together) = (dir.path().join("alone"), dir.path().join("together"));
    sweep(&file, &RunOptions::default(), Some(&alone)).unwrap();
    sweep(&file, &RunOptions { together: 8, ..RunOptions::default() }, Some(&together)).unwrap();
    let metrics = |d: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("metrics.json")).unwrap()).unwrap()
    };
    let mut sizes = Vec::new();
    for id in ["a-s1", "a-s2", "b-s1", "b-s2"] {
        let (a, t) = (metrics(alone.join(id)), metrics(together.join(id)));
        assert_eq!(t["trained_together"], 2, "{id}: {t}");
        assert_eq!(a["best_epoch"], t["best_epoch"], "{id}");
        assert_eq!(a["n_train"], t["n_train"], "{id}");
        let (va, vt) = (a["best_val_loss"].as_f64().unwrap(), t["best_val_loss"].as_f64().unwrap());
        assert!((va - vt).abs() <= 1e-4 * va, "{id}: {va} vs {vt}");
        sizes.push(t["n_train"].as_u64().unwrap());
    }
    assert!(sizes[0] == sizes[1] && sizes[2] == sizes[3] && sizes[0] != sizes[2], "{sizes:?}");
}
