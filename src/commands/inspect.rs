//! `stiffx inspect`: the learned RHS, Jacobian and eigenvalues of a checkpoint at given states, next to
//! the exact ones.

use serde::Serialize;

use crate::cli::device_options;
use crate::engine::checkpoint::Checkpoint;
use crate::error::Result;
use crate::eval::reactions::{learned_mechanism, match_reactions};
use crate::eval::spectral::eigenvalues;
use crate::io::write_json;
use crate::plugins::mechanism::{Mechanism, MechanismSystem};

/// The learned operator against the exact one at one state ([`inspect`]).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Stiffness value.
    pub eps: f64,
    /// The state.
    pub state: Vec<f64>,
    /// Learned RHS `F_θ(x, eps)` (projected onto the invariants as in the evaluation).
    pub rhs_learned: Vec<f64>,
    /// Exact RHS.
    pub rhs_exact: Vec<f64>,
    /// Learned Jacobian, row-major `d × d`.
    pub jacobian_learned: Vec<f64>,
    /// Exact Jacobian, row-major.
    pub jacobian_exact: Vec<f64>,
    /// Learned eigenvalues sorted by decreasing modulus, `[re, im]`.
    pub eigenvalues_learned: Vec<[f64; 2]>,
    /// Exact eigenvalues sorted by decreasing modulus, `[re, im]`.
    pub eigenvalues_exact: Vec<[f64; 2]>,
}

/// Parses `--state` values: `dim` comma-separated finite numbers each.
pub fn parse_states(states: &[String], dim: usize) -> Result<Vec<Vec<f64>>> {
    states
        .iter()
        .map(|s| {
            let bad = || {
                crate::Error::invalid(
                    "--state",
                    s,
                    format!("{dim} comma-separated finite numbers (the system's dimension)"),
                )
            };
            let v: Vec<f64> =
                s.split(',').map(|t| t.trim().parse::<f64>().map_err(|_| bad())).collect::<Result<_>>()?;
            if v.len() != dim || v.iter().any(|x| !x.is_finite()) {
                return Err(bad());
            }
            Ok(v)
        })
        .collect()
}

/// `stiffx inspect`: the learned RHS, Jacobian (the evaluation's: autodiff, transform chain rule, input
/// slopes, invariant projection) and eigenvalues at each `--state`, printed entry by entry next to the
/// exact ones — the tool for finding *which* Jacobian entry puts an eigenvalue off.
pub fn inspect(a: &crate::cli::InspectArgs) -> Result<()> {
    let (backend, jacobian, precision) = device_options(&a.device)?;
    let mut ck = Checkpoint::load(&a.checkpoint)?;
    // A data system's checkpoint: the true mechanism (`--truth`) is the exact side.
    let replaced = match (ck.config.system.has_reference(), &a.truth) {
        (false, Some(truth)) => {
            let s = truth.display().to_string();
            let m = MechanismSystem::from_file(&s).map_err(|e| crate::Error::invalid("--truth", &s, e))?;
            super::eval::replace_system(&mut ck.config, Box::new(m), "--truth", &s)?;
            true
        }
        _ => false,
    };
    ck.config
        .require_reference("`stiffx inspect` (learned against exact, entry by entry; --truth FILE.yaml names it)")?;
    let sys = ck.config.system.as_ref();
    sys.check_param(a.eps).map_err(|_| crate::Error::invalid("--eps", a.eps, "an admissible stiffness value (> 0)"))?;
    let d = sys.dim();
    let states = parse_states(&a.state, d)?;
    // All states in one batch through the network, as the evaluation does.
    let rhs = crate::eval::evaluate::learned_rhs(&ck, &backend.device()?, precision)?;
    let (x, eps): (Vec<f64>, Vec<f64>) = (states.concat(), vec![a.eps; states.len()]);
    let (f, j) = (rhs.rhs(&x, &eps), rhs.jacobian(&x, &eps, jacobian));
    // nalgebra stores column-major: the transpose's storage is the row-major matrix.
    let je: Vec<f64> = states.iter().flat_map(|s| sys.jacobian(s, a.eps).transpose().as_slice().to_vec()).collect();
    let pairs = |ev: Vec<Vec<nalgebra::Complex<f64>>>| -> Vec<Vec<[f64; 2]>> {
        ev.into_iter().map(|e| e.iter().map(|l| [l.re, l.im]).collect()).collect()
    };
    let (ev, eve) = (pairs(eigenvalues(&j, d)), pairs(eigenvalues(&je, d)));
    let names = sys.state_names();
    let mut out = Vec::new();
    for (p, (state, (eigenvalues_learned, eigenvalues_exact))) in
        states.into_iter().zip(ev.into_iter().zip(eve)).enumerate()
    {
        let mut rhs_exact = vec![0.0; d];
        sys.rhs(&state, a.eps, &mut rhs_exact);
        let ins = Inspection {
            eps: a.eps,
            state,
            rhs_learned: f[p * d..(p + 1) * d].to_vec(),
            rhs_exact,
            jacobian_learned: j[p * d * d..(p + 1) * d * d].to_vec(),
            jacobian_exact: je[p * d * d..(p + 1) * d * d].to_vec(),
            eigenvalues_learned,
            eigenvalues_exact,
        };
        println!("eps = {}, x = {:?}", ins.eps, ins.state);
        println!("  {:>10} {:>13} {:>13}", "", "learned", "exact");
        for (i, name) in names.iter().enumerate().take(d) {
            println!("  {:>10} {:>13.5e} {:>13.5e}", format!("d{name}/dt"), ins.rhs_learned[i], ins.rhs_exact[i]);
        }
        println!("  Jacobian, learned | exact (row i: ∂F_i/∂x_j):");
        for i in 0..d {
            let row = |m: &[f64]| (0..d).map(|c| format!("{:>12.4e}", m[i * d + c])).collect::<Vec<_>>().join(" ");
            println!("  {} | {}", row(&ins.jacobian_learned), row(&ins.jacobian_exact));
        }
        println!("  eigenvalues (by modulus), learned | exact:");
        for (l, e) in ins.eigenvalues_learned.iter().zip(&ins.eigenvalues_exact) {
            println!("  {:>12.5e} {:+.3e}i | {:>12.5e} {:+.3e}i", l[0], l[1], e[0], e[1]);
        }
        out.push(ins);
    }
    if let Some(reactions) = ck.weights.reactions(&ck.normalizer) {
        println!("learned reactions (mass-action network; r = k · eps^β · Π (x_i + c_i)^ν_i, dx/dt += s · r):");
        for (j, r) in reactions.iter().enumerate() {
            let orders = names
                .iter()
                .zip(&r.orders)
                .filter(|(_, v)| **v != 0.0)
                .map(|(n, v)| format!("{n}^{v:.4}"))
                .collect::<Vec<_>>()
                .join(" ");
            let s = r.stoichiometry.iter().map(|v| format!("{v:+.4}")).collect::<Vec<_>>().join(", ");
            println!("  r{}: k = {:.5e}, eps^{:.4}, {orders}; s = ({s})", j + 1, r.rate_constant, r.eps_exponent);
        }
        if let Some(truth) = true_mechanism(a, &ck)? {
            let learned = learned_mechanism(&reactions, sys, ck.config.eval.horizon, 0.0);
            for line in match_reactions(&truth, &learned, 0.01).lines() {
                println!("{line}");
            }
        }
    } else if let (Some(truth), false) = (&a.truth, replaced) {
        return Err(crate::Error::invalid(
            "--truth",
            truth.display(),
            "a checkpoint of a reaction network (model.activation = \"exp\", model.state_input = \"log\", model.mass_action)",
        ));
    }
    if let Some(p) = &a.out {
        write_json(p, &out)?;
        println!("written to {}", p.display());
    }
    Ok(())
}

/// The true mechanism to match a reaction network against: `--truth FILE`, else the checkpoint's
/// system when it is a mechanism (`None` otherwise). Its species must be the checkpoint's.
fn true_mechanism(a: &crate::cli::InspectArgs, ck: &Checkpoint) -> Result<Option<Mechanism>> {
    let names = ck.config.system.state_names();
    let truth = match &a.truth {
        Some(path) => {
            let m = MechanismSystem::from_file(&path.display().to_string())
                .map_err(|e| crate::Error::invalid("--truth", path.display(), e))?
                .mechanism;
            if m.species != names {
                return Err(crate::Error::invalid(
                    "--truth",
                    path.display(),
                    format!("a mechanism with the checkpoint's species {names:?} (it has {:?})", m.species),
                ));
            }
            m
        }
        None => match crate::plugins::mechanism::mechanism_of(ck.config.system.as_ref()) {
            Some(m) => m,
            None => return Ok(None),
        },
    };
    Ok(Some(truth))
}
