//! Systems defined by mechanism files (`type = "mechanism"`): the shipped Robertson mechanism against
//! the built-in `robertson` system, analytic Jacobians against finite differences, conservation laws,
//! the published POLLU and HIRES reference end states, bad-input messages, and an end-to-end run.

use std::time::Instant;

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use stiffx::ode::{Method, solve_at_with};
use stiffx::plugins::mechanism::MechanismSystem;
use stiffx::plugins::system::{StiffSystem, fd_jacobian};

fn path(rel: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).to_string_lossy().into_owned()
}

fn load(name: &str) -> MechanismSystem {
    MechanismSystem::from_file(&path(&format!("mechanisms/{name}.yaml"))).unwrap_or_else(|e| panic!("{e}"))
}

fn rel_err(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).abs().max() / b.abs().max().max(f64::MIN_POSITIVE)
}

#[test]
fn mechanism_robertson_yaml_reproduces_the_robertson_system() {
    let mech = load("robertson");
    let rob = stiffx::plugins::registry::system("robertson").unwrap();
    assert_eq!(mech.state_names(), rob.state_names());
    assert_eq!((mech.train_grid(), mech.unseen_grid()), (rob.train_grid(), rob.unseen_grid()));
    assert_eq!(mech.test_initial_states(), rob.test_initial_states());
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let x: Vec<f64> = (0..3).map(|_| 10f64.powf(rng.random_range(-8.0..0.0))).collect();
        let eps = 10f64.powf(rng.random_range(-1.0..1.0));
        let (mut f, mut g) = (vec![0.0; 3], vec![0.0; 3]);
        mech.rhs(&x, eps, &mut f);
        rob.rhs(&x, eps, &mut g);
        let (f, g) = (DMatrix::from_vec(3, 1, f), DMatrix::from_vec(3, 1, g));
        assert!(rel_err(&f, &g) <= 1e-14, "rhs at {x:?}, eps {eps}: {f} vs {g}");
        let e = rel_err(&mech.jacobian(&x, eps), &rob.jacobian(&x, eps));
        assert!(e <= 1e-14, "jacobian at {x:?}, eps {eps}: rel err {e:e}");
    }
    assert_eq!(mech.invariants(), rob.invariants());
    // The default `mechanism` system is the shipped Robertson file.
    assert_eq!(&MechanismSystem::default().mechanism, &mech.mechanism);
}

#[test]
fn mechanism_analytic_jacobians_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(3);
    for name in ["pollu", "hires", "robertson"] {
        let sys = load(name);
        let d = sys.dim();
        for eps in [0.5, 1.0, 2.0] {
            for _ in 0..20 {
                let x: Vec<f64> = (0..d).map(|_| rng.random_range(0.01..1.0)).collect();
                let exact = sys.jacobian(&x, eps);
                let fd = fd_jacobian(|x, dx| sys.rhs(x, eps, dx), &x);
                let e = rel_err(&fd, &exact);
                assert!(e < 1e-7, "{name} eps {eps}: rel err {e:e}");
            }
        }
    }
}

#[test]
fn mechanism_conservation_laws_span_the_left_null_space() {
    for (name, count) in [("pollu", 3), ("hires", 1), ("robertson", 1)] {
        let sys = load(name);
        let s = sys.stoichiometry();
        let w = sys.invariants();
        assert_eq!(w.len(), count, "{name}: {w:?}");
        assert_eq!(w.len() + s.rank(1e-9), sys.dim(), "{name}: rank + laws = d");
        for v in &w {
            let wt = DMatrix::from_row_slice(1, v.len(), v);
            assert!((&wt * &s).abs().max() < 1e-12, "{name}: wᵀS ≠ 0 for {v:?}");
        }
    }
    // HIRES: Y7 + Y8.
    let hires = load("hires").invariants();
    assert_eq!(hires[0], vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
}

/// Integrates to the end time at eps = 1 and compares with the Test Set's published reference
/// (relative error ≤ 1e-5 for components above 1e-10 of the largest).
fn check_reference(name: &str, t_end: f64, want: &[f64]) -> f64 {
    let sys = load(name);
    let x0 = sys.test_initial_states()[0].clone();
    let start = Instant::now();
    let y = solve_at_with(&sys, 1.0, &x0, &[0.0, t_end], 1e-10, 1e-14, false, Method::Bdf).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let end = &y[want.len()..];
    let big = want.iter().cloned().fold(0.0, f64::max);
    for (k, (&got, &w)) in end.iter().zip(want).enumerate() {
        if w > 1e-10 * big {
            let rel = (got - w).abs() / w;
            assert!(rel <= 1e-5, "{name}: y{} = {got:e}, published {w:e} (rel {rel:e})", k + 1);
        }
    }
    eprintln!("{name}: BDF reference to t = {t_end} took {secs:.3} s");
    secs
}

#[test]
#[allow(clippy::excessive_precision)]
fn mechanism_pollu_matches_the_published_reference_at_t60() {
    let want = [
        0.5646255480022769e-01,
        0.1342484130422339e+00,
        0.4139734331099427e-08,
        0.5523140207484359e-02,
        0.2018977262302196e-06,
        0.1464541863493966e-06,
        0.7784249118997964e-01,
        0.3245075353396018e+00,
        0.7494013383880406e-02,
        0.1622293157301561e-07,
        0.1135863833257075e-07,
        0.2230505975721359e-02,
        0.2087162882798630e-03,
        0.1396921016840158e-04,
        0.8964884856898295e-02,
        0.4352846369330103e-17,
        0.6899219696263405e-02,
        0.1007803037365946e-03,
        0.1772146513969984e-05,
        0.5682943292316392e-04,
    ];
    check_reference("pollu", 60.0, &want);
}

#[test]
#[allow(clippy::excessive_precision)]
fn mechanism_hires_matches_the_published_reference() {
    let want = [
        0.7371312573325668e-3,
        0.1442485726316185e-3,
        0.5888729740967575e-4,
        0.1175651343283149e-2,
        0.2386356198831331e-2,
        0.6238968252742796e-2,
        0.2849998395185769e-2,
        0.2850001604814231e-2,
    ];
    check_reference("hires", 321.8122, &want);
}

const GOOD: &str = "species:\n- {name: A}\n- {name: B}\nreactions:\n- equation: A => B\n  rate-constant: 1.0\nstiffx:\n  train-eps: [1.0]\n  unseen-eps: [2.0]\n  initial: {A: [0, 1]}\n  test-states:\n  - {A: 1}\n  horizon: 1\n";

fn bad(text: &str, line: usize, needles: &[&str]) {
    let err = MechanismSystem::from_text(text, "bad.yaml").unwrap_err();
    eprintln!("{err}");
    assert!(err.starts_with(&format!("bad.yaml:{line}:")), "{err}");
    assert!(!err.contains("column"), "the location is written once, as file:line:column: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

#[test]
fn mechanism_bad_input_names_the_file_and_line() {
    assert!(MechanismSystem::from_text(GOOD, "good.yaml").is_ok());
    bad(&GOOD.replace("A => B", "A <=> B"), 5, &["reversible", "two irreversible"]);
    bad(&GOOD.replace("  rate-constant: 1.0\n", "  rate-constant: 1.0\n  colour: red\n"), 7, &["colour"]);
    bad(&GOOD.replace("A => B", "A => C"), 5, &["unknown species `C`"]);
    bad(&GOOD.replace("rate-constant: 1.0", "rate-constant: fast"), 6, &[]);
    bad(&GOOD.replace("{A: 1}", "{Q: 1}"), 12, &["unknown species `Q`"]);
    // Units: unknown units and keys, and a value whose dimension does not fit the reaction's order.
    bad(
        &format!("units: {{length: furlong}}\n{GOOD}"),
        1,
        &["units: length", "unknown unit `furlong`", "known: m, cm"],
    );
    bad(&format!("units: {{colour: red}}\n{GOOD}"), 1, &["unknown key `colour`", "allowed: length"]);
    bad(&GOOD.replace("rate-constant: 1.0", "rate-constant: 1.0 m^3/kmol/s"), 6, &["reaction 1", "order 1", "1/s"]);
    // Units convert: `1/min` and a file time unit of minutes are both 1/60 per second, and the
    // horizon (in the file's time unit) is stored in seconds.
    let per_min = MechanismSystem::from_text(&GOOD.replace("rate-constant: 1.0", "rate-constant: 1.0 1/min"), "m.yaml");
    let in_min = MechanismSystem::from_text(&format!("units: {{time: min}}\n{GOOD}"), "m.yaml").unwrap();
    assert_eq!(per_min.unwrap().mechanism.reactions[0].k, 1.0 / 60.0);
    assert_eq!(in_min.mechanism.reactions[0].k, 1.0 / 60.0);
    assert_eq!(in_min.mechanism.horizon, 60.0);
    // A missing file is named too.
    let err = MechanismSystem::from_file("no/such/mechanism.yaml").unwrap_err();
    assert!(err.contains("no/such/mechanism.yaml"), "{err}");
}

#[test]
fn mechanism_config_reads_the_file_and_stores_the_mechanism() {
    let toml = format!("type = \"mechanism\"\nfile = \"{}\"\n", path("mechanisms/hires.yaml"));
    let sys: Box<dyn StiffSystem> = toml::from_str(&toml).unwrap();
    assert_eq!(sys.dim(), 8);
    // The serialised form carries the mechanism; it reloads with the file gone.
    let mut v = serde_json::to_value(&sys).unwrap();
    v["file"] = serde_json::Value::String("gone.yaml".into());
    let back: Box<dyn StiffSystem> = serde_json::from_value(v).unwrap();
    assert_eq!(back.state_names(), sys.state_names());
    let err = toml::from_str::<Box<dyn StiffSystem>>("type = \"mechanism\"\nfile = \"gone.yaml\"\n").unwrap_err();
    assert!(err.to_string().contains("gone.yaml"), "{err}");
}

#[test]
fn mechanism_pollu_tiny_config_runs_end_to_end_and_its_checkpoint_carries_the_mechanism() {
    use stiffx::engine::checkpoint::Checkpoint;
    use stiffx::engine::pipeline::{RunOptions, run};
    let dir = tempfile::tempdir().unwrap();
    let cfg = stiffx::config::Config::from_file(std::path::Path::new(&path("configs/pollu_tiny.toml"))).unwrap();
    let opts = RunOptions { out: Some(dir.path().to_path_buf()), figures: false, ..RunOptions::default() };
    let start = Instant::now();
    let m = run(&cfg, &opts).unwrap();
    eprintln!("pollu_tiny run: {:.1} s", start.elapsed().as_secs_f64());
    assert!(m.best_val_loss.is_finite());
    let ck = Checkpoint::load(&dir.path().join("checkpoint.json")).unwrap();
    let json = serde_json::to_value(&ck.config.system).unwrap();
    assert_eq!(json["type"], "mechanism");
    assert_eq!(json["mechanism"]["species"].as_array().unwrap().len(), 20);
    assert_eq!(json["mechanism"]["reactions"].as_array().unwrap().len(), 25);
    assert_eq!(ck.config.system.dim(), 20);
    assert_eq!(ck.config.system.invariants().len(), 3);
}

/// `stiffx run --system FILE.yaml`: a mechanism file as the system, no config edit; a file that does
/// not parse names `--system`, the file and its line (exit 2).
#[test]
fn mechanism_file_as_system_flag() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let run = |system: &str, out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stiffx"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", "--config", "configs/tiny_robertson.toml", "--system", system, "--epochs", "2"])
            .args(["--out", out.to_str().unwrap(), "--quiet", "--no-figures"])
            .output()
            .unwrap()
    };
    let o = run("mechanisms/robertson.yaml", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("type = \"mechanism\"") && cfg.contains("mechanisms/robertson.yaml"), "{cfg}");
    let bad = d.path().join("bad.yaml");
    std::fs::write(&bad, "species:\n- {name: A}\nreactions:\n- {equation: A <=> B, rate-constant: 1}\n").unwrap();
    let o = run(bad.to_str().unwrap(), &d.path().join("bad"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--system") && err.contains("bad.yaml") && !err.contains("panicked"), "{err}");
    assert!(!d.path().join("bad").exists(), "nothing written for a bad system");
    // `stiffx list` shows the shipped files, each parsed.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stiffx"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("list")
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    for (file, counts) in [
        ("pollu", "[20 species, 25 reactions]"),
        ("hires", "[8 species, 15 reactions]"),
        ("robertson", "[3 species, 3 reactions]"),
    ] {
        assert!(list.lines().any(|l| l.contains(&format!("mechanisms/{file}.yaml")) && l.contains(counts)), "{list}");
    }
}

/// The reaction network learned in `results/robertson_crnn` written as a mechanism file: `stiffx
/// export` writes `mechanism.yaml`, which parses as a system whose RHS is the network's (within 2e-4
/// relative today, see below), runs with `stiffx run --system`, and `stiffx inspect
/// --truth mechanisms/robertson.yaml` finds Robertson's three reactions within 1 % and nothing spurious.
#[test]
fn mechanism_learned_network_round_trips_and_matches_the_true_reactions() {
    use stiffx::engine::checkpoint::Checkpoint;
    let d = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_stiffx"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let out = d.path().join("export");
    cli(&["export", "results/robertson_crnn/checkpoint.json", "--out", out.to_str().unwrap()]);
    let file = out.join("mechanism.yaml");
    let learned = MechanismSystem::from_file(file.to_str().unwrap()).unwrap();
    assert_eq!(learned.mechanism.reactions.len(), 3, "{}", std::fs::read_to_string(&file).unwrap());
    // The file's RHS against the network's at the test states and eps over the grids.
    let ck = Checkpoint::load(std::path::Path::new(&path("results/robertson_crnn/checkpoint.json"))).unwrap();
    let device = stiffx::backend::Backend::default_compiled().unwrap().device().unwrap();
    let net = stiffx::eval::evaluate::learned_rhs(&ck, &device, stiffx::backend::Precision::F64).unwrap();
    let mut worst: f64 = 0.0;
    for x in [vec![1.0, 0.0, 0.0], vec![0.7, 1e-5, 0.3], vec![0.4, 2e-5, 0.6], vec![0.9, 3e-5, 0.1]] {
        for eps in [0.25, 0.7, 1.0, 4.0] {
            let f_net = net.rhs(&x, &[eps]);
            let mut f = vec![0.0; 3];
            learned.rhs(&x, eps, &mut f);
            let n = f_net.iter().map(|v| v * v).sum::<f64>().sqrt();
            let e = f.iter().zip(&f_net).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / n;
            worst = worst.max(e);
        }
    }
    eprintln!("learned mechanism file vs network: max relative RHS difference {worst:.2e}");
    // Measured 2.0e-4: larger than the dropped offsets explain. Not yet explained (candidates: the
    // evaluation's invariant projection P, which the file does not carry, or the eps input map);
    // this bound pins today's figure so that a regression shows, and the gap is named in issue 21.
    assert!(worst < 1e-3, "{worst}");
    // Matching against the true mechanism.
    let report = cli(&[
        "inspect",
        "--checkpoint",
        "results/robertson_crnn/checkpoint.json",
        "--eps",
        "1",
        "--state",
        "1,0,0",
        "--truth",
        "mechanisms/robertson.yaml",
    ]);
    assert!(report.contains("3 of 3"), "{report}");
    assert!(report.contains("spurious learned reactions (share of ‖F‖ > 1e-6 at a test state): 0;"), "{report}");
    // Rounded (orders 0.9998 → 1, so the Jacobian stays finite at a zero concentration), the file
    // runs as a system.
    let rounded = d.path().join("rounded");
    cli(&["export", "results/robertson_crnn/checkpoint.json", "--out", rounded.to_str().unwrap(), "--round", "0.01"]);
    let text = std::fs::read_to_string(rounded.join("mechanism.yaml")).unwrap();
    assert!(text.contains("equation: 2.0 y2 => y2") || text.contains("equation: 2 y2 =>"), "{text}");
    let file = rounded.join("mechanism.yaml");
    let run = d.path().join("rerun");
    cli(&["run", "--config", "configs/tiny_robertson.toml", "--system", file.to_str().unwrap(), "--epochs", "1"]
        .into_iter()
        .chain(["--out", run.to_str().unwrap(), "--quiet", "--no-figures"])
        .collect::<Vec<_>>());
    assert!(run.join("metrics.json").exists());
}

/// Van der Pol written as reactions, as `stiffx identify` writes it: `y1' = y2`,
/// `y2' = (y2 − y1 − y1² y2)/eps`. The species are signed state variables.
const VDP: &str = r#"species:
- {name: y1}
- {name: y2}
reactions:
- equation: y1 + y2 => y1
  rate-constant: 1.0
  eps-power: -1
  orders: {y1: 1, y2: 0}
- equation: y2 => 2 y2
  rate-constant: 1.0
  eps-power: -1
- equation: y2 => y1 + y2
  rate-constant: 1.0
- equation: 2 y1 + y2 => 2 y1
  rate-constant: 1.0
  eps-power: -1
stiffx:
  train-eps: [0.05, 0.1]
  unseen-eps: [0.075]
  initial: {y1: [-2.4, 2.4], y2: [-3.5, 3.6]}
  test-states:
  - {y1: 2.0}
  - {y1: -1.5, y2: 0.8}
  horizon: 20
  signed: true
"#;

#[test]
fn signed_mechanisms_take_negative_states_and_only_whole_orders() {
    let m = MechanismSystem::from_text(VDP, "vdp.yaml").unwrap();
    assert!(m.mechanism.signed);
    let truth = stiffx::plugins::registry::system("van-der-pol").unwrap();
    for x in [[-1.5, 0.8], [2.0, 0.0], [0.3, -2.5]] {
        let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
        m.rhs(&x, 0.1, &mut a);
        truth.rhs(&x, 0.1, &mut b);
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-12 * q.abs().max(1.0)), "{x:?}: {a:?} vs {b:?}");
    }
    // Written and read back: the flag survives.
    let text = stiffx::plugins::mechanism::write::to_yaml(&m.mechanism, "round trip", "vdp");
    assert!(text.contains("signed: true"), "{text}");
    assert_eq!(MechanismSystem::from_text(&text, "again.yaml").unwrap().mechanism, m.mechanism);
    // Without the flag, a negative state is refused, and the message says what to write.
    let err = MechanismSystem::from_text(&VDP.replace("  signed: true\n", ""), "c.yaml").unwrap_err();
    assert!(err.contains("c.yaml") && err.contains("signed: true"), "{err}");
    // Signed species need whole orders (x^0.5 of a negative x is not a number).
    let err = MechanismSystem::from_text(&VDP.replace("orders: {y1: 1, y2: 0}", "orders: {y1: 0.5, y2: 0}"), "o.yaml")
        .unwrap_err();
    assert!(err.contains("a whole number"), "{err}");
    // Without `orders`, the reactants' coefficients are the rate law: `0.5 y1` is refused the same way.
    let half = VDP.replace("- equation: y2 => y1 + y2\n", "- equation: 0.5 y1 => 0.5 y1 + y2\n");
    assert!(half.contains("0.5 y1 =>"));
    let err = MechanismSystem::from_text(&half, "h.yaml").unwrap_err();
    assert!(err.contains("reactants") && err.contains("a whole number"), "{err}");
}
