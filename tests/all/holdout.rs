//! `stiffx eval --data FILE.csv`: checkpoints evaluated on held-out trajectories. The rollout error
//! is zero on trajectories the model itself produced and finite but not zero on the true system's;
//! the spread over checkpoints is zero for one network given twice and positive for two seeds; bad
//! files and conflicting flags exit 2.

use std::fmt::Write;
use std::path::Path;

use stiffx::backend::{Backend, Precision};
use stiffx::engine::checkpoint::Checkpoint;
use stiffx::eval::spectral::LearnedField;

use crate::cli::stiffx;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.toml");

/// A CSV of trajectories (`trajectory,t,eps,y,z`) at eps 0.1, every 0.05 up to t = 1, from `x0`,
/// each row of `states` being `x0.len() × 21 × 2` values.
fn csv(x0: &[[f64; 2]], states: &[Vec<f64>]) -> String {
    let mut s = String::from("trajectory,t,eps,y,z\n");
    for (j, (_, st)) in x0.iter().zip(states).enumerate() {
        for (i, p) in st.chunks(2).enumerate() {
            writeln!(s, "tr{j},{},0.1,{:e},{:e}", i as f64 * 0.05, p[0], p[1]).unwrap();
        }
    }
    s
}

fn column(text: &str, name: &str) -> Vec<f64> {
    let mut lines = text.lines();
    let k = lines.next().unwrap().split(',').position(|h| h == name).unwrap_or_else(|| panic!("column {name}"));
    lines.map(|l| l.split(',').nth(k).unwrap().parse().unwrap()).collect()
}

#[test]
fn eval_on_held_out_trajectories_rolls_out_and_measures_the_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p);
    for seed in ["1", "2"] {
        let out = t(&format!("s{seed}"));
        let (code, _, err) = stiffx(&[
            "run",
            "--config",
            TINY,
            "--seed",
            seed,
            "--quiet",
            "--no-figures",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let ck1 = Checkpoint::load(&t("s1/checkpoint.json")).unwrap();
    let sys = ck1.config.system.as_ref();
    assert_eq!(sys.state_names().len(), 2);
    let names = sys.state_names().join(",");
    let x0 = [[0.5, 0.2], [1.5, 0.9], [2.5, 0.4]];
    let times: Vec<f64> = (0..21).map(|i| i as f64 * 0.05).collect();
    // The true system's trajectories, and the first model's own BDF rollouts (same tolerances as the
    // evaluation: the config's rollout_rtol/atol).
    let truth: Vec<Vec<f64>> = x0
        .iter()
        .map(|x| {
            stiffx::ode::solve_at_with(sys, 0.1, x, &times, 1e-10, 1e-12, false, stiffx::ode::Method::Bdf).unwrap()
        })
        .collect();
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let field = stiffx::eval::evaluate::learned_rhs(&ck1, &device, Precision::F64).unwrap();
    let (rtol, atol) = (ck1.config.eval.rollout_rtol, ck1.config.eval.rollout_atol);
    let own: Vec<Vec<f64>> = x0.iter().map(|x| field.rollout_bdf(x, &[0.1], &times, rtol, atol)).collect();
    let header = |s: String| s.replacen("y,z", &names, 1);
    std::fs::write(t("truth.csv"), header(csv(&x0, &truth))).unwrap();
    std::fs::write(t("own.csv"), header(csv(&x0, &own))).unwrap();
    let eval = |data: &str, cks: &[&str], out: &str| {
        let mut a = vec!["eval", "--precision", "f64", "--data"];
        let data = t(data).display().to_string();
        a.push(&data);
        a.push("--checkpoint");
        let cks: Vec<String> = cks.iter().map(|c| t(c).join("checkpoint.json").display().to_string()).collect();
        a.extend(cks.iter().map(String::as_str));
        let out = t(out).display().to_string();
        a.extend(["--out", &out]);
        stiffx(&a)
    };

    // Two seeds on the true trajectories.
    let (code, stdout, err) = eval("truth.csv", &["s1", "s2"], "e");
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("data_spectrum.csv"), "{stdout}");
    let rollouts = std::fs::read_to_string(t("e/checkpoint1/data_rollouts.csv")).unwrap();
    let max_rel = column(&rollouts, "max_rel");
    assert_eq!(max_rel.len(), 3);
    assert!(max_rel.iter().all(|e| e.is_finite() && *e > 1e-6 && *e < 1.0), "{max_rel:?}");
    let spectrum = std::fs::read_to_string(t("e/data_spectrum.csv")).unwrap();
    assert_eq!(column(&spectrum, "eps"), [0.1]);
    assert_eq!(column(&spectrum, "points"), [63.0]);
    let (spread, error) = (column(&spectrum, "spread_max")[0], column(&spectrum, "error_max")[0]);
    assert!(spread > 0.0 && spread.is_finite() && error > 0.0 && error.is_finite(), "{spectrum}");

    // The model's own trajectories: its rollouts reproduce them (another code path: the library's
    // rollout here, the CLI's there).
    let (code, _, err) = eval("own.csv", &["s1"], "own");
    assert_eq!(code, 0, "{err}");
    let own_err = column(&std::fs::read_to_string(t("own/data_rollouts.csv")).unwrap(), "max_rel");
    assert!(own_err.iter().all(|e| *e < 1e-9), "{own_err:?}");

    // One network given twice: no spread, the same error as alone.
    let (code, _, err) = eval("truth.csv", &["s1", "s1"], "twice");
    assert_eq!(code, 0, "{err}");
    let twice = std::fs::read_to_string(t("twice/data_spectrum.csv")).unwrap();
    assert_eq!(column(&twice, "spread_max"), [0.0]);
    let (code, _, err) = eval("truth.csv", &["s1"], "alone");
    assert_eq!(code, 0, "{err}");
    let alone = std::fs::read_to_string(t("alone/data_spectrum.csv")).unwrap();
    assert_eq!(column(&twice, "error_max"), column(&alone, "error_max"));

    // Bad input: a missing column names it; --data with --eps is refused; nothing is written.
    std::fs::write(t("bad.csv"), "trajectory,t,eps,y\ntr0,0,0.1,1\n").unwrap();
    let (code, _, err) = eval("bad.csv", &["s1"], "bad");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.csv") && err.contains("missing column"), "{err}");
    assert!(!Path::new(&t("bad")).exists());
    let ck = t("s1/checkpoint.json").display().to_string();
    let data = t("truth.csv").display().to_string();
    let (code, _, err) = stiffx(&["eval", "--checkpoint", &ck, "--data", &data, "--eps", "0.1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--data") && err.contains("--eps"), "{err}");
}
