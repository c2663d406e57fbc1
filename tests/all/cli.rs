use std::process::Command;

/// Runs the binary: exit code, stdout, stderr (shared by the other CLI-driving test modules).
pub fn stiffx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stiffx")).args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_with(dir: &std::path::Path, edit: impl Fn(String) -> String) -> String {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.toml")).unwrap();
    let p = dir.join("c.toml");
    std::fs::write(&p, edit(base)).unwrap();
    p.to_string_lossy().into_owned()
}

fn assert_bad_input(args: &[&str], needles: &[&str]) {
    let (code, _, err) = stiffx(args);
    assert_eq!(code, 2, "exit code for {args:?}; stderr: {err}");
    assert!(!err.contains("panicked"), "no panic for {args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr for {args:?} mentions `{n}`: {err}");
    }
}

/// A reader that closed early (`stiffx list | head -1`) ends the command quietly, as SIGPIPE ends
/// `cat`, not with a panic on the failed print. The pipe's read end is closed before the command
/// starts, so its first print fails every time.
#[test]
fn a_closed_pipe_ends_the_output_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    for args in [&["list"][..], &["--help"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_stiffx"))
            .args(args)
            .stdout(writer.try_clone().expect("a second writer"))
            .output()
            .expect("binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.signal(), Some(13), "{args:?}: ended by SIGPIPE, not {:?}: {stderr}", out.status);
    }
}

#[test]
fn list_shows_every_plugin() {
    let (code, out, _) = stiffx(&["list"]);
    assert_eq!(code, 0);
    for n in ["davis-skodje", "asinh", "identity", "cloud", "trajectory", "burst", "direct", "finite-difference"] {
        assert!(out.contains(n), "{n} in {out}");
    }
}

#[test]
fn unknown_names_are_rejected() {
    assert_bad_input(&["run", "--system", "nope"], &["unknown system `nope`", "davis-skodje"]);
    assert_bad_input(&["run", "--transform", "log"], &["unknown transform", "asinh, identity"]);
    assert_bad_input(&["run", "--sampler", "grid"], &["unknown sampler", "cloud, data, trajectory"]);
    assert_bad_input(&["run", "--labeller", "x"], &["unknown labeller", "burst, direct, finite-difference"]);
    assert_bad_input(
        &["run", "--backend", "metal2"],
        &["--backend", "metal2", "flex, ndarray, wgpu, tch, tch-cuda, tch-mps"],
    );
    // Every enumerated flag is a clap value enum: the message lists the possible values.
    assert_bad_input(&["run", "--jacobian", "central"], &["--jacobian", "forward", "reverse"]);
    assert_bad_input(&["bench", "--only", "gemm"], &["--only", "train", "sobolev", "burst"]);
}

#[test]
fn a_backend_that_is_not_compiled_in_names_its_feature_and_bench_flags_are_checked() {
    for (backend, feature) in [("tch-cuda", "tch"), ("wgpu", "wgpu")] {
        if !stiffx::backend::Backend::compiled().iter().any(|b| b.to_string() == backend) {
            assert_bad_input(&["bench", "--backend", backend], &[backend, &format!("--features {feature}")]);
        }
    }
    assert_bad_input(&["bench", "--batch", "0", "--only", "train"], &["--batch", "positive"]);
    assert_bad_input(&["bench", "--shards", "1,0", "--only", "train"], &["--shards", "positive"]);
    assert_bad_input(&["bench", "--points", "0", "--only", "jacobian"], &["--points", "positive"]);
    // Sizes with no upper bound but memory: refused with the estimate and the limit, before allocating.
    let huge = &["--max-memory", "1G", "bench", "--batch", "100000000000", "--only", "train"];
    assert_bad_input(huge, &["--batch", "TB", "memory limit"]);
    let huge = &["--max-memory", "1G", "bench", "--points", "10000000000", "--only", "jacobian"];
    assert_bad_input(huge, &["--points", "TB", "memory limit"]);
}

#[test]
fn out_of_range_values_name_the_field() {
    let d = tempfile::tempdir().unwrap();
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(Edit, Vec<&str>)> = vec![
        (
            Box::new(|s: String| s.replace("train_eps = [0.05, 0.1, 0.2]", "train_eps = [0.05, -0.1]")),
            vec!["eps", "-0.1", "> 0"],
        ),
        (Box::new(|s: String| s.replace("k = 2", "k = -1")), vec!["sampler.k", "-1", ">= 0"]),
        (Box::new(|s: String| s.replace("k = 2", "k = 2\nr_off = 1.5")), vec!["sampler.r_off", "1.5", "[0, 1]"]),
        (
            Box::new(|s: String| s.replace("type = \"direct\"", "type = \"burst\"\ntau = 0.0")),
            vec!["labeller.tau", "> 0"],
        ),
        (Box::new(|s: String| s.replace("batch = 64", "batch = 0")), vec!["train.batch", ">= 1"]),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\nweighting = \"relative\"\nweight_floor = 0")),
            vec!["train.weight_floor", "> 0"],
        ),
        (
            Box::new(|s: String| {
                s.replace("batch = 64", "batch = 64\nweighting = \"relative\"\nweight_floor = [0.01]")
            }),
            vec!["train.weight_floor", "a list of 2"],
        ),
        (Box::new(|s: String| s.replace("batch = 64", "batch = 64\ndifference = -1")), vec!["train.difference", "≥ 0"]),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\ndifference = 1\ndifference_floor = 0")),
            vec!["train.difference_floor", "> 0"],
        ),
        (Box::new(|s: String| s.replace("batch = 64", "batch = 64\njacobian = -1")), vec!["train.jacobian", "≥ 0"]),
        (Box::new(|s: String| s.replace("batch = 64", "batch = 64\nlbfgs = -3")), vec!["train.lbfgs", "-3", ">= 0"]),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\nprecision = \"f16\"")),
            vec!["precision", "f16", "f32", "f64"],
        ),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\nlbfgs = 10\nlbfgs_history = 0")),
            vec!["train.lbfgs_history", ">= 1"],
        ),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\njacobian = 1\njacobian_floor = 0")),
            vec!["train.jacobian_floor", "> 0"],
        ),
        (
            Box::new(|s: String| {
                s.replace("type = \"direct\"", "type = \"burst\"").replace("batch = 64", "batch = 64\njacobian = 1")
            }),
            vec!["train.jacobian", "burst", "labeller.type = \"direct\""],
        ),
        (
            Box::new(|s: String| {
                s.replace("k = 2", "k = 2\nkeep_base = false").replace("batch = 64", "batch = 64\njacobian = 1")
            }),
            vec!["train.jacobian", "no trajectory points", "keep_base = false"],
        ),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\nweighting = \"relativ\"")),
            vec!["relativ", "uniform", "relative"],
        ),
        (
            Box::new(|s: String| s.replace("epochs = 30", "epochs = 30\nlearning_rate = 1")),
            vec!["unknown field `learning_rate`", "c.toml"],
        ),
        (Box::new(|s: String| s.replace("hidden = 2", "hidden = \"two\"")), vec!["hidden", "c.toml"]),
        (Box::new(|s: String| s.replace("[model]", "[model")), vec!["c.toml"]),
        (Box::new(|s: String| s.replace("type = \"asinh\"", "type = \"log\"")), vec!["log", "asinh", "identity"]),
        (Box::new(|s: String| s.replace("k = 2", "k = 2\npositivity = -1")), vec!["sampler.positivity", ">= 0"]),
        (
            Box::new(|s: String| s.replace("hidden = 2", "hidden = 2\nactivation = \"relu\"")),
            vec!["relu", "silu", "exp"],
        ),
        (
            Box::new(|s: String| s.replace("hidden = 2", "hidden = 2\nstate_input = \"ln\"")),
            vec!["ln", "linear", "asinh", "log"],
        ),
        (
            Box::new(|s: String| s.replace("batch = 64", "batch = 64\norder_l1 = 0.01")),
            vec!["train.order_l1", "model.activation = \"exp\"", "model.state_input = \"log\""],
        ),
        (Box::new(|s: String| s.replace("batch = 64", "batch = 64\norder_l1 = -1")), vec!["train.order_l1", "-1"]),
        (
            Box::new(|s: String| s.replace("k = 2", "k = 2\nboundary_quantile = 1.5")),
            vec!["sampler.boundary_quantile", "[0, 1)"],
        ),
        (
            Box::new(|s: String| s.replace("k = 2", "k = 2\nboundary_quantile = 0.2")),
            vec!["sampler.boundary_quantile", "sampler.positivity > 0"],
        ),
        (
            Box::new(|s: String| s.replace("[model]", "[model]\nstate_quantile = 2")),
            vec!["model.state_quantile", "[0, 1]"],
        ),
        (
            Box::new(|s: String| s.replace("[model]", "[model]\nstate_quantile = [0.05, 0.5, 0.5]")),
            vec!["model.state_quantile", "a list of 2", "one per state component"],
        ),
        (
            Box::new(|s: String| s.replace("[model]", "[model]\nstate_quantile = [0.05, -1]")),
            vec!["model.state_quantile", "-1", "[0, 1]"],
        ),
        (
            Box::new(|s: String| s.replace("[model]", "[model]\nstate_quantile = \"high\"")),
            vec!["state_quantile", "a number or a list of numbers", "model.state_quantile: in [0, 1]"],
        ),
        (Box::new(|s: String| s.replace("[eval]", "[eval]\nspacing = \"log\"")), vec!["eval.integrator", "rk4", "bdf"]),
        (
            Box::new(|s: String| s.replace("[eval]", "[eval]\nspacing = \"log\"\nintegrator = \"bdf\"\nt_first = 10")),
            vec!["eval.t_first", "10", "less than eval.horizon"],
        ),
        (
            Box::new(|s: String| {
                s.replace("type = \"davis-skodje\"", "type = \"robertson\"")
                    .replace("[model]", "[model]\neliminate = [3]")
            }),
            vec!["model.eliminate", "[3]", "one per invariant"],
        ),
        // Fields of systems and transforms (issue 24): checked before any work, never a panic.
        (
            Box::new(|s: String| {
                s.replace("train_eps = [0.05, 0.1, 0.2]", "train_eps = [0.05, 0.1, 0.2]\ny0_min = nan")
            }),
            vec!["system.y0_min", "NaN", "finite"],
        ),
        (
            Box::new(|s: String| {
                s.replace("train_eps = [0.05, 0.1, 0.2]", "train_eps = [0.05, 0.1, 0.2]\ny0_min = 3.0\ny0_max = 1.0")
            }),
            vec!["system.y0_min", "at most system.y0_max (1)"],
        ),
        (
            Box::new(|s: String| {
                s.replace("train_eps = [0.05, 0.1, 0.2]", "train_eps = [0.05, 0.1, 0.2]\ndz_max = inf")
            }),
            vec!["system.dz_max", "inf"],
        ),
        (
            Box::new(|s: String| {
                s.replace("type = \"davis-skodje\"", "type = \"robertson\"\nk1 = nan").replace("0.05, 0.1, 0.2", "1.0")
            }),
            vec!["system.k1", "NaN", "> 0"],
        ),
        (
            Box::new(|s: String| {
                s.replace("type = \"davis-skodje\"", "type = \"michaelis-menten\"\nk = 1.0\nlam = 2.0")
                    .replace("0.05, 0.1, 0.2", "0.1")
            }),
            vec!["system.lam", "(0, system.k = 1)"],
        ),
        (
            Box::new(|s: String| s.replace("type = \"asinh\"", "type = \"asinh\"\nscales = [nan, 1.0]")),
            vec!["transform.scales[0]", "NaN"],
        ),
        (
            Box::new(|s: String| s.replace("type = \"asinh\"", "type = \"asinh\"\nquantile = 1.5")),
            vec!["transform.quantile", "(0, 1)"],
        ),
        // A wrong type inside a plugin table names the key and its line, not only the table's header.
        (
            Box::new(|s: String| s.replace("k = 2", "k = \"two\"")),
            vec!["the value at fault is `sampler.k` (line 10)", "expected i64"],
        ),
        (
            Box::new(|s: String| s.replace("dt = 0.05", "dt = [0.05]")),
            vec!["the value at fault is `sampler.base.dt` (line 16)"],
        ),
        // Each value of an eps list is named by its place.
        (Box::new(|s: String| s.replace("[0.05, 0.1, 0.2]", "[0.05, nan]")), vec!["system.train_eps[1]", "NaN"]),
        (
            Box::new(|s: String| s.replace("horizon = 1.0", "horizon = 1.0\neps = [0.05, 0.1, -2.0]")),
            vec!["eval.eps[2]", "-2"],
        ),
        // Counts that would overflow or exhaust memory: refused with the estimate, not allocated.
        (
            Box::new(|s: String| s.replace("dt = 0.05", "dt = 1e-300")),
            vec!["sampler.base.dt", "at most 1e7 output times"],
        ),
        (
            Box::new(|s: String| s.replace("horizon = 1.0", "horizon = 1.0\ndt = 1e-300")),
            vec!["eval.dt", "at most 1e7 output times"],
        ),
        (Box::new(|s: String| s.replace("width = 16", "width = 100000000")), vec!["model.width", "TB", "--max-memory"]),
        (
            Box::new(|s: String| s.replace("per_eps = 2", "per_eps = 1000000000000")),
            vec!["sampler", "per_eps", "TB", "memory limit"],
        ),
        (Box::new(|s: String| s.replace("k = 2", "k = 100000000000")), vec!["sampler", "TB", "memory limit"]),
    ];
    let out = d.path().join("o");
    for (edit, needles) in cases {
        let p = config_with(d.path(), edit);
        assert_bad_input(&["run", "--config", &p, "--out", out.to_str().unwrap(), "--quiet"], &needles);
        assert!(!out.exists(), "nothing written for {needles:?}");
    }
    // --max-memory: a config that fits the machine is refused under a smaller limit, with both sizes;
    // the same config runs under a larger one; a bad size names the flag.
    let p = config_with(d.path(), |s| s.replace("k = 2", "k = 20000"));
    assert_bad_input(
        &["run", "--config", &p, "--out", out.to_str().unwrap(), "--quiet", "--max-memory", "100M"],
        &["sampler", "787.2 MB", "memory limit of 104.9 MB"],
    );
    assert!(!out.exists());
    assert_bad_input(&["list", "--max-memory", "12X"], &["--max-memory", "12X", "512M"]);
    assert_bad_input(&["run", "--epochs", "0"], &["train.epochs"]);
    assert_bad_input(&["run", "--lbfgs", "25"], &["train.lbfgs", "25", "multiple of 10"]);
    assert_bad_input(&["run", "--precision", "f65"], &["--precision", "auto, f32, f64"]);
    assert_bad_input(&["run", "--train-precision", "f16"], &["--train-precision", "f16", "f32, f64"]);
    assert_bad_input(&["eval", "--checkpoint", d.path().join("missing.json").to_str().unwrap()], &["missing.json"]);
    assert_bad_input(&["run", "--config", d.path().join("missing.toml").to_str().unwrap()], &["missing.toml"]);
}

#[test]
fn run_then_eval_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.toml");
    let (code, stdout, err) = stiffx(&["run", "--config", cfg, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("grid mean"), "{stdout}");
    // Pointwise errors: printed, per eps in per_eps.csv (the worst point's state has d = 2 numbers), and
    // over the run in metrics.json, whose worst point is the worst of the per-eps worst points.
    assert!(stdout.contains("pointwise over") && stdout.contains("worst point: eps"), "{stdout}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let per_eps = m["eval"]["per_eps"].as_array().unwrap();
    let worst = per_eps.iter().map(|e| e["all_rel_max"].as_f64().unwrap()).fold(0.0, f64::max);
    let p = &m["eval"]["grid_mean"]["pointwise"];
    assert_eq!(p["all_rel"]["max"].as_f64(), Some(worst), "{p}");
    assert_eq!(p["worst_point"]["rel"].as_f64(), Some(worst), "{p}");
    assert_eq!(p["worst_point"]["state"].as_array().unwrap().len(), 2, "{p}");
    let total: u64 = per_eps.iter().map(|e| e["points"].as_u64().unwrap()).sum();
    assert_eq!(p["points"].as_u64(), Some(total), "{p}");
    for e in per_eps {
        let q: Vec<f64> = ["fast_rel_p50", "fast_rel_p95", "fast_rel_p99", "fast_rel_max"]
            .iter()
            .map(|k| e[*k].as_f64().unwrap())
            .collect();
        assert!(q.windows(2).all(|w| w[0] <= w[1]) && e["fast_rel"].as_f64().unwrap() <= q[3], "{e}");
        assert_eq!(
            e["worst_state"].as_str().unwrap().split(' ').filter(|v| v.parse::<f64>().is_ok()).count(),
            2,
            "{e}"
        );
    }
    let ck = out.join("checkpoint.json");
    let (code, stdout, err) = stiffx(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--eps",
        "0.05,0.15",
        "--out",
        d.path().join("ev").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("0.15"), "{stdout}");
    assert_bad_input(&["eval", "--checkpoint", ck.to_str().unwrap(), "--eps", "0"], &["--eps", "> 0"]);
    // The learned operator at two states against the exact Davis–Skodje one (λ = −1/eps, −1).
    let ins = d.path().join("inspect.json");
    let (code, stdout, err) = stiffx(&[
        "inspect",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--eps",
        "0.1",
        "--state",
        "1,0.5",
        "--state",
        "0.5,0.2",
        "--out",
        ins.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("Jacobian, learned | exact") && stdout.contains("eigenvalues"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ins).unwrap()).unwrap();
    let num = |x: &serde_json::Value| x.as_f64().unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    for p in v.as_array().unwrap() {
        let (y, z) = (num(&p["state"][0]), num(&p["state"][1]));
        assert!((num(&p["rhs_exact"][0]) + y).abs() < 1e-12);
        assert!((num(&p["rhs_exact"][1]) + (z - y / (1.0 + y)) / 0.1).abs() < 1e-9);
        assert!((num(&p["eigenvalues_exact"][0][0]) + 10.0).abs() < 1e-9, "{p}");
        assert!((num(&p["eigenvalues_exact"][1][0]) + 1.0).abs() < 1e-9, "{p}");
        // The learned eigenvalues are those of the learned Jacobian (trace and determinant, 2 × 2).
        let j: Vec<f64> = p["jacobian_learned"].as_array().unwrap().iter().map(num).collect();
        let l: Vec<[f64; 2]> =
            p["eigenvalues_learned"].as_array().unwrap().iter().map(|e| [num(&e[0]), num(&e[1])]).collect();
        let scale = j.iter().map(|x| x.abs()).fold(1.0, f64::max);
        assert!((l[0][0] + l[1][0] - (j[0] + j[3])).abs() < 1e-9 * scale, "{p}");
        let det = l[0][0] * l[1][0] - l[0][1] * l[1][1];
        assert!((det - (j[0] * j[3] - j[1] * j[2])).abs() < 1e-9 * scale * scale, "{p}");
    }
    assert_bad_input(
        &["inspect", "--checkpoint", ck.to_str().unwrap(), "--eps", "0.1", "--state", "1,2,3"],
        &["--state", "2 comma-separated"],
    );
    assert_bad_input(
        &["inspect", "--checkpoint", ck.to_str().unwrap(), "--eps", "0", "--state", "1,2"],
        &["--eps", "> 0"],
    );
    assert_bad_input(
        &["eval", "--checkpoint", ck.to_str().unwrap(), "--integrator", "euler"],
        &["--integrator", "bdf"],
    );
    assert_bad_input(&["eval", "--checkpoint", ck.to_str().unwrap(), "--horizon", "-1"], &["--horizon", "> 0"]);
    assert_bad_input(&["eval", "--checkpoint", ck.to_str().unwrap(), "--horizon", "1e-9"], &["--horizon", "eval.dt"]);
    // A longer horizon: 3 test trajectories × 201 points instead of × 101 (t = 0…2 at Δt = 0.01).
    let ev_h = d.path().join("ev_h");
    let (code, _, err) =
        stiffx(&["eval", "--checkpoint", ck.to_str().unwrap(), "--horizon", "2", "--out", ev_h.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let per_eps = std::fs::read_to_string(ev_h.join("per_eps.csv")).unwrap();
    assert!(per_eps.lines().skip(1).all(|l| l.split(',').nth(8) == Some("603")), "{per_eps}");
    // Implicit rollouts with the learned Jacobian at a stiffness 50× beyond the training grid.
    let (code, stdout, err) = stiffx(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--eps",
        "0.001",
        "--integrator",
        "bdf",
        "--out",
        d.path().join("ev_bdf").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("0.001"), "{stdout}");
    // A second seed, then both checkpoints averaged on the unseen grid (Fig. 10).
    let out2 = d.path().join("run2");
    let (code, _, err) =
        stiffx(&["run", "--config", cfg, "--seed", "2", "--out", out2.to_str().unwrap(), "--quiet", "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out2.join("figures").exists());
    let ck2 = out2.join("checkpoint.json");
    assert_bad_input(&["eval", "--checkpoint", ck.to_str().unwrap(), ck2.to_str().unwrap()], &["--out"]);
    let ev = d.path().join("ev2");
    let (code, stdout, err) = stiffx(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        ck2.to_str().unwrap(),
        "--unseen",
        "--ensemble",
        "--out",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("mean of 2 checkpoints") && stdout.contains("ensemble of 2 checkpoints"), "{stdout}");
    // Two checkpoints share the reference and a stacked Jacobian pass; each one's metrics are those of
    // it evaluated alone.
    for (i, c) in [&ck, &ck2].iter().enumerate() {
        let alone = d.path().join(format!("alone{i}"));
        let (code, _, err) =
            stiffx(&["eval", "--checkpoint", c.to_str().unwrap(), "--unseen", "--out", alone.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let read =
            |p: std::path::PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(
            read(ev.join(format!("checkpoint{}", i + 1)).join("per_eps.csv")),
            read(alone.join("per_eps.csv")),
            "checkpoint {}",
            i + 1
        );
    }
    // The ensemble (mean field): per-eps metrics and the members' spread, on the same 11 eps.
    for f in ["per_eps.csv", "ensemble.csv"] {
        let rows = std::fs::read_to_string(ev.join("ensemble").join(f)).unwrap();
        assert_eq!(rows.lines().count(), 1 + 3 + 8, "{f}: {rows}");
    }
    assert_bad_input(
        &["eval", "--checkpoint", ck.to_str().unwrap(), "--ensemble", "--out", ev.to_str().unwrap()],
        &["--ensemble", "at least two checkpoints"],
    );
    let curve = std::fs::read_to_string(ev.join("eps_curve.csv")).unwrap();
    // 3 training + 8 unseen eps, each averaged over the 2 checkpoints, then the ensemble's 11.
    assert_eq!(curve.lines().count(), 1 + 2 * (3 + 8), "{curve}");
    assert!(curve.lines().skip(1).take(11).all(|l| l.starts_with("mean of 2 checkpoints,") && l.contains(",2,")));
    assert!(curve.lines().skip(12).all(|l| l.starts_with("ensemble of 2 checkpoints,") && l.contains(",1,")));
    assert!(ev.join("errors_vs_eps.png").is_file() && ev.join("checkpoint2/per_eps.csv").is_file());
}

#[test]
fn diagnose_writes_statistics_for_base_and_cloud() {
    let d = tempfile::tempdir().unwrap();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.toml");
    let (code, stdout, err) = stiffx(&["diagnose", "--config", cfg, "--out", d.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("| base | y |") && stdout.contains("| all | z |"), "{stdout}");
    let csv = std::fs::read_to_string(d.path().join("diagnostics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4);
    let hist = std::fs::read_to_string(d.path().join("histograms.csv")).unwrap();
    assert_eq!(hist.lines().count(), 1 + 2 * 2 * 2 * 48);
    let qq = std::fs::read_to_string(d.path().join("qq.csv")).unwrap();
    assert_eq!(qq.lines().count(), 1 + 2 * 2 * 2 * 200);
    for f in ["histograms.png", "qq.png", "diagnostics.md"] {
        assert!(d.path().join(f).is_file(), "{f}");
    }
}

/// `stiffx bench --only models`: one network alone, then each `--models` M trained together, then
/// M networks' Jacobians stacked and one by one, every rate positive; `--models 0` is refused naming
/// the flag.
#[test]
fn bench_models_measures_networks_trained_together() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("bench.json");
    let args = [
        "bench",
        "--only",
        "models,models-jacobian",
        "--models",
        "1,3",
        "--batch",
        "256",
        "--shards",
        "1",
        "--reps",
        "1",
        "--points",
        "500",
    ];
    let (code, _, err) = stiffx(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let what: Vec<&str> = rows.iter().map(|r| r["what"].as_str().unwrap()).collect();
    let name = |m: usize, how: &str| format!("models {m} x 4x128 batch 256, 1 shard(s), {how} (flex)");
    let jac =
        |m: usize, p: &str, how: &str| format!("models {m} x 4x128 jacobian+eig 500 points Forward {p}, {how} (flex)");
    assert_eq!(
        what,
        [
            name(1, "alone"),
            name(1, "together"),
            name(3, "together"),
            jac(1, "F32", "one by one"),
            jac(3, "F32", "stacked"),
            jac(3, "F32", "one by one"),
            jac(1, "F64", "one by one"),
            jac(3, "F64", "stacked"),
            jac(3, "F64", "one by one"),
        ]
    );
    assert!(rows.iter().all(|r| r["median"].as_f64().unwrap() > 0.0), "{rows:?}");
    assert_bad_input(&["bench", "--only", "models", "--models", "0"], &["--models", "positive integers"]);
}

/// Runs `stiffx bench --only <part> --reps 1 --batch 256` and returns the JSON rows it writes, with
/// their `what` names.
fn bench_rows(part: &str) -> (Vec<serde_json::Value>, Vec<String>) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("bench.json");
    let (code, _, err) =
        stiffx(&["bench", "--only", part, "--reps", "1", "--batch", "256", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let what = rows.iter().map(|r| r["what"].as_str().unwrap().to_string()).collect();
    (rows, what)
}

/// `stiffx bench --only precision`: f32 and f64 training rates side by side, and their ratio, per
/// batch size, written to the JSON file.
#[test]
fn bench_precision_measures_f64_against_f32_training() {
    let (rows, what) = bench_rows("precision");
    assert_eq!(
        what,
        [
            "precision: train 4x128 batch 256, f32 (flex)",
            "precision: train 4x128 batch 256, f64 (flex)",
            "precision: train 4x128 batch 256, f64 / f32 throughput (flex)"
        ]
    );
    let m = |i: usize| rows[i]["median"].as_f64().unwrap();
    assert!(m(0) > 0.0 && m(1) > 0.0 && (m(2) - m(1) / m(0)).abs() < 1e-9 * m(2), "{rows:?}");
}

/// `stiffx bench --only crnn`: the reaction network's training rate beside the MLP's, with their ratio.
#[test]
fn bench_crnn_measures_the_reaction_network_against_the_mlp() {
    let (rows, what) = bench_rows("crnn");
    let name = |p: &str| format!("crnn: train batch 256, {p} (flex)");
    assert_eq!(what, ["MLP 4x128 f32", "MLP 4x128 f64", "CRNN 1x3 f64", "CRNN f64 / MLP f32 throughput"].map(name));
    let m = |i: usize| rows[i]["median"].as_f64().unwrap();
    assert!(m(0) > 0.0 && m(2) > 0.0 && (m(3) - m(2) / m(0)).abs() < 1e-9 * m(3), "{rows:?}");
}

/// With stderr not a terminal (a cluster job's log; here a pipe), training progress comes as plain
/// lines — the first and the last epoch at least — not as a bar that prints nothing; `--quiet`
/// silences them.
#[test]
fn progress_in_a_log_is_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml");
    let out = dir.path().join("o");
    let (code, _, err) =
        stiffx(&["run", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--no-figures"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("train 1/30 (3 %): loss ") && err.contains("train 30/30 (100 %): loss "), "{err}");
    assert!(err.contains("best epoch") && err.contains("ETA"), "{err}");
    let quiet = dir.path().join("q");
    let (code, _, err) = stiffx(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        quiet.to_str().unwrap(),
        "--no-figures",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("train 1/30"), "{err}");
}
