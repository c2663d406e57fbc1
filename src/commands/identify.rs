//! `stiffx identify`: a mass-action mechanism from a config's labelled data by sparse regression
//! ([`crate::identify`]) — with a `data` sampler and `finite-difference` labels, from trajectories
//! alone. Writes `mechanism.yaml` (runs again with `stiffx run --system`), `identification.json`
//! (reactions, power-law misfits, residuals, conservation laws) and `label_bias.csv`; when the config's
//! system is a mechanism, matches the identified reactions against it (`matching.json`); and evaluates
//! the identified file — read back from what was written — against the config's system with the
//! metrics of `stiffx eval` (`per_eps.csv`, `evaluation.json`, `time_windows.csv`; rollouts with the
//! config's integrator and the file's analytic Jacobian). With `--holdout FILE.csv`, also rolls out
//! every trajectory of a held-out data file from its first state and compares (`holdout.csv`): the
//! evaluation that needs no reference system.

use std::path::Path;
use std::time::Instant;

use crate::cli::IdentifyArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::reactions::{learned_mechanism, match_reactions, monomial_label};
use crate::eval::spectral::JacobianMode;
use crate::identify::{IdentifyConfig, identify as fit};
use crate::io::{write_atomic, write_csv, write_json};
use crate::plugins::data::DataFile;
use crate::plugins::mechanism::{MechanismSystem, mechanism_of, write::to_yaml};

use super::{print_eval_table, time_label};

/// Tolerance on a reaction group's relative error for it to count as recovered.
const RECOVERED_TOL: f64 = 0.01;

/// `stiffx identify --config C --out DIR` (`--data FILE.csv` instead of `--config`:
/// `identify_data`).
pub fn identify(a: &IdentifyArgs) -> Result<()> {
    let config = a
        .config
        .as_deref()
        .ok_or_else(|| Error::invalid("--config", "(not given)", "a TOML config, or --data FILE.csv"))?;
    from_config(a, config, &settings(a))
}

/// The identification's settings from the flags.
pub(super) fn settings(a: &IdentifyArgs) -> IdentifyConfig {
    IdentifyConfig {
        max_order: a.max_order,
        threshold: a.threshold,
        weight_floor: a.weight_floor,
        invariant_tol: a.invariant_tol,
        power_law_tol: a.power_law_tol,
        trim: a.trim,
        ..IdentifyConfig::default()
    }
}

fn from_config(a: &IdentifyArgs, config: &Path, icfg: &IdentifyConfig) -> Result<()> {
    for (flag, given) in [("--fd-order", a.fd_order.is_some()), ("--jackknife", a.jackknife.is_some())] {
        if given {
            return Err(Error::invalid(
                flag,
                "(given with --config)",
                "only with --data (with --config the labels are the config's labeller's)",
            ));
        }
    }
    let mut cfg = Config::from_file(config)?;
    if let Some(seed) = a.seed {
        cfg.seed = seed;
    }
    cfg.validate()?;
    // From data alone: `stiffx identify --data FILE` (no config, no reference).
    cfg.require_reference("`stiffx identify --config` (its evaluation)")?;
    let sys = cfg.system.as_ref();
    icfg.validate(sys.dim())?;
    println!("sampling and labelling ({}; {}) …", cfg.sampler.describe(), cfg.labeller.describe());
    let data = crate::engine::data::generate(&cfg)?;
    println!(
        "  {} points at {} stiffness values ({:.1} s sampling, {:.1} s labelling)",
        data.set.len(),
        distinct(&data.set.eps).len(),
        data.sample_secs,
        data.label_secs
    );
    write_csv(&a.out.join("label_bias.csv"), &data.bias)?;
    let names = sys.state_names();
    for name in &names {
        let med = data.bias.iter().filter(|b| &b.component == name).map(|b| b.median_rel).fold(0.0, f64::max);
        println!("  label error against the system's RHS, {name}: median relative ≤ {med:.1e} at every eps");
    }
    let id = fit_and_print(&data.set, &data.labels, icfg, &names)?;
    let learned: Vec<_> = id.reactions.iter().map(|r| r.reaction.clone()).collect();
    let mech = learned_mechanism(&learned, sys, cfg.eval.horizon, 0.0);
    let identified = write_identified(&a.out, &mech, &id, icfg, &config.display().to_string())?;
    if let Some(truth) = mechanism_of(sys) {
        let report = match_reactions(&truth, &identified.mechanism, RECOVERED_TOL);
        for line in report.lines() {
            println!("{line}");
        }
        write_json(&a.out.join("matching.json"), &report)?;
    }
    let mut eps_list = sys.train_grid();
    if a.unseen {
        eps_list.extend(sys.unseen_grid());
    }
    println!("evaluating against the config's system …");
    let (ev, traces) =
        crate::eval::evaluate::evaluate_field(&cfg, &SystemField(&identified), &eps_list, JacobianMode::default())?;
    write_csv(&a.out.join("per_eps.csv"), &ev.per_eps)?;
    write_json(&a.out.join("evaluation.json"), &ev)?;
    let w = crate::eval::evaluate::write_time_windows(&a.out, &cfg, &traces)?;
    print_eval_table(&ev.per_eps);
    if let Some(p) = &ev.grid_mean.pointwise {
        println!(
            "pointwise over {} points: fast rel p99 {:.3e}, max {:.3e}; all eigenvalues p99 {:.3e}, max {:.3e}",
            p.points, p.fast_rel.p99, p.fast_rel.max, p.all_rel.p99, p.all_rel.max
        );
    }
    let pooled = crate::eval::metrics::pool_windows(&w);
    for (i, p) in pooled.iter().enumerate() {
        let what = if i + 1 == pooled.len() {
            "all points".into()
        } else {
            format!("t {}…{}", time_label(p.t_from), time_label(p.t_to))
        };
        println!(
            "  every nonzero eigenvalue within 5 %, {what:>14}: {:>5.1} %  ({} points)",
            100.0 * p.all_within,
            p.points
        );
    }
    if let Some(h) = &a.holdout {
        let tol = (cfg.eval.rollout_rtol, cfg.eval.rollout_atol);
        let file = crate::eval::holdout::read_holdout(h, &names, &sys.train_grid())?;
        let rows = rollouts(&identified, &names, &file, tol, h);
        write_csv(&a.out.join("holdout.csv"), &rows)?;
        print_rollouts("held-out trajectories", h, &rows, "the file's Jacobian");
    }
    println!("results in {}", a.out.display());
    Ok(())
}

/// The regression of [`crate::identify`] on labelled points, its conservation laws and reactions printed.
pub(super) fn fit_and_print(
    set: &crate::plugins::sampler::SampleSet,
    labels: &[f64],
    icfg: &IdentifyConfig,
    names: &[String],
) -> Result<crate::identify::Identified> {
    let t = Instant::now();
    let id = fit(set, labels, icfg)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "identified {} reaction(s) from a library of {} monomials (order ≤ {}, threshold {:e}) in {secs:.2} s",
        id.reactions.len(),
        id.library,
        icfg.max_order,
        icfg.threshold
    );
    if icfg.trim > 0.0 {
        let per: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(k, n)| format!("{n} {}", id.per_eps.iter().map(|f| f.trimmed[k]).sum::<usize>()))
            .collect();
        println!("  trimmed (residual > {} × median) of {} points: {}", icfg.trim, set.len(), per.join(", "));
    }
    let label = |nu: &[u32]| monomial_label(&nu.iter().map(|e| *e as i64).collect::<Vec<_>>(), names);
    for p in &id.pruned {
        let law = label(&p.monomial);
        let part = p.species.as_ref().map_or(String::new(), |ks| {
            let ks: Vec<&str> = ks.iter().map(|&k| names[k].as_str()).collect();
            format!(", its terms in {} only", ks.join(", "))
        });
        println!("  pruned: rate law {law}{part} (power-law misfit {:.2e} > {:e})", p.misfit, icfg.power_law_tol);
    }
    for w in &id.invariants {
        let terms: Vec<String> =
            w.iter().zip(names).filter(|(v, _)| v.abs() > 1e-9).map(|(v, n)| format!("{v:+.6} {n}")).collect();
        println!("  conservation law of the data: {} = const", terms.join(" "));
    }
    for f in &id.per_eps {
        for (k, c) in f.condition.iter().enumerate() {
            if *c > crate::identify::COLLINEAR {
                println!(
                    "  warning: at eps = {}, the terms kept for {} are (nearly) collinear on the data (condition {c:.1e}): the data cannot tell them apart, and the mechanism below is one of many that fit; trajectories from other initial states help",
                    f.eps, names[k]
                );
            }
        }
    }
    println!("  {:>4} {:>26} {:>14} {:>9} {:>12}  stoichiometry", "#", "rate law", "k", "eps^", "misfit");
    for (j, r) in id.reactions.iter().enumerate() {
        let law = label(&r.monomial);
        let s: Vec<String> = r.reaction.stoichiometry.iter().map(|v| format!("{v:+.5}")).collect();
        println!(
            "  {:>4} {law:>26} {:>14.6e} {:>9.4} {:>12.2e}  ({})",
            j + 1,
            r.reaction.rate_constant,
            r.reaction.eps_exponent,
            r.power_law_misfit,
            s.join(", ")
        );
    }
    Ok(id)
}

/// Writes `mechanism.yaml` and `identification.json` into `out` and returns the file as written, read
/// back (what every later step evaluates).
pub(super) fn write_identified(
    out: &Path,
    mech: &crate::plugins::mechanism::Mechanism,
    id: &crate::identify::Identified,
    icfg: &IdentifyConfig,
    source: &str,
) -> Result<MechanismSystem> {
    write_json(&out.join("identification.json"), id)?;
    if mech.reactions.is_empty() {
        // An older run's mechanism in the same folder would read as this one's.
        match std::fs::remove_file(out.join("mechanism.yaml")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Unsupported(format!(
                    "cannot remove the older {}: {e}",
                    out.join("mechanism.yaml").display()
                )));
            }
            _ => {}
        }
        let pruned: Vec<String> = id.pruned.iter().map(|p| format!("{:?} ({:.1e})", p.monomial, p.misfit)).collect();
        return Err(Error::Unsupported(format!(
            "no reaction was identified, so no mechanism.yaml was written (what was fitted and pruned: {}): \
             every rate law was thresholded away or pruned for its power-law misfit in eps{}; \
             try --power-law-tol inf, a lower --threshold, or data that leave the slow manifold",
            out.join("identification.json").display(),
            if pruned.is_empty() {
                String::new()
            } else {
                format!(" (pruned, exponents and misfit: {})", pruned.join(", "))
            }
        )));
    }
    let path = out.join("mechanism.yaml");
    let header = format!(
        "The mechanism stiffx identify found in the data of {source} (sparse regression on mass-action monomials of\n\
         order ≤ {}, threshold {:e}; crate::identify). r = k · eps^eps-power · Π x^order.\n\
         Run it as a system: stiffx run --system THIS_FILE",
        icfg.max_order, icfg.threshold
    );
    let yaml = to_yaml(mech, &header, &format!("identified from {source} ({} reactions)", mech.reactions.len()));
    write_atomic(&path, yaml.as_bytes())?;
    let identified = MechanismSystem::from_text(&yaml, &path.display().to_string())
        .map_err(|e| Error::Unsupported(format!("the identified mechanism does not read back: {e}")))?;
    println!("the identified mechanism → {}", path.display());
    Ok(identified)
}

/// Prints the worst and median errors of a set of rollouts.
pub(super) fn print_rollouts(what: &str, path: &Path, rows: &[HoldoutRow], how: &str) {
    if let Some(w) = rows.iter().max_by(|p, q| p.max_rel.total_cmp(&q.max_rel)) {
        println!(
            "{what} ({}): {} rolled out from their first state (BDF, {how}); worst error relative to the species' range {:.3e} (trajectory `{}`, {} at t = {:e}); median of the per-trajectory worst {:.3e}",
            path.display(),
            rows.len(),
            w.max_rel,
            w.trajectory,
            w.worst_species,
            w.worst_t,
            crate::stats::median(&rows.iter().map(|r| r.max_rel).collect::<Vec<_>>())
        );
    }
}

pub use crate::eval::holdout::HoldoutRow;

/// Rollouts of the trajectories of a data file (their stiffness values resolved,
/// [`DataFile::resolve_eps`]) with the identified mechanism, from each trajectory's first state over
/// its own times, by BDF with tolerances `tol = (rtol, atol)` and the mechanism's analytic Jacobian;
/// errors relative to each species' range over the file ([`crate::eval::holdout`]). `path` names the
/// file in warnings.
pub(super) fn rollouts(
    identified: &MechanismSystem,
    names: &[String],
    file: &DataFile,
    tol: (f64, f64),
    path: &Path,
) -> Vec<HoldoutRow> {
    crate::eval::holdout::rollout_errors(names, file, path, |x0, eps, times| {
        use crate::plugins::system::StiffSystem;
        let sys = identified as &dyn StiffSystem;
        crate::ode::solve_at_with(sys, eps, x0, times, tol.0, tol.1, false, crate::ode::Method::Bdf)
    })
}

/// The distinct values of `eps`, ascending.
pub(super) fn distinct(eps: &[f64]) -> Vec<f64> {
    let mut v = eps.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// A system's own RHS and analytic Jacobian as a learned field: how an identified mechanism
/// (`stiffx identify`, a [`MechanismSystem`](crate::plugins::mechanism::MechanismSystem) read back from
/// the file it wrote) is evaluated against the true system with the same metrics as a network.
struct SystemField<'a>(&'a dyn crate::plugins::system::StiffSystem);

impl crate::eval::spectral::LearnedField for SystemField<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn rhs(&self, x: &[f64], eps: &[f64]) -> Vec<f64> {
        crate::plugins::labeller::exact_rhs_parallel(self.0, x, eps)
    }

    fn jacobian(&self, x: &[f64], eps: &[f64], _mode: JacobianMode) -> Vec<f64> {
        let d = self.0.dim();
        let mut out = Vec::with_capacity(eps.len() * d * d);
        for (i, &e) in eps.iter().enumerate() {
            let j = self.0.jacobian(&x[i * d..(i + 1) * d], e);
            for r in 0..d {
                out.extend((0..d).map(|c| j[(r, c)]));
            }
        }
        out
    }
}
