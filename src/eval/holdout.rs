//! Evaluation against held-out trajectories, a data file, for users with data rather than a
//! reference system: a learned operator, a network or an identified mechanism, is rolled out from each
//! trajectory's first state over its own times and compared with the data. With several networks
//! (an ensemble), their eigenvalue spread at the data's states is the trust measure. When the
//! checkpoint names a system, the exact error of the ensemble's eigenvalues at the same points stands
//! beside the spread, so the spread can be checked.
//!
//! Rollout error of trajectory `j` (its states `x(t_i)`, the rollout `x̂(t_i)` from `x(t_0)`), with
//! `range_k` the range of species `k` over the whole file:
//!
//! ```text
//! max_rel = max_{i,k} |x̂_k(t_i) − x_k(t_i)| / range_k,   rms_rel = RMS_{i,k} of the same ratio
//! ```
//!
//! Ensemble spread at a data point `(x, eps)`, with `λ_k^m` member `m`'s eigenvalues (by magnitude,
//! fastest first), `λ̄_k` their mean and `k` over the eigenvalues not set to zero by the system's linear
//! invariants nor zero at that state ([`nonzero_count`]: below `ZERO_TOL` of the fastest exact one):
//!
//! ```text
//! spread = max_k max_m |λ_k^m − λ̄_k| / |λ̄_k|,     error = max_k |λ̄_k − λ_k^true| / |λ_k^true|
//! ```
//!
//! Without a reference (a `data` system) the nonzero eigenvalues are those of `λ̄` itself, the error
//! is NaN, and `|λ̄|`'s fastest and slowest nonzero values — the learned time scales along the data —
//! are what the rows say. [`evaluate_data`] is that evaluation for one network: `stiffx run`'s last
//! stage on a `data` system, and its addition to the spectral one when `eval.data` is set.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use nalgebra::Complex;
use serde::{Deserialize, Serialize};

use crate::backend::Precision;
use crate::engine::checkpoint::Checkpoint;
use crate::error::Result;
use crate::eval::evaluate::learned_rhs;
use crate::eval::metrics::eigen::nonzero_count;
use crate::eval::spectral::{JacobianMode, LearnedField, eigenvalues};
use crate::eval::stacked::Ensemble;
use crate::plugins::data::{DataFile, DataSampler};
use crate::plugins::system::StiffSystem;

/// One held-out trajectory rolled out by a learned operator (`holdout.csv`, `data_rollouts.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutRow {
    /// The trajectory's id in the file.
    pub trajectory: String,
    /// Its stiffness value.
    #[serde(with = "crate::io::float")]
    pub eps: f64,
    /// Its points.
    pub points: usize,
    /// `max_{t,k} |x̂_k(t) − x_k(t)| / range_k` (range of species `k` over the whole file).
    #[serde(with = "crate::io::float")]
    pub max_rel: f64,
    /// RMS over times and species of the same ratio.
    #[serde(with = "crate::io::float")]
    pub rms_rel: f64,
    /// The species and time of the maximum.
    pub worst_species: String,
    /// Time of the maximum.
    #[serde(with = "crate::io::float")]
    pub worst_t: f64,
}

/// Reads held-out trajectories for a system with state `names` and training grid `grid`: a file
/// without an `eps` column is at the grid's only value (an error naming `path` when it has several).
pub fn read_holdout(path: &Path, names: &[String], grid: &[f64]) -> Result<DataFile> {
    let mut file = DataSampler { path: path.display().to_string(), eps: None }.read(names, "eps")?;
    file.resolve_eps(if let [e] = grid { Some(*e) } else { None }, path)?;
    Ok(file)
}

/// Rollouts of every trajectory of `file` (stiffness values resolved) by `solve(x0, eps, times)`
/// (times from 0; `m × times × d` states), errors relative to each species' range over the file. A
/// trajectory the operator cannot integrate is a row with an infinite error and a warning naming
/// `path`, not an abort.
pub fn rollout_errors(
    names: &[String],
    file: &DataFile,
    path: &Path,
    solve: impl Fn(&[f64], f64, &[f64]) -> Result<Vec<f64>>,
) -> Vec<HoldoutRow> {
    let d = names.len();
    let scale: Vec<f64> = file.ranges(d).iter().map(|r| if *r > 0.0 { *r } else { 1.0 }).collect();
    let mut rows = Vec::new();
    for (id, tr) in file.ids.iter().zip(&file.trajectories) {
        let t0 = tr.times[0];
        let times: Vec<f64> = tr.times.iter().map(|t| t - t0).collect();
        let row = |max_rel, rms_rel, worst_species: String, worst_t| HoldoutRow {
            trajectory: id.clone(),
            eps: tr.eps,
            points: tr.times.len(),
            max_rel,
            rms_rel,
            worst_species,
            worst_t,
        };
        let sol = match solve(&tr.states[..d], tr.eps, &times) {
            Ok(s) if s.len() == tr.states.len() => s,
            other => {
                let why = other.err().map_or("the rollout has the wrong length".to_string(), |e| e.to_string());
                eprintln!("warning: trajectory `{id}` of {}: the rollout fails: {why}", path.display());
                rows.push(row(f64::INFINITY, f64::INFINITY, "(integration failed)".into(), f64::NAN));
                continue;
            }
        };
        let (mut max_rel, mut sum, mut at) = (0.0f64, 0.0, (0, 0));
        for (j, (xh, x)) in sol.chunks(d).zip(tr.states.chunks(d)).enumerate() {
            for k in 0..d {
                let e = (xh[k] - x[k]).abs() / scale[k];
                sum += e * e;
                if e > max_rel || e.is_nan() {
                    max_rel = if e.is_nan() { f64::INFINITY } else { e };
                    at = (j, k);
                }
            }
        }
        let rms = (sum / (tr.times.len() * d) as f64).sqrt();
        rows.push(row(max_rel, rms, names[at.1].clone(), tr.times[at.0]));
    }
    rows
}

/// Rollouts of `file` by a learned field: BDF with its Jacobian (tolerances `tol`).
pub fn learned_rollouts(
    field: &dyn LearnedField,
    names: &[String],
    file: &DataFile,
    path: &Path,
    tol: (f64, f64),
) -> Vec<HoldoutRow> {
    rollout_errors(names, file, path, |x0, eps, times| {
        // `rollout_bdf` marks a failed solve with NaN, which the error turns into an infinite one.
        Ok(field.rollout_bdf(x0, &[eps], times, tol.0, tol.1))
    })
}

/// The ensemble's spread and, beside it, the exact error of its eigenvalues, per stiffness value of
/// the data (`data_spectrum.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumRow {
    /// Stiffness value.
    pub eps: f64,
    /// Data points at it.
    pub points: usize,
    /// Median over the points of the ensemble mean's fastest `|λ̄|`.
    #[serde(with = "crate::io::float")]
    pub fast_p50: f64,
    /// Median over the points of its slowest nonzero `|λ̄|`.
    #[serde(with = "crate::io::float")]
    pub slow_p50: f64,
    /// Largest fastest/slowest nonzero ratio at one point.
    #[serde(with = "crate::io::float")]
    pub stiffness_ratio_max: f64,
    /// Median over the points of the relative spread (module docs).
    #[serde(with = "crate::io::float")]
    pub spread_p50: f64,
    /// Its 95th percentile.
    #[serde(with = "crate::io::float")]
    pub spread_p95: f64,
    /// Its maximum.
    #[serde(with = "crate::io::float")]
    pub spread_max: f64,
    /// Median over the points of the ensemble mean's relative eigenvalue error against the
    /// checkpoint's system.
    #[serde(with = "crate::io::float")]
    pub error_p50: f64,
    /// Its 95th percentile.
    #[serde(with = "crate::io::float")]
    pub error_p95: f64,
    /// Its maximum.
    #[serde(with = "crate::io::float")]
    pub error_max: f64,
    /// Share of the points where the spread is at least the error (the spread covers it).
    #[serde(with = "crate::io::float")]
    pub covered: f64,
}

/// Per eps of `file`, the spread of `ens`'s members' eigenvalues at the data's states and the error
/// of their mean against `system`'s exact eigenvalues (NaN for a system without a reference).
pub fn spectrum_rows(
    ens: &Ensemble,
    system: &dyn StiffSystem,
    file: &DataFile,
    mode: JacobianMode,
) -> Vec<SpectrumRow> {
    let d = ens.dim();
    let zeros = system.invariants().len();
    let mut x = Vec::new();
    let mut eps = Vec::new();
    for tr in &file.trajectories {
        x.extend_from_slice(&tr.states);
        eps.extend(std::iter::repeat_n(tr.eps, tr.times.len()));
    }
    let members: Vec<Vec<Vec<Complex<f64>>>> =
        ens.member_jacobians(&x, &eps, mode).iter().map(|j| eigenvalues(j, d)).collect();
    let reference = system.has_reference();
    // Per point: eps, spread, error, fastest and slowest nonzero |λ̄|.
    let mut per_point = Vec::with_capacity(eps.len());
    for p in 0..eps.len() {
        let mean: Vec<Complex<f64>> =
            (0..d).map(|k| members.iter().map(|m| m[p][k]).sum::<Complex<f64>>() / members.len() as f64).collect();
        let exact = reference.then(|| system.reference_eigenvalues(&x[p * d..(p + 1) * d], eps[p]));
        let (mut spread, mut error) = (0.0f64, if reference { 0.0f64 } else { f64::NAN });
        // The declared zeros and those of this state (below ZERO_TOL of the fastest) have no
        // relative error, as in every other eigenvalue metric.
        let nonzero = nonzero_count(exact.as_deref().unwrap_or(&mean), zeros);
        for k in 0..nonzero {
            for m in &members {
                spread = spread.max((m[p][k] - mean[k]).norm() / mean[k].norm());
            }
            if let Some(exact) = &exact {
                error = error.max((mean[k] - exact[k]).norm() / exact[k].norm());
            }
        }
        per_point.push((eps[p], spread, error, mean[0].norm(), mean[nonzero - 1].norm()));
    }
    let mut grid = eps.clone();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    grid.iter()
        .map(|&e| {
            let at: Vec<_> = per_point.iter().filter(|p| p.0 == e).collect();
            let s: Vec<f64> = at.iter().map(|p| p.1).collect();
            let r: Vec<f64> = at.iter().map(|p| p.2).collect();
            let q = |v: &[f64]| crate::stats::quantiles(v.to_vec(), &[0.5, 0.95, 1.0]);
            let (qs, qr) = (q(&s), if reference { q(&r) } else { vec![None; 3] });
            let get = |v: &[Option<f64>], i: usize| v[i].unwrap_or(f64::NAN);
            let median = |f: fn(&&(f64, f64, f64, f64, f64)) -> f64| {
                crate::stats::quantile(at.iter().map(f).collect(), 0.5).unwrap_or(f64::NAN)
            };
            SpectrumRow {
                eps: e,
                points: at.len(),
                fast_p50: median(|p| p.3),
                slow_p50: median(|p| p.4),
                stiffness_ratio_max: at.iter().map(|p| p.3 / p.4).fold(f64::NAN, f64::max),
                spread_p50: get(&qs, 0),
                spread_p95: get(&qs, 1),
                spread_max: get(&qs, 2),
                error_p50: get(&qr, 0),
                error_p95: get(&qr, 1),
                error_max: get(&qr, 2),
                covered: if reference {
                    at.iter().filter(|p| p.1 >= p.2).count() as f64 / at.len().max(1) as f64
                } else {
                    f64::NAN
                },
            }
        })
        .collect()
}

/// A network evaluated on trajectories ([`evaluate_data`]; `metrics.json`'s `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataEvaluation {
    /// The trajectory file.
    pub file: String,
    /// Whether it is the training file itself (a `data` system without `eval.data`): the rollouts
    /// then start from training trajectories.
    pub in_sample: bool,
    /// Trajectories rolled out.
    pub trajectories: usize,
    /// The worst [`HoldoutRow::max_rel`] over the trajectories (infinite when one fails).
    #[serde(with = "crate::io::float")]
    pub rollout_max_rel: f64,
    /// The median [`HoldoutRow::rms_rel`] over the trajectories.
    #[serde(with = "crate::io::float")]
    pub rollout_rms_rel_p50: f64,
    /// The trajectory of the worst error.
    pub worst_trajectory: String,
    /// Per trajectory (`data_rollouts.csv`).
    pub rollouts: Vec<HoldoutRow>,
    /// Per eps, the learned time scales along the data and, with a reference, their error
    /// (`data_spectrum.csv`).
    pub spectrum: Vec<SpectrumRow>,
    /// Seconds spent.
    pub seconds: f64,
}

/// The network of `ck` on the trajectories of `path` (`in_sample`: the training file): rollouts by
/// BDF with its Jacobian (`eval.rollout_rtol/atol`) and its eigenvalues at every data point.
pub fn evaluate_data(
    ck: &Checkpoint,
    path: &Path,
    in_sample: bool,
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<DataEvaluation> {
    let t0 = Instant::now();
    let cfg = &ck.config;
    let sys = cfg.system.as_ref();
    let names = sys.state_names();
    let file = read_holdout(path, &names, &sys.train_grid())?;
    let field = learned_rhs(ck, device, precision)?;
    let rollouts = learned_rollouts(&field, &names, &file, path, (cfg.eval.rollout_rtol, cfg.eval.rollout_atol));
    let spectrum = spectrum_rows(&Ensemble::new(vec![field])?, sys, &file, mode);
    let worst = rollouts.iter().max_by(|a, b| a.max_rel.total_cmp(&b.max_rel));
    Ok(DataEvaluation {
        file: path.display().to_string(),
        in_sample,
        trajectories: rollouts.len(),
        rollout_max_rel: worst.map_or(f64::NAN, |r| r.max_rel),
        rollout_rms_rel_p50: crate::stats::quantile(rollouts.iter().map(|r| r.rms_rel).collect(), 0.5)
            .unwrap_or(f64::NAN),
        worst_trajectory: worst.map_or(String::new(), |r| r.trajectory.clone()),
        rollouts,
        spectrum,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
