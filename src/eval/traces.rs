//! The traces of a spectral evaluation (reference trajectories, learned rollouts, learned and exact
//! eigenvalues along them: the data behind Figs. 7–8), their long-format CSV (`traces.csv`) and the
//! eigenvalue errors per decade of time of a log-spaced evaluation (`time_windows.csv`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::metrics::WindowMetrics;
use crate::io::write_csv;

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
