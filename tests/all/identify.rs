//! `stiffx identify`: Robertson's mechanism from a CSV of trajectories alone. The trajectories come
//! from the compiled-in `robertson` system integrated by diffsol's BDF here, outside the identification
//! (which reads only the file: data sampler, finite-difference labels); the truth it is checked against
//! is `mechanisms/robertson.yaml`, a different code path.

use crate::cli::stiffx;
use std::fmt::Write as _;
use std::path::Path;

/// The numbers of column `name` of the CSV file `path`, in row order.
fn column(path: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = text.lines();
    let c =
        rows.next().unwrap().split(',').position(|h| h == name).unwrap_or_else(|| panic!("no `{name}` in {path:?}"));
    rows.map(|r| r.split(',').nth(c).unwrap().parse().unwrap()).collect()
}

/// `per_eps` BDF trajectories of Robertson at each training eps, initial states y1 ~ U[0.2, 1],
/// y2 = 0, y3 ~ U[0, 0.8] (deterministic), at t = 0 and `points` log-spaced times over 1e-6…1e6.
fn write_trajectories(path: &Path, eps_grid: &[f64], per_eps: usize, points: usize, start: f64) {
    let sys = stiffx::plugins::registry::system("robertson").unwrap();
    let times: Vec<f64> =
        std::iter::once(0.0).chain((0..points).map(|k| 1e-6 * 1e12f64.powf(k as f64 / (points - 1) as f64))).collect();
    let mut csv = String::from("trajectory,t,eps,y1,y2,y3\n");
    let mut u = start;
    let mut next = || {
        u = (u * 7.31 + 0.137).fract();
        u
    };
    for &eps in eps_grid {
        let x0: Vec<f64> = (0..per_eps).flat_map(|_| [0.2 + 0.8 * next(), 0.0, 0.8 * next()]).collect();
        let sol =
            stiffx::ode::solve_at_with(sys.as_ref(), eps, &x0, &times, 1e-10, 1e-18, false, stiffx::ode::Method::Bdf)
                .unwrap();
        for k in 0..per_eps {
            for (j, t) in times.iter().enumerate() {
                let y = &sol[(k * times.len() + j) * 3..][..3];
                writeln!(csv, "e{eps}-{k},{t:?},{eps:?},{:?},{:?},{:?}", y[0], y[1], y[2]).unwrap();
            }
        }
    }
    std::fs::write(path, csv).unwrap();
}

fn config(dir: &Path, data: &Path) -> String {
    let mech = Path::new(env!("CARGO_MANIFEST_DIR")).join("mechanisms/robertson.yaml");
    let text = format!(
        r#"seed = 1
[system]
type = "mechanism"
file = "{}"
[sampler]
type = "data"
path = "{}"
[labeller]
type = "finite-difference"
order = 4
[eval]
horizon = 1e5
spacing = "log"
t_first = 1e-5
points = 30
integrator = "bdf"
rollout_rtol = 1e-6
rollout_atol = 1e-14
reference_method = "bdf"
reference_rtol = 1e-10
reference_atol = 1e-18
reference_eps = 1.0
"#,
        mech.display(),
        data.display()
    );
    let p = dir.join("identify.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn robertson_is_identified_from_trajectories_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("robertson.csv");
    write_trajectories(&data, &[0.25, 0.5, 1.0, 2.0, 4.0], 4, 150, 0.5);
    // Held out: other initial states, at two unseen eps.
    let holdout = dir.path().join("holdout.csv");
    write_trajectories(&holdout, &[0.7, 2.8], 2, 60, 0.123);
    let cfg = config(dir.path(), &data);
    let out = dir.path().join("id");
    let (code, stdout, stderr) =
        stiffx(&["identify", "--config", &cfg, "--out", out.to_str().unwrap(), "--holdout", holdout.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Every true reaction (per rate law) within 1 %, nothing spurious.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("matching.json")).unwrap()).unwrap();
    let groups = m["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    for g in groups {
        assert!(g["recovered"].as_bool().unwrap() && g["error"].as_f64().unwrap() < 1e-2, "{g}\n{stdout}");
    }
    assert!(m["spurious"].as_array().unwrap().is_empty(), "spurious reactions: {}\n{stdout}", m["spurious"]);
    // The eps powers: 0, −1, −1.
    let id: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("identification.json")).unwrap()).unwrap();
    let mut betas: Vec<f64> =
        id["reactions"].as_array().unwrap().iter().map(|r| r["reaction"]["eps_exponent"].as_f64().unwrap()).collect();
    betas.sort_by(f64::total_cmp);
    assert_eq!(betas.len(), 3, "{stdout}");
    for (b, want) in betas.iter().zip([-1.0, -1.0, 0.0]) {
        assert!((b - want).abs() < 1e-2, "{betas:?}");
    }
    // The conservation law y1 + y2 + y3 found in the labels.
    let inv = id["invariants"].as_array().unwrap();
    assert_eq!(inv.len(), 1, "{stdout}");
    let w: Vec<f64> = inv[0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(w.iter().all(|v| (v.abs() - 1.0 / 3f64.sqrt()).abs() < 1e-6), "{w:?}");
    // Every nonzero eigenvalue within 5 % at every evaluation point of every eps, by the metrics of
    // `stiffx eval` on the file the command wrote.
    let per_eps = out.join("per_eps.csv");
    let (eps, within, worst) =
        (column(&per_eps, "eps"), column(&per_eps, "all_within"), column(&per_eps, "all_rel_max"));
    for ((e, within), worst) in eps.iter().zip(&within).zip(&worst) {
        assert!(*within == 1.0 && *worst < 0.05, "eps {e}: {within} within 5 %, worst {worst}\n{stdout}");
    }
    assert_eq!(eps.len(), 5);
    // The held-out rollouts within 1 % of each species' range.
    let worst = column(&out.join("holdout.csv"), "max_rel");
    assert_eq!(worst.len(), 4);
    assert!(worst.iter().all(|w| *w < 1e-2), "held-out rollout errors {worst:?}\n{stdout}");
    // The written file runs as a system: its RHS at the truth's test states within 1 % of the truth's.
    let learned =
        stiffx::plugins::mechanism::MechanismSystem::from_file(&out.join("mechanism.yaml").display().to_string())
            .unwrap();
    let truth = stiffx::plugins::mechanism::MechanismSystem::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("mechanisms/robertson.yaml").display().to_string(),
    )
    .unwrap();
    use stiffx::plugins::system::StiffSystem;
    for x in truth.test_initial_states().iter().chain([&vec![0.6, 2e-5, 0.3]]) {
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        learned.rhs(x, 1.0, &mut a);
        truth.rhs(x, 1.0, &mut b);
        let norm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
        let err = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
        assert!(err <= 1e-2 * norm, "at {x:?}: {a:?} vs {b:?}");
    }
}

#[test]
fn bad_identify_flags_are_named() {
    for (flag, value, needle) in [
        ("--max-order", "9", "1, 2, 3 or 4"),
        ("--threshold", "2", "a number in (0, 1)"),
        ("--weight-floor", "0", "a number in (0, 1)"),
        ("--power-law-tol", "0", "a number > 0"),
    ] {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/robertson_data.toml");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o");
        let (code, _, err) =
            stiffx(&["identify", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(flag) && err.contains(needle) && !err.contains("panicked"), "{err}");
        assert!(!out.exists(), "nothing written for {flag} {value}");
    }
}

/// A missing data file is bad input (exit 2) naming the file, for `run` and `identify` alike.
#[test]
fn a_missing_data_file_is_named_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.csv");
    let cfg = config(dir.path(), &missing);
    let out = dir.path().join("o");
    let out = out.to_str().unwrap();
    for args in
        [vec!["identify", "--config", &cfg, "--out", out], vec!["run", "--config", &cfg, "--out", out, "--no-figures"]]
    {
        let (code, _, err) = stiffx(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("no-such.csv") && err.contains("cannot read it") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

/// Nonzero eigenvalue moduli of a system's Jacobian at `x`, fastest first (Robertson: the first two).
fn moduli(sys: &dyn stiffx::plugins::system::StiffSystem, x: &[f64], eps: f64) -> Vec<f64> {
    sys.reference_eigenvalues(x, eps).iter().map(|l| l.norm()).collect()
}

/// `stiffx identify --data`: the CSV is the only input — no config, no system, no reference. The same
/// three reactions come back; and the trust measure it reports without a reference (the jackknife spread
/// of the identified eigenvalues along the data) has the size of their true error, checked here against
/// `mechanisms/robertson.yaml` at every point of the file.
#[test]
fn robertson_is_identified_from_a_csv_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("robertson.csv");
    write_trajectories(&data, &[0.25, 0.5, 1.0, 2.0, 4.0], 4, 150, 0.5);
    let holdout = dir.path().join("holdout.csv");
    write_trajectories(&holdout, &[0.7, 2.8], 2, 60, 0.123);
    let out = dir.path().join("id");
    let (code, stdout, stderr) = stiffx(&[
        "identify",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--holdout",
        holdout.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let learned =
        stiffx::plugins::mechanism::MechanismSystem::from_file(&out.join("mechanism.yaml").display().to_string())
            .unwrap();
    let truth = stiffx::plugins::mechanism::MechanismSystem::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("mechanisms/robertson.yaml").display().to_string(),
    )
    .unwrap();
    let report = stiffx::eval::reactions::match_reactions(&truth.mechanism, &learned.mechanism, 0.01);
    let m = serde_json::to_value(&report).unwrap();
    for g in m["groups"].as_array().unwrap() {
        assert!(g["recovered"].as_bool().unwrap(), "{g}\n{stdout}");
    }
    assert!(m["spurious"].as_array().unwrap().is_empty(), "{}\n{stdout}", m["spurious"]);
    assert_eq!(learned.mechanism.species, ["y1", "y2", "y3"]);
    assert_eq!(learned.mechanism.train_eps, [0.25, 0.5, 1.0, 2.0, 4.0]);
    assert_eq!(learned.mechanism.unseen_eps, [0.7, 2.8], "the held-out file's eps values");
    // The true error of the two nonzero eigenvalues at every point of the file, against the spread.
    let text = std::fs::read_to_string(&data).unwrap();
    let mut errs = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<f64> = line.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
        let (eps, x) = (f[1], &f[2..5]);
        let (a, b) = (moduli(&learned, x, eps), moduli(&truth, x, eps));
        // The nonzero eigenvalues as spectrum.csv counts them: above 1e-10 |λ_fast| (at t = 0, y2 = 0
        // makes a second exact zero).
        let nonzero = (0..2).filter(|&j| b[j] > 1e-10 * b[0]).count();
        errs.push((0..nonzero).map(|j| (a[j] - b[j]).abs() / b[j]).fold(0.0, f64::max));
    }
    errs.sort_by(f64::total_cmp);
    let true_p95 = errs[errs.len() * 95 / 100];
    let spread = column(&out.join("spectrum.csv"), "all_spread_p95");
    assert_eq!(spread.len(), 5);
    let spread = spread.iter().copied().fold(0.0, f64::max);
    eprintln!("jackknife spread p95 {spread:e}, true error p95 {true_p95:e}");
    assert!(true_err_ok(true_p95), "true p95 eigenvalue error {true_p95:e}\n{stdout}");
    assert!(
        spread > 0.3 * true_p95 && spread < 3.0 * true_p95,
        "jackknife spread p95 {spread:e} against the true error p95 {true_p95:e}\n{stdout}"
    );
    // Rollouts of the file's own and of the held-out trajectories within 1 % of each species' range.
    for (file, n) in [("rollouts.csv", 20), ("holdout.csv", 4)] {
        let worst = column(&out.join(file), "max_rel");
        assert_eq!(worst.len(), n, "{file}");
        assert!(worst.iter().all(|w| *w < 1e-2), "{file}: {worst:?}");
    }
    assert!(!stdout.contains("collinear"), "no collinearity warning for Robertson: {stdout}");
    // The label error estimate, one row per species, small for these resolved trajectories.
    let le = std::fs::read_to_string(out.join("label_error.csv")).unwrap();
    assert_eq!(le.lines().count(), 4, "{le}");
}

fn true_err_ok(p95: f64) -> bool {
    p95.is_finite() && p95 < 1e-2
}

/// `--data` mode's bad input: every case exit 2 with the flag or file named, nothing written.
#[test]
fn bad_data_mode_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    write_trajectories(&good, &[1.0], 2, 20, 0.5);
    let no_species = dir.path().join("nospecies.csv");
    std::fs::write(&no_species, "trajectory,t,eps\na,0,1\na,1,1\na,2,1\n").unwrap();
    let short = dir.path().join("short.csv");
    std::fs::write(&short, "trajectory,t,A\na,0,1\na,1,0.5\na,2,0.25\n").unwrap();
    let multi = dir.path().join("multi.csv");
    write_trajectories(&multi, &[0.5, 1.0, 2.0], 2, 20, 0.5);
    let no_eps = dir.path().join("noeps.csv");
    std::fs::write(&no_eps, "trajectory,t,y1,y2,y3\na,0,1,0,0\na,1,0.9,0.0,0.1\na,2,0.8,0.0,0.2\n").unwrap();
    let (m, ne) = (multi.to_str().unwrap(), no_eps.to_str().unwrap());
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/robertson_data.toml");
    let (g, n, s, c) =
        (good.to_str().unwrap(), no_species.to_str().unwrap(), short.to_str().unwrap(), cfg.to_str().unwrap());
    for (args, needle) in [
        (vec!["--data", g, "--fd-order", "3"], "--fd-order"),
        (vec!["--data", g, "--jackknife", "100000"], "--jackknife"),
        (vec!["--data", n], "no state columns"),
        (vec!["--data", s], "labels of order 4 need at least 5"),
        (vec!["--data", m, "--holdout", ne], "held-out data must say its stiffness value"),
        (vec!["--config", c, "--jackknife", "3"], "only with --data"),
        (vec!["--config", c, "--fd-order", "2"], "only with --data"),
    ] {
        let out = dir.path().join("o");
        let mut all = vec!["identify", "--out", out.to_str().unwrap()];
        all.extend(&args);
        let (code, _, err) = stiffx(&all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?}: nothing written");
    }
}

/// HIRES (8 species, a fast reversible pair on the slow manifold): the power-law pruning removes the
/// terms that only fit the manifold's collinearity. With it: 9/9 rate-law groups, the slow spectrum
/// (every nonzero eigenvalue within 5 % at ≥ 85 % of the points, 64 trajectories per eps; 100 % at the
/// shipped config's 256); without it (`--power-law-tol inf`): 14 negligible terms and < 65 %.
#[test]
fn hires_pruning_by_power_law_restores_the_slow_spectrum() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/hires_identify.toml"))
        .unwrap()
        .replace("per_eps = 256", "per_eps = 64")
        .replace(
            "file = \"mechanisms/hires.yaml\"",
            &format!("file = \"{}/mechanisms/hires.yaml\"", env!("CARGO_MANIFEST_DIR")),
        );
    assert!(shipped.contains("per_eps = 64"), "the shipped config changed: {shipped}");
    let cfg = dir.path().join("hires.toml");
    std::fs::write(&cfg, shipped).unwrap();
    let within = |out: &Path| -> (f64, usize, usize) {
        let w = column(&out.join("per_eps.csv"), "all_within");
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("matching.json")).unwrap()).unwrap();
        let recovered = m["groups"].as_array().unwrap().iter().filter(|g| g["recovered"].as_bool().unwrap()).count();
        let extra = m["spurious"].as_array().unwrap().len() + m["negligible"].as_array().map_or(0, |v| v.len());
        (w.iter().sum::<f64>() / w.len() as f64, recovered, extra)
    };
    let (pruned, plain) = (dir.path().join("pruned"), dir.path().join("plain"));
    for (out, extra) in [(&pruned, vec![]), (&plain, vec!["--power-law-tol", "inf"])] {
        let mut args = vec!["identify", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(extra);
        let (code, stdout, stderr) = stiffx(&args);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    }
    let (w, recovered, extra) = within(&pruned);
    assert_eq!(recovered, 9, "9 rate-law groups with pruning");
    assert!(w >= 0.85, "with pruning: {w} of the points within 5 %");
    let (w0, _, extra0) = within(&plain);
    assert!(w0 < 0.65 && extra0 > extra, "without pruning: {w0} within 5 %, {extra0} extra terms against {extra}");
}

// The regression itself (src/identify.rs), through its public API.

#[test]
fn the_library_holds_every_monomial_once() {
    assert_eq!(stiffx::identify::monomials(3, 2).len(), stiffx::identify::library_size(3, 2));
    assert_eq!(stiffx::identify::library_size(3, 2), 10);
    assert_eq!(stiffx::identify::library_size(20, 2), 231);
    assert_eq!(
        stiffx::identify::monomials(2, 2),
        vec![vec![0, 0], vec![1, 0], vec![0, 1], vec![2, 0], vec![1, 1], vec![0, 2]]
    );
}

/// Exact labels of a two-reaction mechanism with a source and eps powers 0 and −1: recovered to
/// rounding, the conservation law of the second reaction found.
/// Deterministic uniforms in [0, 1) from `seed` (a 64-bit LCG's top 53 bits).
fn uniform(mut s: u64) -> impl FnMut() -> f64 {
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn exact_mass_action_labels_give_back_the_mechanism() {
    // A → B at k1 = 2 (eps^-1), 2B → C at k2 = 5, source ∅ → A at 0.3.
    let f = |x: &[f64], e: f64| {
        let (r1, r2, r0) = (2.0 / e * x[0], 5.0 * x[1] * x[1], 0.3);
        [r0 - r1, r1 - 2.0 * r2, r2]
    };
    let mut set = stiffx::plugins::sampler::SampleSet { dim: 3, ..Default::default() };
    let mut labels = Vec::new();
    let mut u = uniform(1);
    for e in [0.5, 1.0, 2.0] {
        for i in 0..200 {
            let x = [u(), u(), u()];
            set.push(&x, e, stiffx::plugins::sampler::Origin::Trajectory { traj: 0, index: i });
            labels.extend(f(&x, e));
        }
    }
    let id = stiffx::identify::identify(&set, &labels, &stiffx::identify::IdentifyConfig::default()).unwrap();
    assert!(id.invariants.is_empty(), "the source breaks every conservation law");
    assert_eq!(id.reactions.len(), 3, "{:?}", id.reactions);
    let want = [
        (vec![0, 0, 0], 0.3, 0.0, vec![1.0, 0.0, 0.0]),
        (vec![1, 0, 0], 2.0, -1.0, vec![-1.0, 1.0, 0.0]),
        (vec![0, 2, 0], 10.0, 0.0, vec![0.0, -1.0, 0.5]),
    ];
    for (r, (wm, wk, wb, ws)) in id.reactions.iter().zip(&want) {
        let (m, k, b, s) = (&r.monomial, r.reaction.rate_constant, r.reaction.eps_exponent, &r.reaction.stoichiometry);
        assert_eq!(m, wm);
        assert!((k - wk).abs() < 1e-9 * wk && (b - wb).abs() < 1e-9, "{m:?}: k {k}, β {b}");
        assert!(s.iter().zip(ws).all(|(a, b)| (a - b).abs() < 1e-9), "{m:?}: {s:?}");
    }
    assert!(id.pruned.is_empty(), "exact power laws: nothing pruned, {:?}", id.pruned);
}

#[test]
fn conservation_laws_of_the_labels_are_found() {
    // Labels of A ⇌ B: every row sums to zero.
    let labels: Vec<f64> = (0..50).flat_map(|i| [i as f64 * 0.1 - 2.0, 2.0 - i as f64 * 0.1, 0.0]).collect();
    let inv = stiffx::identify::label_invariants(&labels, 3, 1e-9);
    assert_eq!(inv.len(), 2, "{inv:?}");
    // (1, 1, 0)/√2 and e3 span the null space.
    let w = nalgebra::DVector::from_column_slice(&[1.0, 1.0, 0.0]);
    let proj: f64 = inv.iter().map(|v| nalgebra::DVector::from_column_slice(v).dot(&w).powi(2)).sum();
    assert!((proj - 2.0).abs() < 1e-12, "{proj}");
}

/// A species that is constant in the data makes `A` and `A·C` the same column: the fit is one of many,
/// and the command says so (condition number infinite in `identification.json`, a warning naming the
/// species), rather than presenting the mechanism as found; one trajectory gives no jackknife, said too.
#[test]
fn collinear_terms_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("c.csv");
    let mut csv = String::from("trajectory,t,A,B,C\n");
    for i in 0..31 {
        let t = 0.1 * i as f64;
        csv.push_str(&format!("a,{t:?},{:?},{:?},2.0\n", (-t).exp(), 1.0 - (-t).exp()));
    }
    std::fs::write(&data, csv).unwrap();
    let out = dir.path().join("o");
    let (code, stdout, stderr) =
        stiffx(&["identify", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("the terms kept for A are (nearly) collinear"), "{stdout}");
    assert!(stdout.contains("no jackknife spread: it needs at least 2 trajectories"), "{stdout}");
    let id: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("identification.json")).unwrap()).unwrap();
    let cond = &id["per_eps"][0]["condition"];
    assert!(cond.as_array().unwrap().iter().any(|c| c.is_null() || c.as_f64().is_some_and(|v| v > 1e8)), "{cond}");
}

#[test]
fn a_monomial_with_two_eps_powers_gives_two_reactions() {
    // OREGO in its scaled form (the compiled-in `oregonator`, exact labels): y2 enters y1' as y2/eps
    // and y2' as -eps·y2, y1·y2 likewise, y1 enters y1' as y1/eps and y3' as w·y1, y3 enters y2' as
    // eps·y3 and y3' as -w·y3. One power law per monomial would misfit the smaller species by orders
    // of magnitude; each (monomial, eps power) is one reaction.
    let sys = stiffx::plugins::registry::system("oregonator").unwrap();
    let mut set = stiffx::plugins::sampler::SampleSet { dim: 3, ..Default::default() };
    let mut labels = Vec::new();
    let mut u = uniform(7);
    for e in [1.0 / 77.27, 0.02, 0.03, 0.05] {
        for i in 0..300 {
            let x = [10f64.powf(4.0 * u()), 10f64.powf(3.0 * u()), 10f64.powf(4.0 * u())];
            let mut f = [0.0; 3];
            sys.rhs(&x, e, &mut f);
            set.push(&x, e, stiffx::plugins::sampler::Origin::Trajectory { traj: 0, index: i });
            labels.extend(f);
        }
    }
    let id = stiffx::identify::identify(&set, &labels, &stiffx::identify::IdentifyConfig::default()).unwrap();
    let (q, w) = (8.375e-6, 0.161);
    // (monomial, eps power, rate constant × stoichiometry)
    let want = [
        (vec![0, 0, 1], 0.0, [0.0, 0.0, -w]),
        (vec![0, 0, 1], 1.0, [0.0, 1.0, 0.0]),
        (vec![0, 1, 0], -1.0, [1.0, 0.0, 0.0]),
        (vec![0, 1, 0], 1.0, [0.0, -1.0, 0.0]),
        (vec![1, 0, 0], -1.0, [1.0, 0.0, 0.0]),
        (vec![1, 0, 0], 0.0, [0.0, 0.0, w]),
        (vec![1, 1, 0], -1.0, [-1.0, 0.0, 0.0]),
        (vec![1, 1, 0], 1.0, [0.0, -1.0, 0.0]),
        (vec![2, 0, 0], -1.0, [-q, 0.0, 0.0]),
    ];
    let mut got: Vec<_> = id
        .reactions
        .iter()
        .map(|r| {
            let k = r.reaction.rate_constant;
            let ks: Vec<f64> = r.reaction.stoichiometry.iter().map(|s| s * k).collect();
            (r.monomial.clone(), r.reaction.eps_exponent, ks, r.power_law_misfit)
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((m, b, ks, misfit), (wm, wb, wks)) in got.iter().zip(&want) {
        assert_eq!(m, wm);
        assert!((b - wb).abs() < 1e-6, "{m:?}: eps power {b}, want {wb}");
        for (a, z) in ks.iter().zip(wks) {
            assert!((a - z).abs() <= 1e-6 * z.abs().max(1e-12), "{m:?} eps^{wb}: {ks:?}, want {wks:?}");
        }
        assert!(*misfit < 1e-6, "{m:?}: misfit {misfit}");
    }
    assert!(id.pruned.is_empty(), "{:?}", id.pruned);
}

#[test]
fn a_misfitting_part_of_a_split_monomial_is_pruned_alone() {
    // y1' = −2 y1/eps (a power law), y2' = c(eps) y1 with c following no power law of eps. The monomial
    // y1 splits into the y1 part (eps^-1) and the y2 part; only the y2 part misfits, so only it is
    // pruned and the y1 reaction stays (pruning the whole monomial left nothing to identify).
    let c = [1.0, 3.0, 0.5, 2.0];
    let eps = [0.1, 0.2, 0.4, 0.8];
    let mut set = stiffx::plugins::sampler::SampleSet { dim: 2, ..Default::default() };
    let mut labels = Vec::new();
    let mut u = uniform(11);
    for (&e, &ce) in eps.iter().zip(&c) {
        for i in 0..200 {
            let x = [0.1 + 1.9 * u(), 0.1 + 1.9 * u()];
            set.push(&x, e, stiffx::plugins::sampler::Origin::Trajectory { traj: 0, index: i });
            labels.extend([-2.0 * x[0] / e, ce * x[0]]);
        }
    }
    let id = stiffx::identify::identify(&set, &labels, &stiffx::identify::IdentifyConfig::default()).unwrap();
    assert_eq!(id.pruned.len(), 1, "{:?}", id.pruned);
    assert_eq!(id.pruned[0].monomial, vec![1, 0]);
    assert_eq!(id.pruned[0].species, Some(vec![1]), "only y2's term on y1");
    assert!(id.pruned[0].misfit > 0.05);
    assert_eq!(id.reactions.len(), 1, "{:?}", id.reactions);
    let r = &id.reactions[0];
    let k = r.reaction.rate_constant;
    assert_eq!(r.monomial, vec![1, 0]);
    assert!((r.reaction.eps_exponent + 1.0).abs() < 1e-9, "{r:?}");
    assert!((r.reaction.stoichiometry[0] * k + 2.0).abs() < 1e-9 && r.reaction.stoichiometry[1].abs() < 1e-9, "{r:?}");
    assert!(r.power_law_misfit < 1e-9 && r.part.is_none(), "{r:?}");
}

#[test]
fn no_reaction_identified_is_bad_input_and_writes_no_mechanism() {
    // A power-law tolerance no finite-difference fit meets prunes every rate law: exit 2 with a
    // message that says so and what to try, `identification.json` (what was pruned) written, no
    // `mechanism.yaml` (an empty one would not read back).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("robertson.csv");
    write_trajectories(&data, &[0.25, 0.5, 1.0, 2.0, 4.0], 2, 60, 0.5);
    let cfg = config(dir.path(), &data);
    let out = dir.path().join("id");
    let (code, stdout, stderr) =
        stiffx(&["identify", "--config", &cfg, "--out", out.to_str().unwrap(), "--power-law-tol", "1e-15"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("no reaction was identified") && stderr.contains("--power-law-tol"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.join("identification.json").exists() && !out.join("mechanism.yaml").exists());
}

#[test]
fn trimming_leaves_out_labels_wrong_by_orders_of_magnitude() {
    // A → B at 2/eps and 2B → C at 5, exact labels except every 50th point, whose labels are 1000×
    // too small (what finite differences give at the peak of a fast jump; with relative weights such
    // a row weighs 1e6 times the others). Without trimming the fit is dragged off; with `trim = 100`
    // those points (and only those) are left out and the mechanism is exact.
    let f = |x: &[f64], e: f64| {
        let (r1, r2) = (2.0 / e * x[0], 5.0 * x[1] * x[1]);
        [-r1, r1 - 2.0 * r2, r2]
    };
    let mut set = stiffx::plugins::sampler::SampleSet { dim: 3, ..Default::default() };
    let mut labels = Vec::new();
    let mut u = uniform(3);
    for e in [0.5, 1.0, 2.0] {
        for i in 0..500u32 {
            let x = [0.1 + u(), 0.1 + u(), 0.1 + u()];
            set.push(&x, e, stiffx::plugins::sampler::Origin::Trajectory { traj: 0, index: i });
            let bad = if i % 50 == 7 { 1e-3 } else { 1.0 };
            labels.extend(f(&x, e).map(|v| v * bad));
        }
    }
    let worst = |cfg: &stiffx::identify::IdentifyConfig| {
        let id = stiffx::identify::identify(&set, &labels, cfg).unwrap();
        let k1 = id.reactions.iter().find(|r| r.monomial == [1, 0, 0]).map_or(0.0, |r| r.reaction.rate_constant);
        let k2 = id.reactions.iter().find(|r| r.monomial == [0, 2, 0]).map_or(0.0, |r| r.reaction.rate_constant);
        let err = ((k1 - 2.0).abs() / 2.0).max((k2 - 10.0).abs() / 10.0);
        (
            err.max(if id.reactions.len() == 2 { 0.0 } else { 1.0 }),
            id.per_eps.iter().map(|p| p.trimmed.clone()).collect::<Vec<_>>(),
        )
    };
    let (plain, none) = worst(&stiffx::identify::IdentifyConfig::default());
    assert!(plain > 1e-3, "the bad labels pull the plain fit off: {plain}");
    assert!(none.iter().flatten().all(|&t| t == 0));
    let (robust, trimmed) = worst(&stiffx::identify::IdentifyConfig { trim: 100.0, ..Default::default() });
    assert!(robust < 1e-9, "trimmed fit: worst relative rate-constant error {robust}");
    // 10 bad points per eps; species A, B, C all see them.
    assert_eq!(trimmed, vec![vec![10, 10, 10]; 3]);
}

#[test]
fn van_der_pol_is_identified_as_a_signed_mechanism() {
    // Signed states (y1, y2 < 0 half of the time): the four polynomial terms, written with
    // `signed: true` (concentrations would be clamped at 0), read back and evaluated.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vdp.toml");
    std::fs::write(
        &cfg,
        "seed = 1\n[system]\ntype = \"van-der-pol\"\ntrain_eps = [0.05, 0.1, 0.2]\nunseen_eps = [0.075]\n\
         [sampler]\ntype = \"trajectory\"\nper_eps = 2\nhorizon = 3.0\ndt = 0.05\n[labeller]\ntype = \"direct\"\n\
         [eval]\nhorizon = 3.0\n",
    )
    .unwrap();
    let out = dir.path().join("id");
    let (code, stdout, stderr) =
        stiffx(&["identify", "--config", cfg.to_str().unwrap(), "--max-order", "3", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let text = std::fs::read_to_string(out.join("mechanism.yaml")).unwrap();
    assert!(text.contains("signed: true") && text.contains("(4 reactions)"), "{text}");
    let within = column(&out.join("per_eps.csv"), "all_within");
    assert!(within.len() == 3 && within.iter().all(|w| *w == 1.0), "{within:?}\n{stdout}");
}
