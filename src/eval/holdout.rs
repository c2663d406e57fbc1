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

use std::path::Path;

use nalgebra::Complex;
use serde::Serialize;

use crate::error::Result;
use crate::eval::metrics::eigen::nonzero_count;
use crate::eval::spectral::{Ensemble, JacobianMode, LearnedField, eigenvalues};
use crate::plugins::data::{DataFile, DataSampler};
use crate::plugins::system::StiffSystem;

/// One held-out trajectory rolled out by a learned operator (`holdout.csv`, `data_rollouts.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct HoldoutRow {
    /// The trajectory's id in the file.
    pub trajectory: String,
    /// Its stiffness value.
    pub eps: f64,
    /// Its points.
    pub points: usize,
    /// `max_{t,k} |x̂_k(t) − x_k(t)| / range_k` (range of species `k` over the whole file).
    pub max_rel: f64,
    /// RMS over times and species of the same ratio.
    pub rms_rel: f64,
    /// The species and time of the maximum.
    pub worst_species: String,
    /// Time of the maximum.
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
#[derive(Debug, Clone, Serialize)]
pub struct SpectrumRow {
    /// Stiffness value.
    pub eps: f64,
    /// Data points at it.
    pub points: usize,
    /// Median over the points of the relative spread (module docs).
    pub spread_p50: f64,
    /// Its 95th percentile.
    pub spread_p95: f64,
    /// Its maximum.
    pub spread_max: f64,
    /// Median over the points of the ensemble mean's relative eigenvalue error against the
    /// checkpoint's system.
    pub error_p50: f64,
    /// Its 95th percentile.
    pub error_p95: f64,
    /// Its maximum.
    pub error_max: f64,
    /// Share of the points where the spread is at least the error (the spread covers it).
    pub covered: f64,
}

/// Per eps of `file`, the spread of `ens`'s members' eigenvalues at the data's states and the error
/// of their mean against `system`'s exact eigenvalues.
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
    let mut per_point = Vec::with_capacity(eps.len());
    for p in 0..eps.len() {
        let exact = system.reference_eigenvalues(&x[p * d..(p + 1) * d], eps[p]);
        let (mut spread, mut error) = (0.0f64, 0.0f64);
        // The declared zeros and those of this state (below ZERO_TOL of the fastest) have no
        // relative error, as in every other eigenvalue metric.
        for k in 0..nonzero_count(&exact, zeros) {
            let mean = members.iter().map(|m| m[p][k]).sum::<Complex<f64>>() / members.len() as f64;
            for m in &members {
                spread = spread.max((m[p][k] - mean).norm() / mean.norm());
            }
            error = error.max((mean - exact[k]).norm() / exact[k].norm());
        }
        per_point.push((eps[p], spread, error));
    }
    let mut grid = eps.clone();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    grid.iter()
        .map(|&e| {
            let at: Vec<(f64, f64)> = per_point.iter().filter(|p| p.0 == e).map(|p| (p.1, p.2)).collect();
            let s: Vec<f64> = at.iter().map(|p| p.0).collect();
            let r: Vec<f64> = at.iter().map(|p| p.1).collect();
            let q = |v: &[f64]| crate::stats::quantiles(v.to_vec(), &[0.5, 0.95, 1.0]);
            let (qs, qr) = (q(&s), q(&r));
            let get = |v: &[Option<f64>], i: usize| v[i].unwrap_or(f64::NAN);
            SpectrumRow {
                eps: e,
                points: at.len(),
                spread_p50: get(&qs, 0),
                spread_p95: get(&qs, 1),
                spread_max: get(&qs, 2),
                error_p50: get(&qr, 0),
                error_p95: get(&qr, 1),
                error_max: get(&qr, 2),
                covered: at.iter().filter(|p| p.0 >= p.1).count() as f64 / at.len().max(1) as f64,
            }
        })
        .collect()
}
