use stiffx::backend::Precision;
use stiffx::engine::checkpoint::Checkpoint;
use stiffx::engine::pipeline::{RunMetrics, RunOptions, run};
use stiffx::error::Error;
use stiffx::eval::evaluate::evaluate;
use stiffx::model::Weights;

fn sig(v: f64) -> String {
    format!("{v:.3e}")
}

fn snapshot_view(m: &RunMetrics) -> serde_json::Value {
    let per_eps: Vec<_> = m
        .eval
        .per_eps
        .iter()
        .map(|e| {
            serde_json::json!({
                "eps": e.eps, "rollout_l2": sig(e.rollout_l2), "fast_abs": sig(e.fast_abs), "slow_abs": sig(e.slow_abs),
                "fast_rel": sig(e.fast_rel), "complex_fraction": sig(e.complex_fraction), "points": e.points,
                "fast_rel_p99": sig(e.fast_rel_p99), "fast_rel_max": sig(e.fast_rel_max), "worst_eigenvalue": e.worst_eigenvalue,
            })
        })
        .collect();
    serde_json::json!({
        "n_train": m.n_train, "n_val": m.n_val, "epochs": m.epochs, "best_epoch": m.best_epoch,
        "best_val_loss": sig(m.best_val_loss), "per_eps": per_eps,
        "grid_mean_fast_rel": sig(m.eval.grid_mean.fast_rel),
    })
}

#[test]
fn tiny_run_is_deterministic_and_snapshotted() {
    let cfg = crate::tiny_config();
    let a = run(&cfg, &RunOptions::default()).unwrap();
    let b = run(&cfg, &RunOptions::default()).unwrap();
    assert_eq!(a.eval.per_eps, b.eval.per_eps, "same seed, same metrics");
    assert_eq!(a.best_val_loss, b.best_val_loss);
    insta::assert_json_snapshot!("tiny_run", snapshot_view(&a));
}

/// `train.precision = "f64"`: the checkpoint keeps the f64 weights unrounded (re-evaluating it gives the
/// run's metrics exactly), metrics.json says how the network was trained, and the run is deterministic.
#[test]
fn f64_training_checkpoints_reproduce_the_metrics_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tiny_config();
    cfg.train.precision = Precision::F64;
    let opts = RunOptions { out: Some(dir.path().to_path_buf()), figures: false, ..RunOptions::default() };
    let m = run(&cfg, &opts).unwrap();
    assert_eq!(m.train_precision, Precision::F64);
    let ck = Checkpoint::load(&dir.path().join("checkpoint.json")).unwrap();
    let w = ck.weights.layers.iter().flat_map(|l| l.w.iter().chain(&l.b));
    assert!(w.clone().any(|v| f64::from(*v as f32) != *v), "f64 weights, not f32 ones");
    let device = opts.backend.device().unwrap();
    let (ev, _) = evaluate(&ck, &ck.config.eval_eps(), &device, Precision::F64, opts.jacobian).unwrap();
    assert_eq!(ev.per_eps, m.eval.per_eps);
    let json = std::fs::read_to_string(dir.path().join("metrics.json")).unwrap();
    assert!(json.contains("\"train_precision\": \"f64\""), "{json}");
    let again = run(&cfg, &RunOptions::default()).unwrap();
    assert_eq!((again.best_val_loss, again.eval.per_eps), (m.best_val_loss, m.eval.per_eps));
    // The default, f32, is not written.
    let f32_run = run(&crate::tiny_config(), &RunOptions::default()).unwrap();
    assert!(!serde_json::to_string(&f32_run).unwrap().contains("train_precision"));
}

#[test]
fn checkpoint_reproduces_the_metrics_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::tiny_config();
    let opts = RunOptions { out: Some(dir.path().to_path_buf()), ..RunOptions::default() };
    let m = run(&cfg, &opts).unwrap();
    for f in [
        "config.toml",
        "checkpoint.json",
        "loss_curve.csv",
        "label_bias.csv",
        "per_eps.csv",
        "metrics.json",
        "traces.csv",
        "figures/loss.png",
        "figures/trajectories.png",
        "figures/eigenvalues.png",
        "figures/errors_vs_eps.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }
    let ck = Checkpoint::load(&dir.path().join("checkpoint.json")).unwrap();
    assert_eq!(ck.epoch, m.best_epoch);
    let device = opts.backend.device().unwrap();
    let (ev, tr) = evaluate(&ck, &ck.config.eval_eps(), &device, Precision::F64, opts.jacobian).unwrap();
    assert_eq!(ev.per_eps, m.eval.per_eps);
    // traces.csv reads back to the same trajectories and eigenvalues (the figures are drawn from it).
    let back = stiffx::eval::evaluate::read_traces(&dir.path().join("traces.csv"), 2).unwrap();
    assert_eq!(
        (&back.times, &back.eps, &back.reference, &back.learned),
        (&tr.times, &tr.eps, &tr.reference, &tr.learned)
    );
    assert_eq!(back.learned_eigs, tr.learned_eigs);
    assert_eq!(ev.reference, m.eval.reference);
    let curve = std::fs::read_to_string(dir.path().join("loss_curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 1 + cfg.train.epochs as usize);
    // No temporary files are left behind by the atomic writes.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 9, "{names:?}"); // checkpoint.json + checkpoint.safetensors among them
}

#[test]
fn divergence_stops_with_a_clear_error_and_keeps_the_best_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tiny_config();
    cfg.train.lr = 1e9;
    let opts = RunOptions { out: Some(dir.path().to_path_buf()), ..RunOptions::default() };
    let err = run(&cfg, &opts).unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err:?}");
    assert!(err.to_string().contains("diverged") && err.to_string().contains("learning rate"), "{err}");
    let ck = Checkpoint::load(&dir.path().join("checkpoint.json")).expect("best checkpoint kept and loadable");
    assert!(ck.val_loss.is_finite());
    assert!(!dir.path().join("metrics.json").exists(), "no metrics for a failed run");
}

#[test]
fn bad_checkpoints_are_rejected_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ck.json");
    std::fs::write(&p, "{\"format\": \"something-else\"}").unwrap();
    let e = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(e.contains("ck.json") && e.contains("`something-else`") && e.contains("stiffx-checkpoint-2"), "{e}");
    std::fs::write(&p, "{\"format\": \"stiffx-checkpoint-2\", \"dim\": 2}").unwrap();
    let e = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(e.contains("ck.json") && e.contains("not a stiffx checkpoint"), "{e}");
    std::fs::write(&p, "[1, 2").unwrap();
    let e = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(e.contains("ck.json") && e.contains("not a JSON file"), "{e}");
}

#[test]
fn metrics_with_diverged_rollouts_round_trip_through_metrics_json() {
    // A diverged rollout has an infinite error; metrics.json must read back (a resumed sweep reads it).
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::tiny_config();
    let opts = RunOptions { out: Some(dir.path().to_path_buf()), figures: false, ..RunOptions::default() };
    let mut m = run(&cfg, &opts).unwrap();
    m.eval.per_eps[0].rollout_l2 = f64::INFINITY;
    m.eval.reference.fast_rel = f64::NAN;
    let path = dir.path().join("metrics.json");
    stiffx::io::write_json(&path, &m).unwrap();
    let back: RunMetrics = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back.eval.per_eps[0].rollout_l2, f64::INFINITY);
    assert!(back.eval.reference.fast_rel.is_nan());
    assert_eq!(back.eval.per_eps[1], m.eval.per_eps[1]);
}

#[test]
fn relative_weighting_changes_the_objective_and_stays_deterministic() {
    use stiffx::train::config::Weighting;
    let mut cfg = crate::tiny_config();
    let uniform = run(&cfg, &RunOptions::default()).unwrap();
    cfg.train.weighting = Weighting::Relative;
    let data = stiffx::engine::data::generate(&cfg).unwrap();
    let prep = stiffx::engine::prepare::prepare(&cfg, &data).unwrap();
    assert_eq!(prep.train.weights.len(), prep.train.targets.len());
    let mean = prep.train.weights.iter().sum::<f64>() / prep.train.weights.len() as f64;
    assert!((mean - 1.0).abs() < 1e-4, "weights normalised to mean 1 on the training split: {mean}");
    assert!(prep.train.weights.iter().all(|w| w.is_finite() && *w > 0.0));
    let a = run(&cfg, &RunOptions::default()).unwrap();
    let b = run(&cfg, &RunOptions::default()).unwrap();
    assert_eq!(a.eval.per_eps, b.eval.per_eps);
    assert!(a.best_val_loss.is_finite() && a.best_val_loss != uniform.best_val_loss);
    assert!(a.eval.per_eps.iter().all(|e| e.fast_rel.is_finite()));
}

/// Every file in `configs/` is a valid run config (parsed and validated, every key known) or a sweep
/// spec (sweep or compare) whose jobs' configs are: what the README and the configs' comments promise
/// to run does parse. Every run config also fits a small machine: its memory estimate
/// (`Config::memory_estimate`, what `validate` checks against the memory available) is under 2 GB, and
/// the check refuses it under a limit below its estimate.
#[test]
fn every_shipped_config_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let (mut checked, mut estimated) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A config that learns from a file alone (no `[system]`: the file is the system) whose files
        // earlier steps write (`examples/robertson_trajectories.py`, `stiffx identify`): without them,
        // the error names one of them.
        let data = table.get("sampler").and_then(|s| s.get("path")).and_then(|p| p.as_str());
        if let Some(data) = data.filter(|p| !table.contains_key("system") && !std::path::Path::new(p).exists()) {
            let e = stiffx::config::Config::from_file(&path).unwrap_err().to_string();
            let init =
                table.get("model").and_then(|m| m.get("init")).and_then(|i| i.get("file")).and_then(|f| f.as_str());
            let named = [Some(data), init].into_iter().flatten().any(|f| e.contains(f));
            assert!(named && e.contains("cannot read"), "{}: {e}", path.display());
            checked += 1;
            continue;
        }
        // A network started from a file an earlier step writes (`[model.init]`, e.g. `stiffx identify`'s
        // `runs/pollu_id/mechanism.yaml`): without that file the config names it; it is then checked
        // with the system's own mechanism file in its place.
        let init = table.get("model").and_then(|m| m.get("init")).and_then(|i| i.get("file")).and_then(|f| f.as_str());
        if let Some(init) = init.filter(|f| !std::path::Path::new(f).exists()) {
            let e = stiffx::config::Config::from_file(&path).unwrap_err().to_string();
            assert!(e.contains(init) && e.contains("model"), "{}: {e}", path.display());
            // A config without a mechanism file of its own (a data system whose file exists here,
            // e.g. after `examples/robertson_trajectories.py`) has nothing to put in its place.
            let Some(system) = table.get("system").and_then(|s| s.get("file")).and_then(|f| f.as_str()) else {
                checked += 1;
                continue;
            };
            text = text.replace(init, system);
        }
        if table.contains_key("configs") {
            // A spec of the experiment engine: every job's config parses and validates.
            let spec = stiffx::engine::Spec::load(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let jobs = spec.jobs().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!jobs.is_empty(), "{}", path.display());
        } else {
            let cfg = stiffx::config::Config::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cfg.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let total: f64 = cfg.memory_estimate().iter().map(|(_, b)| b).sum();
            println!("{}: {}", path.display(), stiffx::resources::human(total));
            assert!(total > 0.0 && total < 2e9, "{}: {total}", path.display());
            assert!(cfg.check_resources(Some(2_000_000_000)).is_ok());
            assert!(cfg.check_resources(Some((total / 2.0) as u64)).is_err(), "{}", path.display());
            estimated += 1;
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} configs");
    assert!(estimated >= 10, "only {estimated} run configs found in configs/");
}

/// The Jacobian loss's labels (`train.jacobian`) are the exact Jacobian carried into network space: at
/// every trajectory point `∂G_k/∂u_j` equals central differences of `T(F(x(u)))` in the standardised
/// asinh inputs (Robertson: per-species input scales, a per-eps asinh transform); cloud samples carry
/// none; every trajectory point of either split carries them; the weights are relative errors per
/// entry, floored at a fraction of the entry's median, averaging λ_J.
#[test]
fn jacobian_labels_are_the_exact_jacobian_in_network_space() {
    use stiffx::plugins::sampler::Origin;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny_robertson.toml");
    let mut cfg = stiffx::config::Config::from_file(&path).unwrap();
    cfg.train.jacobian = 2.0;
    let data = stiffx::engine::data::generate(&cfg).unwrap();
    let prep = stiffx::engine::prepare::prepare(&cfg, &data).unwrap();
    let (set, d) = (&data.set, 3);
    let labelled = |ds: &stiffx::train::Dataset| {
        (0..ds.len()).filter(|r| ds.jacobian_weights[r * 9..(r + 1) * 9].iter().any(|w| *w > 0.0)).count()
    };
    let base = (0..set.len()).filter(|&i| matches!(set.origin[i], Origin::Trajectory { .. })).count();
    assert!(base > 0 && base < set.len());
    assert_eq!(labelled(&prep.train) + labelled(&prep.val), base);
    // Weights: a relative error per entry, floored at 1 % of the entry's median, mean λ_J over the
    // training split's labelled entries; the structural zeros (∂y3'/∂y1, ∂y3'/∂y3) get finite weights.
    let ws: Vec<f64> = prep.train.jacobian_weights.iter().filter(|w| **w > 0.0).copied().collect();
    assert_eq!(ws.len(), labelled(&prep.train) * 9);
    let mean = ws.iter().sum::<f64>() / ws.len() as f64;
    assert!((mean - 2.0).abs() < 1e-4 * 2.0, "{mean}");
    let idx: Vec<usize> = (0..set.len()).collect();
    let (nz, t) = (&prep.normalizer, prep.transform.as_ref());
    let (jac, has) = stiffx::train::weights::jacobian_labels(cfg.system.as_ref(), set, &data.labels, &idx, nz, t);
    let m = stiffx::train::weights::jacobian_medians(&jac, &has, d);
    let w = stiffx::train::weights::jacobian_weights(&jac, &has, d, &m, 1e-2);
    for (e, &we) in w.iter().enumerate() {
        if !has[e / 9] {
            assert_eq!(we, 0.0);
            continue;
        }
        assert!(we.is_finite() && we > 0.0);
        assert!((we * jac[e].powi(2).max((1e-2 * m[e % 9]).powi(2)) - 1.0).abs() < 1e-9);
        if e % 9 == 2 || e % 9 == 8 {
            assert_eq!(jac[e], 0.0, "∂y3'/∂y1 and ∂y3'/∂y3 vanish");
        }
    }
    // A structural zero's floor is on the scale of its output's other entries (∂y3'/∂y2's median).
    assert_eq!(m[2], m[5]);
    assert_eq!(m[8], m[5]);
    // Row r of a split is the sample idx[r]: labels of a reversed subset are the same samples' labels.
    let sub: Vec<usize> = (0..set.len()).rev().step_by(3).collect();
    let (jsub, hsub) = stiffx::train::weights::jacobian_labels(cfg.system.as_ref(), set, &data.labels, &sub, nz, t);
    for (r, &i) in sub.iter().enumerate() {
        assert_eq!(hsub[r], has[i]);
        assert_eq!(jsub[r * 9..(r + 1) * 9], jac[i * 9..(i + 1) * 9]);
    }
    for i in (0..set.len()).step_by(7) {
        assert_eq!(has[i], matches!(set.origin[i], Origin::Trajectory { .. }));
    }
    // Labels against central differences through the input map and the transform.
    let rows: Vec<usize> = (0..set.len()).step_by(7).filter(|&i| has[i]).collect();
    assert_labels_are_central_differences(&cfg, set, &jac, nz, t, &rows, 1e-5);
}

/// With linear state inputs (Davis–Skodje, `configs/tiny.toml`) the Jacobian labels are
/// `T'(F)·∂F/∂x·σ`: central differences of `T(F(x))` in the standardised inputs `u = (x − μ)/σ`.
#[test]
fn jacobian_labels_with_linear_inputs() {
    let mut cfg = crate::tiny_config();
    cfg.train.jacobian = 1.0;
    let data = stiffx::engine::data::generate(&cfg).unwrap();
    let prep = stiffx::engine::prepare::prepare(&cfg, &data).unwrap();
    let (set, nz, t) = (&data.set, &prep.normalizer, prep.transform.as_ref());
    assert!(nz.state_scale.is_empty());
    let idx: Vec<usize> = (0..set.len()).collect();
    let (jac, has) = stiffx::train::weights::jacobian_labels(cfg.system.as_ref(), set, &data.labels, &idx, nz, t);
    let rows: Vec<usize> = (0..set.len()).filter(|&i| has[i]).step_by(5).collect();
    assert_labels_are_central_differences(&cfg, set, &jac, nz, t, &rows, 1e-6);
    let a = run(&cfg, &RunOptions::default()).unwrap();
    assert!(a.best_val_loss.is_finite() && a.eval.per_eps.iter().all(|e| e.fast_rel.is_finite()));
}

/// Asserts that the Jacobian labels `jac` (all samples, axis-major) at `rows` equal central differences
/// (step 1e-5) of `T(F(x(u)))` in the standardised inputs, `x_j(u) = σ_j u_j + μ_j` for linear inputs
/// and `c_j sinh(σ_j u_j + μ_j)` for asinh ones, within `rel` of the largest entry along each axis.
fn assert_labels_are_central_differences(
    cfg: &stiffx::config::Config,
    set: &stiffx::plugins::sampler::SampleSet,
    jac: &[f64],
    nz: &stiffx::model::Normalizer,
    t: &dyn stiffx::plugins::transform::TargetTransform,
    rows: &[usize],
    rel: f64,
) {
    let d = set.dim;
    assert!(rows.len() > 10, "{} rows checked", rows.len());
    for &i in rows {
        let (x, eps) = (set.state(i), set.eps[i]);
        for j in 0..d {
            let to_x = |u: f64| {
                let v = nz.std[j] * u + nz.mean[j];
                if nz.state_scale.is_empty() { v } else { nz.state_scale[j] * v.sinh() }
            };
            let phi = if nz.state_scale.is_empty() { x[j] } else { (x[j] / nz.state_scale[j]).asinh() };
            let u = (phi - nz.mean[j]) / nz.std[j];
            let h = 1e-5;
            let at = |uj: f64| {
                let mut y = x.to_vec();
                y[j] = to_x(uj);
                let mut f = vec![0.0; d];
                cfg.system.rhs(&y, eps, &mut f);
                (0..d).map(|k| t.forward(k, f[k], eps)).collect::<Vec<_>>()
            };
            let (up, down) = (at(u + h), at(u - h));
            let scale = (0..d).map(|k| jac[(i * d + j) * d + k].abs()).fold(0.0, f64::max);
            for k in 0..d {
                let fd = (up[k] - down[k]) / (2.0 * h);
                let label = jac[(i * d + j) * d + k];
                assert!((fd - label).abs() <= rel * scale + 1e-9, "row {i}, ∂G{k}/∂u{j}: {label} vs {fd}");
            }
        }
    }
}

/// A chemical reaction neural network (`activation = "exp"`, `state_input = "log"`, one hidden layer)
/// through the whole pipeline on Robertson: the normaliser holds the `log` map with its offsets at
/// 1e-12 of each species' largest value, training keeps every reaction order
/// (the first layer's state rows) `≥ 0` after every Adam step (with an L1 shrinkage step) while the eps
/// exponents stay free and the output layer has no bias, and
/// the checkpoint (activation, constraint, map) reproduces the run's metrics exactly.
#[test]
fn a_reaction_network_trains_with_nonnegative_orders_and_reloads() {
    use stiffx::model::StateMap;
    use stiffx::model::config::{Activation, StateInput};
    let dir = tempfile::tempdir().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny_robertson.toml");
    let mut cfg = stiffx::config::Config::from_file(&path).unwrap();
    cfg.model.activation = Activation::Exp;
    cfg.model.state_input = StateInput::Log;
    (cfg.model.hidden, cfg.model.width, cfg.train.epochs, cfg.train.lr, cfg.train.order_l1) = (1, 4, 5, 3e-2, 1e-3);
    cfg.transform = Box::new(stiffx::plugins::transform::Identity {});
    let opts = RunOptions { out: Some(dir.path().to_path_buf()), figures: false, ..RunOptions::default() };
    let m = run(&cfg, &opts).unwrap();
    assert!(m.best_val_loss.is_finite() && m.eval.per_eps.iter().all(|e| e.fast_rel.is_finite()));
    let ck = Checkpoint::load(&dir.path().join("checkpoint.json")).unwrap();
    assert_eq!((ck.weights.activation, ck.weights.mass_action), (Activation::Exp, true));
    assert_eq!(ck.normalizer.state_map, StateMap::Log);
    assert!(ck.weights.layers[1].b.iter().all(|b| *b == 0.0), "no output bias");
    let reactions: Vec<stiffx::model::Reaction> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reactions.json")).unwrap()).unwrap();
    assert_eq!(Some(reactions), ck.weights.reactions(&ck.normalizer));
    let data = stiffx::engine::data::generate(&cfg).unwrap();
    for (i, c) in ck.normalizer.state_scale.iter().enumerate() {
        let max = (0..data.set.len()).map(|r| data.set.state(r)[i].abs()).fold(0.0, f64::max);
        assert!((c / (1e-12 * max) - 1.0).abs() < 1e-12, "species {i}: offset {c}, largest value {max}");
    }
    let first = &ck.weights.layers[0];
    assert_eq!((first.d_in, first.d_out, ck.weights.layers.len()), (4, 4, 2));
    let (orders, eps_row) = first.w.split_at(3 * 4);
    assert!(orders.iter().all(|v| *v >= 0.0), "orders {orders:?}");
    assert!(orders.iter().filter(|v| **v > 0.0).count() > 4, "the orders train: {orders:?}");
    // One training eps: the eps input is constant, so its row gets no gradient; it keeps its initial,
    // partly negative values: the projection leaves eps's exponents free.
    assert_eq!(eps_row, &Weights::init(4, 1, 4, 3, cfg.seed).layers[0].w[12..]);
    assert!(eps_row.iter().any(|v| *v < 0.0));
    let device = opts.backend.device().unwrap();
    let (ev, _) = evaluate(&ck, &ck.config.eval_eps(), &device, opts.eval_precision, opts.jacobian).unwrap();
    assert_eq!(ev.per_eps, m.eval.per_eps);
}
