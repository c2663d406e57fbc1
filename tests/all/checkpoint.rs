//! Checkpoint format 2 (`checkpoint.json` + `checkpoint.safetensors`): what runs write, `stiffx export`
//! from format 1, the evaluation of both formats reproducing each other exactly, and every corrupted
//! or mismatched weights file refused with a message naming it.

use std::path::{Path, PathBuf};
use std::process::Command;

use stiffx::engine::checkpoint::{Checkpoint, FORMAT};

fn stiffx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stiffx")).args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A committed format-1 checkpoint (the CRNN on Robertson) exports to format 2 with the same weights,
/// and `stiffx eval` of the two files — two loaders — writes byte-identical per-eps metrics.
#[test]
fn export_of_a_v1_checkpoint_evaluates_identically() {
    let v1 = repo("results/robertson_crnn/checkpoint.json");
    let old = Checkpoint::load(&v1).unwrap();
    assert_eq!(old.format, "stiffx-checkpoint-1");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("v2");
    let (code, stdout, err) = stiffx(&["export", s(&v1), "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("checkpoint.safetensors"), "{stdout}");
    let new = Checkpoint::load(&out).unwrap(); // the directory is enough
    assert_eq!(new.format, FORMAT);
    assert_eq!(new.weights, old.weights);
    assert_eq!(new.normalizer, old.normalizer);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(meta["dim"], 3);
    assert_eq!(meta["state_names"], serde_json::json!(["y1", "y2", "y3"]));
    assert_eq!(meta["network"]["activation"], "exp");
    assert!(meta.get("weights").is_none(), "format 2 keeps the weights out of the JSON");
    // Both files evaluated at the same eps: identical tables.
    for (ck, dir) in [(v1.clone(), "ev1"), (out.join("checkpoint.json"), "ev2")] {
        let (code, _, err) = stiffx(&["eval", "--checkpoint", s(&ck), "--eps", "1", "--out", s(&d.path().join(dir))]);
        assert_eq!(code, 0, "{err}");
    }
    let a = std::fs::read(d.path().join("ev1/per_eps.csv")).unwrap();
    assert_eq!(a, std::fs::read(d.path().join("ev2/per_eps.csv")).unwrap());
}

/// The invariant projector is written out (Robertson projects onto y1 + y2 + y3 = const), so that a
/// reader needs no system code: `P w = 0` for the invariant and `P² = P`.
#[test]
fn projector_is_written_for_systems_with_invariants() {
    let mut cfg = stiffx::config::Config::from_file(&repo("configs/tiny_robertson.toml")).unwrap();
    cfg.model.project_invariants = true;
    let norm = stiffx::model::Normalizer::fit(&[0.5, 0.1, 0.4, 0.0, 0.9, 0.05, 0.05, 1.0], 4);
    let ck = Checkpoint::new(cfg, norm, stiffx::model::Weights::init(4, 1, 5, 3, 1), 0, 1.0);
    let meta = ck.metadata("w.safetensors", "x".into()).unwrap();
    let p = meta.projector.expect("Robertson has an invariant");
    for r in &p {
        assert!((r.iter().sum::<f64>()).abs() < 1e-15, "P w = 0 for w = (1, 1, 1): {p:?}");
    }
    for i in 0..3 {
        for j in 0..3 {
            let pp: f64 = (0..3).map(|k| p[i][k] * p[k][j]).sum();
            assert!((pp - p[i][j]).abs() < 1e-15);
        }
    }
}

/// A run writes format 2; a weights file that is not the named one, a missing one, a truncated one
/// and an unknown format are errors that name the file (exit 2 from the CLI), never a panic.
#[test]
fn corrupted_weights_are_refused_by_name() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let (code, _, err) =
        stiffx(&["run", "--config", s(&repo("configs/tiny.toml")), "--out", s(&run), "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    let ck = Checkpoint::load(&run.join("checkpoint.json")).unwrap();
    assert_eq!(ck.format, FORMAT);
    let weights = run.join("checkpoint.safetensors");
    let good = std::fs::read(&weights).unwrap();
    let inspect = |needles: &[&str]| {
        let (code, _, err) = stiffx(&["inspect", "--checkpoint", s(&run), "--eps", "0.1", "--state", "1,0.5"]);
        assert_eq!(code, 2, "{err}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "missing `{n}` in: {err}");
        }
    };
    std::fs::write(&weights, &good[..good.len() / 2]).unwrap();
    inspect(&["checkpoint.safetensors", "SHA-256"]);
    std::fs::remove_file(&weights).unwrap();
    inspect(&["cannot read its weights file", "checkpoint.safetensors"]);
    // The right hash of the wrong content: the tensors themselves are checked.
    let other = stiffx::model::Weights::init(3, 2, 8, 2, 9).to_safetensors(Default::default());
    std::fs::write(&weights, &other).unwrap();
    let text = std::fs::read_to_string(run.join("checkpoint.json")).unwrap();
    let sha = stiffx::io::sha256_hex(&good);
    std::fs::write(run.join("checkpoint.json"), text.replace(&sha, &stiffx::io::sha256_hex(&other))).unwrap();
    inspect(&["layers.0.weight", "[16, 3]"]);
    std::fs::write(run.join("checkpoint.json"), text.replace(FORMAT, "stiffx-checkpoint-9")).unwrap();
    inspect(&["stiffx-checkpoint-9", "stiffx-checkpoint-2", "stiffx-checkpoint-1"]);
    // The run directory's own files are untouched by a failed export into it.
    std::fs::write(run.join("checkpoint.json"), &text).unwrap();
    std::fs::write(&weights, &good).unwrap();
    let (code, _, err) = stiffx(&["export", s(&d.path().join("nope.json")), "--out", s(&run)]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read(&weights).unwrap(), good);
    assert!(Checkpoint::load(&run).is_ok());
}
