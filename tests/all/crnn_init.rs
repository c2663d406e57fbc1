//! `model.init`: a reaction network started from a mechanism file holds that mechanism exactly —
//! its RHS and Jacobian equal the file's (POLLU, HIRES with its zero-order source) on a non-trivial
//! input standardisation, its reactions read back as the file's — and what does not fit is refused.

use burn::tensor::DType;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use stiffx::backend::Backend;
use stiffx::eval::reactions::network_from_mechanism;
use stiffx::eval::spectral::{JacobianMode, LearnedRhs};
use stiffx::model::config::EpsInput;
use stiffx::model::{Normalizer, StateMap};
use stiffx::plugins::mechanism::MechanismSystem;
use stiffx::plugins::system::StiffSystem;
use stiffx::plugins::transform::Identity;

fn load(name: &str) -> MechanismSystem {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("mechanisms/{name}.yaml"));
    MechanismSystem::from_file(&p.to_string_lossy()).unwrap_or_else(|e| panic!("{e}"))
}

/// A standardisation far from the identity (means and spreads of order 1–10), log offsets 1e-30.
fn normalizer(d: usize) -> Normalizer {
    Normalizer {
        mean: (0..=d).map(|i| -3.0 + 0.7 * i as f64).collect(),
        std: (0..=d).map(|i| 0.5 + 0.37 * i as f64).collect(),
        state_scale: vec![1e-30; d],
        state_map: StateMap::Log,
    }
}

/// The network of `name`'s mechanism (in the file's species order reversed, so the name matching
/// is exercised) against the file's own RHS and analytic Jacobian, at the test states and seeded
/// draws of the initial distribution pushed along by the system, at every training eps.
fn holds_exactly(name: &str, width: usize) {
    let sys = load(name);
    let d = sys.dim();
    let mut mech = sys.mechanism.clone();
    // The same mechanism written with its species in reverse order.
    let perm: Vec<usize> = (0..d).rev().collect();
    mech.species = perm.iter().map(|&i| sys.mechanism.species[i].clone()).collect();
    for r in &mut mech.reactions {
        for t in r.reactants.iter_mut().chain(r.products.iter_mut()).chain(r.orders.iter_mut()) {
            t.species = d - 1 - t.species;
        }
    }
    let names = sys.state_names();
    let norm = normalizer(d);
    let w = network_from_mechanism(&mech, &names, &norm, width).unwrap();
    assert_eq!((w.layers[0].d_out, w.layers[1].d_out), (width, d));
    // Read back: the file's rate constants (times the stoichiometry's largest entry) and orders.
    let back = w.reactions(&norm).unwrap();
    for (j, r) in sys.mechanism.reactions.iter().enumerate() {
        let m = back[j].stoichiometry.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(m == 1.0, "{name} reaction {}: stoichiometry not normalised", j + 1);
        let scale = sys.stoichiometry().column(j).abs().max();
        assert!((back[j].rate_constant / (r.k * scale) - 1.0).abs() < 1e-12, "{name} reaction {}", j + 1);
        for t in r.rate_law() {
            assert!((back[j].orders[t.species] - t.coeff).abs() < 1e-12, "{name} reaction {}", j + 1);
        }
        assert!((back[j].eps_exponent - r.eps_power).abs() < 1e-12);
    }
    // Units past the reactions are dead: no stoichiometry.
    for (j, r) in back.iter().enumerate().skip(sys.mechanism.reactions.len()) {
        assert_eq!(r.rate_constant, 0.0, "{name}: unit {j} should be dead");
    }
    let device = Backend::default_compiled().unwrap().device().unwrap();
    let rhs =
        LearnedRhs::new(&w, norm, Box::new(Identity {}), d, device, DType::F64).unwrap().with_eps_input(EpsInput::Log);
    let mut rng = StdRng::seed_from_u64(3);
    let mut states = sys.test_initial_states();
    for _ in 0..6 {
        // A draw of the initial distribution with every species present (the products too).
        let x: Vec<f64> =
            sys.sample_initial(&mut rng).iter().map(|v| v + 10f64.powf(rng.random_range(-9.0..-2.0))).collect();
        states.push(x);
    }
    for eps in sys.train_grid() {
        let x: Vec<f64> = states.concat();
        let e = vec![eps; states.len()];
        let f = rhs.rhs(&x, &e);
        let jac = rhs.jacobian(&x, &e, JacobianMode::Forward);
        for (p, s) in states.iter().enumerate() {
            let mut exact = vec![0.0; d];
            sys.rhs(s, eps, &mut exact);
            let fs = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for k in 0..d {
                let (a, b) = (f[p * d + k], exact[k]);
                assert!((a - b).abs() <= 1e-10 * fs, "{name}: F_{k} at state {p}, eps {eps}: {a} vs {b}");
            }
            let j = sys.jacobian(s, eps);
            let js = j.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for k in 0..d {
                for i in 0..d {
                    let (a, b) = (jac[p * d * d + k * d + i], j[(k, i)]);
                    assert!((a - b).abs() <= 1e-10 * js, "{name}: J_{k}{i} at state {p}, eps {eps}: {a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn a_network_started_from_pollu_holds_it_exactly() {
    holds_exactly("pollu", 27);
}

#[test]
fn a_network_started_from_hires_holds_it_and_its_source_exactly() {
    holds_exactly("hires", 17);
}

/// Too few units, other species, or inputs that are not logarithmic are refused with what to change.
#[test]
fn a_mechanism_that_does_not_fit_is_refused() {
    let sys = load("pollu");
    let names = sys.state_names();
    let norm = normalizer(names.len());
    let e = network_from_mechanism(&sys.mechanism, &names, &norm, 24).unwrap_err();
    assert!(e.contains("25 reactions") && e.contains("model.width ≥ 25"), "{e}");
    let robertson = load("robertson");
    let e = network_from_mechanism(&robertson.mechanism, &names, &norm, 25).unwrap_err();
    assert!(e.contains("missing: [NO2") && e.contains("not in the system: [y1"), "{e}");
    let linear = Normalizer { state_map: StateMap::Asinh, ..norm };
    let e = network_from_mechanism(&sys.mechanism, &names, &linear, 25).unwrap_err();
    assert!(e.contains("state_input"), "{e}");
}

/// A tiny Robertson run of a reaction network started from `init` (a mechanism file's text), orders
/// kept or free; returns the learned reactions (`reactions.json`) and the best validation loss.
fn run_from(init: &str, keep_orders: bool) -> (Vec<stiffx::model::Reaction>, f64) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("start.yaml");
    std::fs::write(&file, init).unwrap();
    let robertson = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mechanisms/robertson.yaml");
    let text = format!(
        r#"
seed = 1
[system]
type = "mechanism"
file = "{}"
[sampler]
type = "trajectory"
per_eps = 2
horizon = 1e3
spacing = "log"
t_first = 1e-5
points = 40
method = "bdf"
rtol = 1e-10
atol = 1e-18
[labeller]
type = "direct"
[transform]
type = "identity"
[model]
hidden = 1
width = 4
activation = "exp"
eps_input = "log"
state_input = "log"
keep_orders = {keep_orders}
[model.init]
file = "{}"
[train]
precision = "f64"
epochs = 4
batch = 64
lr = 1e-2
weighting = "relative"
[eval]
horizon = 1e3
spacing = "log"
t_first = 1e-4
points = 6
integrator = "bdf"
rollout_rtol = 1e-6
rollout_atol = 1e-14
reference_method = "bdf"
reference_rtol = 1e-8
reference_atol = 1e-16
reference_eps = 1.0
"#,
        robertson.display(),
        file.display()
    );
    let cfg = stiffx::config::Config::from_toml(&text).unwrap();
    let out = dir.path().join("run");
    let opts = stiffx::engine::pipeline::RunOptions { out: Some(out.clone()), figures: false, ..Default::default() };
    let m = stiffx::engine::pipeline::run(&cfg, &opts).unwrap();
    let reactions = serde_json::from_str(&std::fs::read_to_string(out.join("reactions.json")).unwrap()).unwrap();
    (reactions, m.best_val_loss)
}

/// Started from Robertson's own file the network is exact from the first epoch (the loss at rounding
/// level); started from a file with rate constants 20 % off, training moves the constants towards the
/// truth, and `keep_orders` holds the orders at the file's integers exactly (the fourth, dead unit
/// stays dead) while free orders drift.
#[test]
fn training_started_from_a_mechanism_refines_it() {
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mechanisms/robertson.yaml"))
            .unwrap();
    let (_, exact_loss) = run_from(&text, true);
    assert!(exact_loss < 1e-20, "the exact mechanism's loss: {exact_loss:e}");
    let off = text.replace("A: 0.04,", "A: 0.048,").replace("A: 3.0e7,", "A: 2.4e7,").replace("A: 1.0e4,", "A: 1.2e4,");
    assert_ne!(off, text);
    let (kept, kept_loss) = run_from(&off, true);
    let orders = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]];
    for (r, o) in kept.iter().zip(&orders) {
        assert_eq!(&r.orders[..], &o[..], "{r:?}");
    }
    assert!(kept[3].rate_constant < 1e-20, "the unit past the reactions stays dead: {:?}", kept[3]);
    // k1 (0.04; started at 0.048) moved towards the truth.
    let k1 = kept[0].rate_constant;
    assert!((k1 - 0.04).abs() < 0.008 * 0.9, "k1 {k1}");
    assert!(kept_loss > exact_loss);
    let (free, _) = run_from(&off, false);
    let drift = free.iter().take(3).flat_map(|r| r.orders.iter()).map(|o| (o - o.round()).abs()).fold(0.0, f64::max);
    assert!(drift > 1e-6, "free orders should move off the integers: {drift:e}");
}

/// `model.init` on a network that is no reaction network, or too narrow, is refused naming the field.
#[test]
fn model_init_that_cannot_start_the_network_is_refused() {
    let robertson = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mechanisms/robertson.yaml");
    let base =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny_robertson.toml"))
            .unwrap();
    let with = |model: &str| {
        let text = base
            .replace("[model]\n", &format!("[model]\n{model}\n"))
            .replace("[train]\n", &format!("[model.init]\nfile = \"{}\"\n\n[train]\n", robertson.display()));
        stiffx::config::Config::from_toml(&text).and_then(|c| c.validate()).unwrap_err().to_string()
    };
    let e = with("");
    assert!(e.contains("model.init") && e.contains("model.activation = \"exp\""), "{e}");
    let base = base
        .replace("hidden = 2\nwidth = 16\n", "hidden = 1\nwidth = 2\nactivation = \"exp\"\n")
        .replace("state_input = \"asinh\"", "state_input = \"log\"");
    let text = base.replace("[train]\n", &format!("[model.init]\nfile = \"{}\"\n\n[train]\n", robertson.display()));
    let e = stiffx::config::Config::from_toml(&text).and_then(|c| c.validate()).unwrap_err().to_string();
    assert!(e.contains("model.width") && e.contains("at least 3"), "{e}");
}
