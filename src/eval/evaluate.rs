//! The spectral evaluation of a checkpoint: at every eps, rollouts of the learned RHS from the
//! system's test initial states (or `eval.initial_states`' file) against the reference (eq. 17), learned against exact eigenvalues
//! along the reference trajectories (eq. 18), period errors of oscillators, per-decade time windows,
//! and the traces behind Figs. 7–8 (`traces.csv`).

use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::config::Config;
use crate::engine::checkpoint::*;
use crate::error::Result;
use crate::eval::metrics::{EigenErrors, EnsembleMetrics, EpsMetrics, Summary, period_rel, rollout_l2, rollout_rel};
use crate::eval::spectral::{JacobianMode, LearnedField, LearnedRhs, eigenvalues};
use crate::eval::stacked::Ensemble;
pub use crate::eval::traces::{Traces, read_traces, window_metrics, write_time_windows, write_traces};

/// Per-eps metrics plus the two headline summaries (empty, the default, for a system without a
/// reference: a `data` system is evaluated on trajectories instead, `eval::holdout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Metrics at every evaluated stiffness value.
    pub per_eps: Vec<EpsMetrics>,
    /// Metrics at `eval.reference_eps` (the paper's Table 1 setting).
    pub reference: EpsMetrics,
    /// Means over the evaluated grid.
    pub grid_mean: Summary,
    /// Seconds spent.
    pub seconds: f64,
}

impl Evaluation {
    /// Whether nothing was evaluated (a system without a reference).
    pub fn is_empty(&self) -> bool {
        self.per_eps.is_empty()
    }
}

/// Step 5: RK4 rollouts (eq. 17) from the system's test initial states and eigenvalue errors (eq. 18)
/// along the reference trajectories, at each of `eps_list`.
pub fn evaluate(
    ck: &Checkpoint,
    eps_list: &[f64],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<(Evaluation, Traces)> {
    evaluate_prepared(ck, eps_list, device, precision, mode, None)
}

/// [`evaluate`] with the reference and the network's Jacobians along it prepared beforehand for
/// several checkpoints together ([`prepare_together`]); `None`, or a preparation for other settings
/// (system, `[eval]`, eps, device, precision or Jacobian mode): computed here. The result is the
/// same either way (on flex, bit for bit); `seconds` counts this checkpoint's share of the
/// preparation.
pub fn evaluate_prepared(
    ck: &Checkpoint,
    eps_list: &[f64],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
    prepared: Option<PreparedSpectra>,
) -> Result<(Evaluation, Traces)> {
    let t0 = Instant::now();
    let rhs = learned_rhs(ck, device, precision)?;
    let cfg = &ck.config;
    let key = prepared_key(cfg, eps_list, device, precision, mode);
    let (ev, tr) = match prepared.filter(|p| key.as_ref() == Some(&p.key)) {
        Some(p) => {
            let (mut ev, tr) = evaluate_on(cfg, &rhs, eps_list, p.reference, Some(p.jac), mode)?;
            ev.seconds = t0.elapsed().as_secs_f64() + p.seconds;
            (ev, tr)
        }
        None => {
            let (mut ev, tr) = evaluate_field(cfg, &rhs, eps_list, mode)?;
            ev.seconds = t0.elapsed().as_secs_f64();
            (ev, tr)
        }
    };
    Ok((ev, tr))
}

/// A checkpoint's share of a spectral evaluation prepared together with others ([`prepare_together`]).
#[derive(Debug, Clone)]
pub struct PreparedSpectra {
    /// The settings it was prepared for: the [`Reference::key`], the device, precision and Jacobian
    /// mode.
    pub key: String,
    /// The reference, shared by the checkpoints of that key.
    pub reference: std::sync::Arc<Reference>,
    /// The checkpoint's physical Jacobians at `reference.states`.
    pub jac: Vec<f64>,
    /// This checkpoint's share of the seconds the preparation took.
    pub seconds: f64,
}

/// The most memory [`prepare_together`] gives the Jacobians it prepares, all groups together
/// (512 MiB; the stacked pass briefly holds about twice that).
const PREPARED_BYTES: usize = 512 << 20;

/// What a preparation is valid for: the reference's key and how the Jacobians were computed.
fn prepared_key(
    cfg: &Config,
    eps_list: &[f64],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Option<String> {
    Reference::key(cfg, eps_list).map(|k| format!("{k}|{device:?}|{precision:?}|{mode:?}"))
}

/// Prepares the spectral evaluations of several checkpoints at once (runs trained together, or the
/// checkpoints of `stiffx eval`), `cks[i]` at `eps_lists[i]`: those whose system, `[eval]` settings
/// and evaluated eps agree ([`Reference::key`]) share one
/// [`Reference`] (solved once), and their networks' Jacobians along it come from one stacked pass
/// ([`crate::eval::stacked::jacobians`]; one by one when they do not stack or `mode` is reverse).
/// Entry `i` is for `cks[i]`: `None` for a missing checkpoint, one without a reference system, one
/// alone in its key, or a group whose Jacobians would take more than 512 MiB (it is evaluated as
/// usual).
pub fn prepare_together(
    cks: &[Option<&Checkpoint>],
    eps_lists: &[Vec<f64>],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<Vec<Option<PreparedSpectra>>> {
    assert_eq!(cks.len(), eps_lists.len(), "one eps list per checkpoint");
    let mut out: Vec<Option<PreparedSpectra>> = vec![None; cks.len()];
    let keys: Vec<Option<String>> = cks
        .iter()
        .zip(eps_lists)
        .map(|(ck, eps)| {
            ck.filter(|ck| ck.config.system.has_reference())
                .and_then(|ck| prepared_key(&ck.config, eps, device, precision, mode))
        })
        .collect();
    let mut budget = PREPARED_BYTES;
    let mut done = vec![false; cks.len()];
    for i in 0..cks.len() {
        let Some(key) = keys[i].as_ref().filter(|_| !done[i]) else { continue };
        let group: Vec<usize> = (i..cks.len()).filter(|&j| keys[j].as_ref() == Some(key)).collect();
        group.iter().for_each(|&j| done[j] = true);
        if group.len() < 2 {
            continue;
        }
        let t0 = Instant::now();
        let cfg = &cks[i].expect("a keyed checkpoint").config;
        // The prepared Jacobians are held until each member is evaluated (one by one, each member
        // holds only its own): past PREPARED_BYTES, over all groups, members are evaluated as usual.
        let inits = cfg.test_states()?;
        let points = Reference::eps_all(cfg, &eps_lists[i]).len() * inits.len() * cfg.eval.times().len();
        let d = cfg.system.dim();
        let bytes = group.len().saturating_mul(points).saturating_mul(d * d * 8);
        if bytes > budget {
            continue;
        }
        budget -= bytes;
        let reference = std::sync::Arc::new(Reference::solve_from(cfg, &eps_lists[i], inits)?);
        crate::interrupt::check(|| "solving the reference trajectories".into())?;
        let members: Vec<LearnedRhs> = group
            .iter()
            .map(|&j| learned_rhs(cks[j].expect("a keyed checkpoint"), device, precision))
            .collect::<Result<_>>()?;
        let net = crate::eval::stacked::stack(&members);
        let jacs =
            crate::eval::stacked::jacobians(&members, net.as_ref(), &reference.states, &reference.point_eps, mode);
        let share = t0.elapsed().as_secs_f64() / group.len() as f64;
        for (&j, jac) in group.iter().zip(jacs) {
            out[j] = Some(PreparedSpectra { key: key.clone(), reference: reference.clone(), jac, seconds: share });
        }
    }
    Ok(out)
}

/// The trained network of a checkpoint as a [`LearnedRhs`] on `device`, with its config's eps input and
/// invariant projection.
pub fn learned_rhs(ck: &Checkpoint, device: &Device, precision: Precision) -> Result<LearnedRhs> {
    let cfg = &ck.config;
    let sys = cfg.system.as_ref();
    LearnedRhs::new(
        &ck.weights,
        ck.normalizer.clone(),
        cfg.transform.clone(),
        sys.dim(),
        device.clone(),
        precision.dtype(),
    )?
    .with_eps_input(cfg.model.eps_input)
    .with_invariants(if cfg.model.project_invariants { sys.invariants() } else { Vec::new() }, &cfg.model.eliminate)
}

/// [`evaluate`] for any learned field (one network or an [`Ensemble`]): `cfg` gives the system, the
/// evaluation times, integrator and reference settings.
pub fn evaluate_field(
    cfg: &Config,
    field: &dyn LearnedField,
    eps_list: &[f64],
    mode: JacobianMode,
) -> Result<(Evaluation, Traces)> {
    let t0 = Instant::now();
    let reference = Reference::solve(cfg, eps_list)?;
    let (mut ev, tr) = evaluate_on(cfg, field, eps_list, std::sync::Arc::new(reference), None, mode)?;
    ev.seconds = t0.elapsed().as_secs_f64();
    Ok((ev, tr))
}

/// The part of the spectral evaluation that depends on no network: the reference trajectories from
/// the test initial states at every evaluated eps (the listed ones and `eval.reference_eps`) and the
/// exact eigenvalues along them. Runs of one system and `[eval]` settings share it (`--together`).
#[derive(Debug, Clone)]
pub struct Reference {
    /// The evaluated eps: the listed ones, then `eval.reference_eps` when it is not listed.
    pub eps_all: Vec<f64>,
    /// The test initial states (one trajectory per eps each), `trajectories × d`.
    pub x0: Vec<f64>,
    /// Output times.
    pub times: Vec<f64>,
    /// Reference states, `eps_all.len() · trajectories × times.len() × d`.
    pub states: Vec<f64>,
    /// The eps of each trajectory.
    pub traj_eps: Vec<f64>,
    /// The eps of each reference state.
    pub point_eps: Vec<f64>,
    /// Exact eigenvalues at each reference state.
    pub eigs: Vec<Vec<nalgebra::Complex<f64>>>,
}

impl Reference {
    /// Solves the reference trajectories of `cfg`'s system at `eps_list` (and `eval.reference_eps`).
    pub fn solve(cfg: &Config, eps_list: &[f64]) -> Result<Self> {
        Self::solve_from(cfg, eps_list, cfg.test_states()?)
    }

    /// The evaluated eps: `eps_list`, then `eval.reference_eps` when it is not listed.
    pub fn eps_all(cfg: &Config, eps_list: &[f64]) -> Vec<f64> {
        let mut eps_all: Vec<f64> = eps_list.to_vec();
        if !eps_all.contains(&cfg.eval.reference_eps) {
            eps_all.push(cfg.eval.reference_eps);
        }
        eps_all
    }

    /// [`Reference::solve`] from the test initial states `inits` (`cfg.test_states()`, read once).
    fn solve_from(cfg: &Config, eps_list: &[f64], inits: Vec<Vec<f64>>) -> Result<Self> {
        cfg.require_reference("the spectral evaluation")?;
        let sys = cfg.system.as_ref();
        let d = sys.dim();
        let eps_all = Self::eps_all(cfg, eps_list);
        for &e in &eps_all {
            sys.check_param(e)?;
        }
        let times = cfg.eval.times();
        let x0: Vec<f64> = inits.iter().flatten().copied().collect();
        let (mut states, mut traj_eps) = (Vec::new(), Vec::new());
        for &e in &eps_all {
            let r = crate::ode::solve_at_with(
                sys,
                e,
                &x0,
                &times,
                cfg.eval.reference_rtol,
                cfg.eval.reference_atol,
                false,
                cfg.eval.reference_method,
            )?;
            states.extend(r);
            traj_eps.extend(std::iter::repeat_n(e, inits.len()));
        }
        let point_eps: Vec<f64> = traj_eps.iter().flat_map(|&e| std::iter::repeat_n(e, times.len())).collect();
        let eigs = (0..point_eps.len())
            .map(|p| sys.reference_eigenvalues(&states[p * d..(p + 1) * d], point_eps[p]))
            .collect();
        Ok(Self { eps_all, x0, times, states, traj_eps, point_eps, eigs })
    }

    /// The key under which runs share a reference: their system, `[eval]` settings and eps list
    /// (`None` when they cannot be written down: such a run shares nothing).
    pub fn key(cfg: &Config, eps_list: &[f64]) -> Option<String> {
        serde_json::to_string(&(&cfg.system, &cfg.eval, eps_list)).ok()
    }
}

/// The spectral evaluation of `field` along `reference` ([`Reference::solve`] of `cfg` at `eps_list`):
/// rollouts from the test states, learned eigenvalues along the reference trajectories (from `jac`, the
/// field's Jacobians at `reference.states` computed beforehand, e.g. in one stacked pass for several
/// networks; `None`: computed here), errors per eps. The reference moves into the traces when this is
/// its last holder, and is copied only while others still share it.
pub fn evaluate_on(
    cfg: &Config,
    field: &dyn LearnedField,
    eps_list: &[f64],
    reference: std::sync::Arc<Reference>,
    jac: Option<Vec<f64>>,
    mode: JacobianMode,
) -> Result<(Evaluation, Traces)> {
    let t0 = Instant::now();
    let sys = cfg.system.as_ref();
    let d = sys.dim();
    if field.dim() != d {
        return Err(crate::Error::invalid(
            "checkpoint",
            format!("a network of dimension {}", field.dim()),
            format!("a network of the system's dimension {d}"),
        ));
    }
    let Reference { eps_all, x0, times, states, traj_eps, point_eps, eigs } =
        std::sync::Arc::unwrap_or_clone(reference);
    let steps = times.len() - 1;
    let inits = x0.len() / d;
    let x0: Vec<f64> = eps_all.iter().flat_map(|_| x0.iter().copied()).collect();
    let mut tr = Traces { times, eps: traj_eps, reference: states, reference_eigs: eigs, ..Default::default() };
    let times = &tr.times;
    tr.learned = match cfg.eval.integrator {
        crate::config::Integrator::Rk4 => field.rollout_rk4(&x0, &tr.eps, cfg.eval.dt, steps),
        crate::config::Integrator::Bdf => {
            field.rollout_bdf(&x0, &tr.eps, times, cfg.eval.rollout_rtol, cfg.eval.rollout_atol)
        }
    };
    let jac = match jac {
        Some(j) if j.len() == point_eps.len() * d * d => j,
        _ => field.jacobian(&tr.reference, &point_eps, mode),
    };
    tr.learned_eigs = eigenvalues(&jac, d);
    let per_traj = (steps + 1) * d;
    let zeros = sys.invariants().len();
    let mut per_eps = Vec::new();
    // Every point of the listed eps, for the run's pointwise quantiles and worst point.
    let mut pooled = EigenErrors::default();
    for (ei, &e) in eps_all.iter().enumerate() {
        let listed = eps_list.contains(&e);
        let mut errs = EigenErrors::default();
        let (mut rolls, mut rels, mut periods) = (Vec::new(), Vec::new(), Vec::new());
        for t in ei * inits..(ei + 1) * inits {
            let range = t * per_traj..(t + 1) * per_traj;
            let (learned, reference) = (&tr.learned[range.clone()], &tr.reference[range]);
            // A rollout that blew up (DIVERGED_SCALE) is `inf`, not a number to average.
            let rel = rollout_rel(learned, reference, d);
            let blown = crate::eval::metrics::rollout::diverged(learned, reference);
            let l2 = rollout_l2(learned, reference, d);
            rolls.push(if blown || !l2.is_finite() { f64::INFINITY } else { l2 });
            rels.push(if blown { f64::INFINITY } else { rel });
            periods.extend(period_rel(learned, reference, times, d));
            for p in t * (steps + 1)..(t + 1) * (steps + 1) {
                let (state, time) = (&tr.reference[p * d..(p + 1) * d], times[p % (steps + 1)]);
                errs.add_at(&tr.learned_eigs[p], &tr.reference_eigs[p], zeros, e, time, state);
                let learned = nalgebra::DMatrix::from_row_slice(d, d, &jac[p * d * d..(p + 1) * d * d]);
                let exact = sys.jacobian(state, e);
                let angle = crate::eval::metrics::subspace_angle(
                    &crate::plugins::cloud::fast_eigenvectors(&learned, &tr.learned_eigs[p], 1),
                    &crate::plugins::cloud::fast_eigenvectors(&exact, &tr.reference_eigs[p], 1),
                );
                errs.add_angle(angle);
                if listed {
                    pooled.add_at(&tr.learned_eigs[p], &tr.reference_eigs[p], zeros, e, time, state);
                    pooled.add_angle(angle);
                }
            }
        }
        per_eps.push(EpsMetrics::new(e, &rolls, &rels, &periods, &errs));
    }
    let reference =
        per_eps.iter().find(|m| m.eps == cfg.eval.reference_eps).cloned().expect("reference eps was evaluated");
    let listed: Vec<EpsMetrics> = per_eps.iter().filter(|m| eps_list.contains(&m.eps)).cloned().collect();
    let mut grid_mean = Summary::mean(&listed);
    grid_mean.pointwise = Some(pooled.pointwise());
    Ok((Evaluation { per_eps: listed, reference, grid_mean, seconds: t0.elapsed().as_secs_f64() }, tr))
}

/// Evaluates the deep ensemble of `cks` ([`Ensemble`]: the mean of their fields, with the first
/// checkpoint's system and evaluation settings) like [`evaluate`], and measures what the members'
/// spread says about the learned spectrum ([`EnsembleMetrics`]: one row per eps of `eps_list`, and for
/// log-spaced evaluations one per decade of t, every eps pooled).
pub fn evaluate_ensemble(
    cks: &[Checkpoint],
    eps_list: &[f64],
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<(Evaluation, Traces, Vec<EnsembleMetrics>, Vec<EnsembleMetrics>)> {
    let t0 = Instant::now();
    let ens = Ensemble::new(cks.iter().map(|ck| learned_rhs(ck, device, precision)).collect::<Result<_>>()?)?;
    let cfg = &cks[0].config;
    let reference = Reference::solve(cfg, eps_list)?;
    // The members' Jacobians once (in one stacked pass when they stack): their eigenvalues for the
    // spread, their mean the ensemble's Jacobian.
    let members = ens.member_jacobians(&reference.states, &reference.point_eps, mode);
    let mean = crate::eval::stacked::mean_of(&members);
    let (mut ev, tr) = evaluate_on(cfg, &ens, eps_list, std::sync::Arc::new(reference), Some(mean), mode)?;
    let n_t = tr.times.len();
    let member_eigs: Vec<_> = members.iter().map(|j| eigenvalues(j, ens.dim())).collect();
    let zeros = cfg.system.invariants().len();
    // The listed eps only (the evaluation adds the reference eps when it is not listed).
    let keep: Vec<usize> = (0..tr.eps.len()).filter(|&t| eps_list.contains(&tr.eps[t])).collect();
    let pick = |v: &[Vec<nalgebra::Complex<f64>>]| -> Vec<Vec<nalgebra::Complex<f64>>> {
        keep.iter().flat_map(|t| v[t * n_t..(t + 1) * n_t].iter().cloned()).collect()
    };
    let (spread, windows) = crate::eval::metrics::ensemble_metrics(
        &tr.times,
        &keep.iter().map(|&t| tr.eps[t]).collect::<Vec<_>>(),
        &member_eigs.iter().map(|m| pick(m)).collect::<Vec<_>>(),
        &pick(&tr.learned_eigs),
        &pick(&tr.reference_eigs),
        zeros,
    );
    // Decades of t only for log-spaced evaluations.
    let windows = if cfg.eval.spacing == crate::ode::Spacing::Log { windows } else { Vec::new() };
    ev.seconds = t0.elapsed().as_secs_f64();
    Ok((ev, tr, spread, windows))
}
