//! The spectral evaluation of a checkpoint: at every eps, rollouts of the learned RHS from the
//! system's test initial states (or `eval.initial_states`' file) against the reference (eq. 17), learned against exact eigenvalues
//! along the reference trajectories (eq. 18), period errors of oscillators, per-decade time windows,
//! and the traces behind Figs. 7–8 (`traces.csv`).

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::config::Config;
use crate::engine::checkpoint::*;
use crate::error::{Error, Result};
use crate::eval::metrics::{
    EigenErrors, EnsembleMetrics, EpsMetrics, Summary, WindowMetrics, period_rel, rollout_l2, rollout_rel,
};
use crate::eval::spectral::{Ensemble, JacobianMode, LearnedField, LearnedRhs, eigenvalues};
use crate::io::write_csv;

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

/// Reference trajectories, learned rollouts and learned/reference eigenvalues along them.
#[derive(Debug, Clone, Default)]
pub struct Traces {
    /// Stiffness values (one per trajectory).
    pub eps: Vec<f64>,
    /// Output times.
    pub times: Vec<f64>,
    /// Reference states, `m × (N+1) × d`.
    pub reference: Vec<f64>,
    /// Learned rollouts, same layout.
    pub learned: Vec<f64>,
    /// Learned eigenvalues along the reference, `m × (N+1)` lists.
    pub learned_eigs: Vec<Vec<nalgebra::Complex<f64>>>,
    /// Reference eigenvalues, same layout.
    pub reference_eigs: Vec<Vec<nalgebra::Complex<f64>>>,
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
    let t0 = Instant::now();
    let rhs = learned_rhs(ck, device, precision)?;
    let (mut ev, tr) = evaluate_field(&ck.config, &rhs, eps_list, mode)?;
    ev.seconds = t0.elapsed().as_secs_f64();
    Ok((ev, tr))
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
    cfg.require_reference("the spectral evaluation")?;
    let sys = cfg.system.as_ref();
    let d = sys.dim();
    let mut eps_all: Vec<f64> = eps_list.to_vec();
    if !eps_all.contains(&cfg.eval.reference_eps) {
        eps_all.push(cfg.eval.reference_eps);
    }
    for &e in &eps_all {
        sys.check_param(e)?;
    }
    let inits = cfg.test_states()?;
    let times = cfg.eval.times();
    let steps = times.len() - 1;
    let x0: Vec<f64> = inits.iter().flatten().copied().collect();
    let mut tr = Traces { times: times.clone(), ..Default::default() };
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
        tr.reference.extend(r);
        tr.eps.extend(std::iter::repeat_n(e, inits.len()));
    }
    if field.dim() != d {
        return Err(crate::Error::invalid(
            "checkpoint",
            format!("a network of dimension {}", field.dim()),
            format!("a network of the system's dimension {d}"),
        ));
    }
    let x0_all: Vec<f64> = eps_all.iter().flat_map(|_| x0.iter().copied()).collect();
    tr.learned = match cfg.eval.integrator {
        crate::config::Integrator::Rk4 => field.rollout_rk4(&x0_all, &tr.eps, cfg.eval.dt, steps),
        crate::config::Integrator::Bdf => {
            field.rollout_bdf(&x0_all, &tr.eps, &times, cfg.eval.rollout_rtol, cfg.eval.rollout_atol)
        }
    };
    let pts_eps: Vec<f64> = tr.eps.iter().flat_map(|&e| std::iter::repeat_n(e, steps + 1)).collect();
    let jac = field.jacobian(&tr.reference, &pts_eps, mode);
    tr.learned_eigs = eigenvalues(&jac, d);
    tr.reference_eigs =
        (0..pts_eps.len()).map(|p| sys.reference_eigenvalues(&tr.reference[p * d..(p + 1) * d], pts_eps[p])).collect();
    let per_traj = (steps + 1) * d;
    let zeros = sys.invariants().len();
    let mut per_eps = Vec::new();
    // Every point of the listed eps, for the run's pointwise quantiles and worst point.
    let mut pooled = EigenErrors::default();
    for (ei, &e) in eps_all.iter().enumerate() {
        let listed = eps_list.contains(&e);
        let mut errs = EigenErrors::default();
        let (mut rolls, mut rels, mut periods) = (Vec::new(), Vec::new(), Vec::new());
        for t in ei * inits.len()..(ei + 1) * inits.len() {
            let range = t * per_traj..(t + 1) * per_traj;
            let (learned, reference) = (&tr.learned[range.clone()], &tr.reference[range]);
            // A rollout that blew up (DIVERGED_SCALE) is `inf`, not a number to average.
            let rel = rollout_rel(learned, reference, d);
            let blown = crate::eval::metrics::rollout::diverged(learned, reference);
            let l2 = rollout_l2(learned, reference, d);
            rolls.push(if blown || !l2.is_finite() { f64::INFINITY } else { l2 });
            rels.push(if blown { f64::INFINITY } else { rel });
            periods.extend(period_rel(learned, reference, &times, d));
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
    let (mut ev, tr) = evaluate_field(cfg, &ens, eps_list, mode)?;
    let n_t = tr.times.len();
    let pts_eps: Vec<f64> = tr.eps.iter().flat_map(|&e| std::iter::repeat_n(e, n_t)).collect();
    let member_eigs: Vec<_> =
        ens.member_jacobians(&tr.reference, &pts_eps, mode).iter().map(|j| eigenvalues(j, ens.dim())).collect();
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

/// One row of `traces.csv`: a point of a test trajectory with the reference and learned states and
/// the learned and reference eigenvalues (fastest first) along the reference (data of Figs. 7–8).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TraceRow {
    eps: f64,
    trajectory: usize,
    t: f64,
    component: usize,
    reference: f64,
    learned: f64,
    eig_index: usize,
    eig_learned_re: f64,
    eig_learned_im: f64,
    eig_reference_re: f64,
}

/// Writes the evaluation traces as a long-format CSV (one row per point, component and eigenvalue).
pub fn write_traces(path: &Path, tr: &Traces, d: usize) -> Result<()> {
    let np = tr.times.len();
    let mut rows = Vec::with_capacity(tr.eps.len() * np * d);
    for (j, &e) in tr.eps.iter().enumerate() {
        for (i, &t) in tr.times.iter().enumerate() {
            let p = j * np + i;
            for k in 0..d {
                let (l, r) = (&tr.learned_eigs[p][k], &tr.reference_eigs[p][k]);
                rows.push(TraceRow {
                    eps: e,
                    trajectory: j,
                    t,
                    component: k,
                    reference: tr.reference[p * d + k],
                    learned: tr.learned[p * d + k],
                    eig_index: k,
                    eig_learned_re: l.re,
                    eig_learned_im: l.im,
                    eig_reference_re: r.re,
                });
            }
        }
    }
    write_csv(path, &rows)
}

/// Reads a `traces.csv` written by [`write_traces`] back (the imaginary parts of the reference
/// eigenvalues are not stored and read as 0).
pub fn read_traces(path: &Path, d: usize) -> Result<Traces> {
    let bad = |m: String| Error::Checkpoint { path: path.into(), message: m };
    let mut rd = csv::Reader::from_path(path).map_err(|e| bad(format!("cannot read traces: {e}")))?;
    let rows: Vec<TraceRow> =
        rd.deserialize().collect::<std::result::Result<_, _>>().map_err(|e| bad(format!("malformed traces: {e}")))?;
    if d == 0 || rows.is_empty() || !rows.len().is_multiple_of(d) {
        return Err(bad(format!("{} rows do not make whole points of dimension {d}", rows.len())));
    }
    let times: Vec<f64> = rows.iter().filter(|r| r.trajectory == 0 && r.component == 0).map(|r| r.t).collect();
    let np = times.len();
    let m = rows.len() / (np * d).max(1);
    if np == 0 || m * np * d != rows.len() {
        return Err(bad("trajectories of unequal length".into()));
    }
    let mut tr = Traces { times, ..Default::default() };
    for (idx, r) in rows.iter().enumerate() {
        let (p, k) = (idx / d, idx % d);
        if r.trajectory != p / np || r.component != k {
            return Err(bad(format!("row {} is out of order", idx + 2)));
        }
        if k == 0 {
            if p % np == 0 {
                tr.eps.push(r.eps);
            }
            tr.learned_eigs.push(Vec::with_capacity(d));
            tr.reference_eigs.push(Vec::with_capacity(d));
        }
        tr.reference.push(r.reference);
        tr.learned.push(r.learned);
        tr.learned_eigs[p].push(nalgebra::Complex::new(r.eig_learned_re, r.eig_learned_im));
        tr.reference_eigs[p].push(nalgebra::Complex::new(r.eig_reference_re, 0.0));
    }
    Ok(tr)
}

/// For log-spaced evaluations, writes `time_windows.csv`: the eigenvalue errors per decade of time and
/// eps ([`time_windows`](crate::eval::metrics::time_windows)), and returns them (empty for uniform spacing,
/// where nothing is written).
pub fn write_time_windows(out: &Path, cfg: &Config, traces: &Traces) -> Result<Vec<WindowMetrics>> {
    let w = window_metrics(cfg, traces);
    if !w.is_empty() {
        write_csv(&out.join("time_windows.csv"), &w)?;
    }
    Ok(w)
}

/// The eigenvalue errors per decade of time and eps ([`time_windows`](crate::eval::metrics::time_windows))
/// of a log-spaced evaluation; empty for uniform spacing.
pub fn window_metrics(cfg: &Config, traces: &Traces) -> Vec<WindowMetrics> {
    if cfg.eval.spacing != crate::ode::Spacing::Log {
        return Vec::new();
    }
    let zeros = cfg.system.invariants().len();
    crate::eval::metrics::time_windows(&traces.times, &traces.eps, &traces.learned_eigs, &traces.reference_eigs, zeros)
}
