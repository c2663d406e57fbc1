//! A file of trajectories as the only input of `stiffx run` (no `[system]`: the `data` system,
//! `src/plugins/data_system.rs`). Two code paths, one network: the same file learned with Davis–Skodje
//! named and with no system at all gives bit-identical weights (nothing of training touches the
//! system), the run without a system rolls out held-out trajectories exactly as `stiffx eval --data`
//! does, and `stiffx eval --system davis-skodje` of its checkpoint reproduces the named run's
//! spectral metrics. What needs a right-hand side is refused with the field named (ten cases).

use std::fmt::Write;
use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use stiffx::plugins::sampler::{Sampler, TrajectorySampler};

use crate::cli::stiffx;

/// Davis–Skodje trajectories (`per_eps` at each of `grid`, seed `seed`) as a CSV file.
fn write_trajectories(path: &Path, grid: &[f64], per_eps: i64, seed: u64) {
    let sys = stiffx::plugins::registry::system("davis-skodje").unwrap();
    let set = TrajectorySampler { per_eps, horizon: 2.0, dt: 0.05, ..Default::default() }
        .sample(sys.as_ref(), grid, &mut StdRng::seed_from_u64(seed))
        .unwrap();
    let mut text = String::from("trajectory,t,eps,y,z\n");
    for (k, tr) in set.trajectories.iter().enumerate() {
        for (t, x) in tr.times.iter().zip(tr.states.chunks(2)) {
            writeln!(text, "tr{k},{t:e},{:e},{:e},{:e}", tr.eps, x[0], x[1]).unwrap();
        }
    }
    std::fs::write(path, text).unwrap();
}

/// The config learning `data` (held-out trajectories `held`), with `system` as its `[system]` table.
fn config(data: &Path, held: &Path, system: &str) -> String {
    format!(
        "seed = 3\n{system}\n[sampler]\ntype = \"data\"\npath = \"{}\"\n[labeller]\ntype = \"finite-difference\"\norder = 4\n\
         [transform]\ntype = \"asinh\"\n[model]\nhidden = 2\nwidth = 16\n[train]\nepochs = 15\nbatch = 64\nlr = 3e-3\n\
         [eval]\nhorizon = 1.0\ndata = \"{}\"\n",
        data.display(),
        held.display()
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The values of CSV column `name`.
fn column(text: &str, name: &str) -> Vec<String> {
    let mut lines = text.lines();
    let k = lines.next().unwrap().split(',').position(|h| h == name).unwrap_or_else(|| panic!("column {name}"));
    lines.map(|l| l.split(',').nth(k).unwrap().to_string()).collect()
}

#[test]
fn a_file_alone_learns_the_network_its_system_would_and_is_evaluated_on_trajectories() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p);
    let grid = [0.05, 0.1, 0.2];
    write_trajectories(&t("train.csv"), &grid, 4, 1);
    write_trajectories(&t("held.csv"), &grid, 2, 2);
    let named =
        config(&t("train.csv"), &t("held.csv"), "[system]\ntype = \"davis-skodje\"\ntrain_eps = [0.05, 0.1, 0.2]");
    let alone = config(&t("train.csv"), &t("held.csv"), "");
    std::fs::write(t("named.toml"), named).unwrap();
    std::fs::write(t("alone.toml"), alone).unwrap();
    for (cfg, out) in [("named.toml", "named"), ("alone.toml", "alone")] {
        let (cfg_path, out_path) = (t(cfg).display().to_string(), t(out).display().to_string());
        let (code, stdout, err) =
            stiffx(&["run", "--config", &cfg_path, "--quiet", "--no-figures", "--out", &out_path]);
        assert_eq!(code, 0, "{cfg}: {err}");
        assert!(stdout.contains("held-out trajectories"), "{cfg}: {stdout}");
    }
    // What the file was read as, before any work.
    let cfg_path = t("alone.toml").display().to_string();
    let (code, stdout, err) =
        stiffx(&["run", "--config", &cfg_path, "--check", "--out", t("unused").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("the file is the system: 2 species (y, z), eps 0.05, 0.1, 0.2; conservation laws: none"),
        "{stdout}"
    );
    // The resolved system: the file's species and grid.
    let resolved: toml::Table = toml::from_str(&read(&t("alone/config.toml"))).unwrap();
    let sys = &resolved["system"];
    assert_eq!(sys["type"].as_str(), Some("data"));
    assert_eq!(sys["species"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>(), ["y", "z"]);
    assert_eq!(sys["train_eps"].as_array().unwrap().iter().map(|v| v.as_float().unwrap()).collect::<Vec<_>>(), grid);
    assert_eq!(sys["test_states"].as_array().unwrap().len(), 6, "12 first states, every second");
    // Training never touched the system: the same weights, bit for bit.
    let weights = |d: &str| std::fs::read(t(d).join("checkpoint.safetensors")).unwrap();
    assert_eq!(weights("named"), weights("alone"));
    // The run without a system: trajectories only, no spectral files.
    for f in ["per_eps.csv", "traces.csv"] {
        assert!(t("named").join(f).exists() && !t("alone").join(f).exists(), "{f}");
    }
    let metrics: serde_json::Value = serde_json::from_str(&read(&t("alone/metrics.json"))).unwrap();
    assert!(metrics.get("eval").is_none() && metrics["data"]["trajectories"] == 6, "{metrics}");
    assert!(metrics["data"]["in_sample"] == false && metrics["label_bias"].as_array().unwrap().is_empty());
    let max_rel = metrics["data"]["rollout_max_rel"].as_f64().unwrap();
    assert!(max_rel > 0.0 && max_rel < 0.5, "{max_rel}");
    // Same rollouts from the run as from `stiffx eval --data` (the CLI's path), and as the named run's.
    let rollouts = read(&t("alone/data_rollouts.csv"));
    assert_eq!(rollouts, read(&t("named/data_rollouts.csv")));
    let ck = t("alone/checkpoint.json");
    let (code, _, err) = stiffx(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--data",
        t("held.csv").to_str().unwrap(),
        "--out",
        t("eval_data").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(&t("eval_data/data_rollouts.csv")), rollouts);
    // The learned time scales are there without a reference; the error only with one.
    let (alone_sp, named_sp) = (read(&t("alone/data_spectrum.csv")), read(&t("named/data_spectrum.csv")));
    assert_eq!(column(&alone_sp, "fast_p50"), column(&named_sp, "fast_p50"));
    assert!(column(&alone_sp, "error_max").iter().all(|v| v == "NaN"), "{alone_sp}");
    let errs: Vec<f64> = column(&named_sp, "error_max").iter().map(|v| v.parse().unwrap()).collect();
    assert!(errs.iter().all(|e| e.is_finite() && *e > 0.0), "{named_sp}");
    // Against the true system named afterwards: the named run's own spectral metrics.
    let (code, _, err) = stiffx(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--system",
        "davis-skodje",
        "--eps",
        "0.05,0.1,0.2",
        "--out",
        t("eval_truth").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(&t("eval_truth/per_eps.csv")), read(&t("named/per_eps.csv")));

    // What needs the RHS is refused, naming the field, exit 2.
    let refused = |args: &[&str], want: &[&str]| {
        let (code, _, err) = stiffx(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{args:?}: `{w}` not in: {err}");
        }
    };
    refused(&["eval", "--checkpoint", ck.to_str().unwrap()], &["`system`", "--data", "--system"]);
    refused(&["eval", "--checkpoint", ck.to_str().unwrap(), "--system", "robertson"], &["--system", "y, z"]);
    refused(&["inspect", "--checkpoint", ck.to_str().unwrap(), "--eps", "0.1", "--state", "1,0.5"], &["`system`"]);
    let bad = |name: &str, text: String| {
        std::fs::write(t(name), text).unwrap();
        t(name).display().to_string()
    };
    let base = read(&t("alone.toml"));
    let direct = bad("direct.toml", base.replace("type = \"finite-difference\"\norder = 4", "type = \"direct\""));
    refused(&["run", "--config", &direct, "--check"], &["labeller.type", "finite-difference"]);
    let traj = bad(
        "traj.toml",
        format!(
            "[system]\ntype = \"data\"\nfile = \"{}\"\n[sampler]\ntype = \"trajectory\"\n",
            t("train.csv").display()
        ),
    );
    refused(&["run", "--config", &traj, "--check"], &["sampler.type", "\"data\""]);
    let invariants =
        bad("inv.toml", base.replace("seed = 3\n", "seed = 3\n[system]\ntype = \"data\"\ninvariants = [[1.0]]\n"));
    refused(&["run", "--config", &invariants, "--check"], &["system.invariants[0]", "y, z"]);
    let missing = bad("missing.toml", base.replace("train.csv", "nowhere.csv"));
    refused(&["run", "--config", &missing, "--check"], &["nowhere.csv"]);
    let other =
        bad("other.toml", base.replace("seed = 3\n", "seed = 3\n[system]\ntype = \"data\"\nfile = \"held.csv\"\n"));
    refused(&["run", "--config", &other, "--check"], &["system.file", "sampler.path"]);
    let jacobian = bad("jac.toml", base.replace("[train]\n", "[train]\njacobian = 1.0\n"));
    refused(&["run", "--config", &jacobian, "--check"], &["train.jacobian", "data file"]);
    // A comparison's tables are spectral: refused before any run.
    let alone = t("alone.toml").display().to_string();
    let cmp_out = t("cmp").display().to_string();
    refused(
        &[
            "compare",
            "--config",
            &alone,
            "--systems",
            "data",
            "--transforms",
            "asinh",
            "--samplers",
            "data",
            "--seeds",
            "1",
            "--out",
            &cmp_out,
        ],
        &["`system`", "comparison"],
    );
    assert!(!t("cmp").join("compare.md").exists());
}
