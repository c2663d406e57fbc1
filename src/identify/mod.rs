//! Mass-action kinetics identified from labelled trajectory data by sparse regression — the reaction
//! network analogue of SINDy (Brunton, Proctor & Kutz, PNAS 2016; for reaction networks Hoffmann,
//! Fröhner & Noé, "Reactive SINDy", J. Chem. Phys. 2019). `stiffx identify` runs it on a config's data
//! and labels (a `data` sampler with `finite-difference` labels: no analytic RHS anywhere) and writes the
//! mechanism it finds as a mechanism file, which runs again as a system.
//!
//! # Maths
//! **Library.** The monomials `φ_m(x) = Π_k x_k^{ν_mk}` with total order `|ν_m| ≤ p` (`max_order`), the
//! constant `1` (a zero-order source) included: `C(d + p, p)` of them.
//!
//! **Regression, per stiffness value `e` and species `k`.** The labels `L_ik ≈ F_k(x_i, e)` of the
//! points at `e` are fitted as `L_ik ≈ Σ_m θ_km(e) φ_m(x_i)` by weighted least squares with relative
//! weights `w_ik = 1 / max(|L_ik|, floor · RMS_i L_ik)²` (every point's relative error counts alike, as
//! with `train.weighting = "relative"`), on unit-norm columns and by SVD (singular values below
//! `1e-12 σ_max` dropped: the minimum-norm solution where the data cannot tell terms apart). Sequential
//! thresholding (STLSQ): a term whose share `‖√w θ_km φ_m‖` is below `threshold` times the larger of
//! `‖√w L_k‖` and the largest term's share (terms that cancel, as in a quasi-steady species, leave
//! noise on their own scale) is dropped
//! and the rest refitted, until the support stops changing. A term is kept when it survives at more
//! than half of the stiffness values (a reaction whose rate scales as a power of eps acts at every
//! value, while a term that fits the labels' noise comes and goes), and every value is refitted on the
//! kept terms, so that each has a coefficient at every `e`.
//!
//! **Pruning by the power law.** With three or more stiffness values, the monomial whose coefficients
//! miss a power law of eps worst (misfit below) is dropped when its misfit exceeds `power_law_tol`, and
//! everything is refitted, until none does: on a slow manifold a fast reaction's rate is a function of
//! the slow species, so other monomials fit its labels there, but with coefficients that change with eps
//! in no pattern (HIRES: misfits 0.1–2.6 against ≤ 7e-3 for the true reactions). Each pass drops a
//! kept monomial, so the loop ends; one that vanishes at some eps is dropped too (it writes no reaction).
//!
//! **Reactions.** Under mass action `F = Σ_j k_j e^{β_j} S_j φ_{m(j)}`, so the column `θ_·m(e)` is
//! `Σ_{j: m(j) = m} k_j e^{β_j} S_j`: one identified reaction per active monomial, which is exactly what
//! data can resolve (reactions with the same reactants act only through their sum; `eval::reactions`
//! matches per such group). Per monomial, `θ_·m(e) ≈ v_m e^{β_m}` with `β_m` the least-squares slope of
//! `ln ‖θ_·m(e)‖` over `ln e` and `v_m` the mean of `θ_·m(e) e^{−β_m}`; the power-law misfit
//! `max_e ‖θ_·m(e) − v_m e^{β_m}‖ / ‖θ_·m(e)‖` is reported (a monomial that carries reactions with
//! different powers of eps is no single power law). The reaction: rate constant `k_m = max_i |v_mi|`,
//! stoichiometry `s_m = v_m / k_m`, orders `ν_m`, eps-power `β_m`.
//! **Several eps powers on one monomial.** A monomial can carry reactions whose rates scale with
//! different powers of eps (OREGO in its scaled form: `y2` enters `y1'` as `y2/eps` and `y2'` as
//! `−eps·y2`). One power law of the whole column fits its largest species and misfits the others by
//! orders of magnitude, while its norm-relative misfit stays small (here `eps²`). So each kept species'
//! coefficient gets its own exponent `β_km` (the slope of `ln |θ_km(e)|`), the species are grouped where
//! neighbouring exponents differ by at most `POWER_GAP` = 0.5, and each group is one reaction with
//! the power law above on its species alone (projected off the conservation laws again). This happens
//! only where one power law of the whole column misses some kept species' own coefficient by more than
//! `power_law_tol`; otherwise the column is one reaction, as before. A split part that misfits its own
//! power law is pruned alone (its species' terms on the monomial), not the whole monomial.
//!
//! **Conservation laws.** Finite differences are linear, so a linear invariant of the data (`w·x`
//! constant along every trajectory) holds in the labels to rounding: the right singular vectors of the
//! RMS-scaled label matrix with `σ ≤ invariant_tol · σ_max`, mapped back to physical units. Every
//! `θ_·m(e)` is projected onto their orthogonal complement, so the identified mechanism conserves what
//! the data conserve.
//!
//! Tests (exact recovery, the library, conservation laws, Robertson and HIRES end to end):
//! `tests/all/identify.rs`.

use nalgebra::{DMatrix, DVector};
use serde::Serialize;

mod lsq;
mod power;

use lsq::{solve, solve_cond, trimmed};
use power::power_laws;
pub use power::{POWER_GAP, ReactionFit};

use crate::error::{Error, Result};
use crate::plugins::sampler::SampleSet;

/// Settings of the identification (`stiffx identify` flags).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentifyConfig {
    /// Largest total order `p` of the library's monomials (2: every mass-action rate law of at most
    /// bimolecular reactions).
    pub max_order: u32,
    /// Share below which a term is dropped (STLSQ).
    pub threshold: f64,
    /// Floor of the relative weights, relative to each species' RMS label.
    pub weight_floor: f64,
    /// Relative singular value below which a direction of the labels is a conservation law (rounding
    /// of the data divided by the time step: 3e-7 on Robertson data written with 17 digits, 264 times
    /// over 1e-6…1e6; the next singular value there is 0.7).
    pub invariant_tol: f64,
    /// Power-law misfit above which a monomial is pruned (with three or more eps values; the worst
    /// first, then a refit, until none is above).
    pub power_law_tol: f64,
    /// Most thresholding rounds per fit.
    pub rounds: usize,
    /// Robust trimming: a point whose relative residual under a robust (least-median) fit of the full
    /// library exceeds `trim` times the median residual of its species and eps is left out; 0: off.
    /// For finite-difference labels across fast jumps, wrong by orders of magnitude at a few points,
    /// which least squares has no defence against.
    pub trim: f64,
}

impl Default for IdentifyConfig {
    fn default() -> Self {
        Self {
            max_order: 2,
            threshold: 1e-3,
            weight_floor: 1e-2,
            invariant_tol: 1e-5,
            power_law_tol: 0.05,
            rounds: 20,
            trim: 0.0,
        }
    }
}

impl IdentifyConfig {
    /// Checks the settings; errors name the flag and the allowed values.
    pub fn validate(&self, d: usize) -> Result<()> {
        if !(1..=4).contains(&self.max_order) {
            return Err(Error::invalid("--max-order", self.max_order, "1, 2, 3 or 4"));
        }
        let m = library_size(d, self.max_order);
        if m > 20_000 {
            return Err(Error::invalid(
                "--max-order",
                self.max_order,
                format!("an order whose library fits (d = {d}: {m} monomials, at most 20000)"),
            ));
        }
        for (flag, v) in [
            ("--threshold", self.threshold),
            ("--weight-floor", self.weight_floor),
            ("--invariant-tol", self.invariant_tol),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(Error::invalid(flag, v, "a number in (0, 1)"));
            }
        }
        if self.power_law_tol.is_nan() || self.power_law_tol <= 0.0 {
            return Err(Error::invalid("--power-law-tol", self.power_law_tol, "a number > 0 (inf: no pruning)"));
        }
        if !(self.trim == 0.0 || (self.trim.is_finite() && self.trim >= 1.0)) {
            return Err(Error::invalid(
                "--trim",
                self.trim,
                "0 (off) or a finite number >= 1 (times the median residual)",
            ));
        }
        Ok(())
    }
}

/// The fit at one stiffness value.
#[derive(Debug, Clone, Serialize)]
pub struct EpsFit {
    /// The stiffness value.
    pub eps: f64,
    /// Points at this value.
    pub points: usize,
    /// Active terms (species × monomial pairs) after thresholding at this value alone.
    pub terms: usize,
    /// Per species: points left out by the robust trimming (`trim`; all zero when it is off).
    pub trimmed: Vec<usize>,
    /// Per species: the weighted RMS relative residual of the final fit.
    pub residual: Vec<f64>,
    /// Per species: the condition number of the final fit's design (unit-norm columns); above
    /// [`COLLINEAR`] the data cannot tell some kept terms apart, and the mechanism is one of many.
    pub condition: Vec<f64>,
}

/// Condition number above which `stiffx identify` warns that kept terms are (nearly) collinear.
pub const COLLINEAR: f64 = 1e8;

/// What [`identify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Identified {
    /// The stiffness values of the data, increasing.
    pub eps: Vec<f64>,
    /// Library size.
    pub library: usize,
    /// The reactions, one per active monomial and eps power, in library order.
    pub reactions: Vec<ReactionFit>,
    /// Per stiffness value.
    pub per_eps: Vec<EpsFit>,
    /// Conservation laws found in the labels (physical units, unit norm).
    pub invariants: Vec<Vec<f64>>,
    /// Rate laws pruned for their power-law misfit, in the order they were dropped.
    pub pruned: Vec<Pruned>,
}

/// A rate law pruned for its power-law misfit in eps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pruned {
    /// The monomial's exponents.
    pub monomial: Vec<u32>,
    /// The species whose terms on it were dropped, when the monomial was split by eps power and only
    /// this part misfit; `None`: the whole monomial.
    pub species: Option<Vec<usize>>,
    /// Its misfit when it was dropped.
    pub misfit: f64,
}

/// Number of monomials of total order `≤ p` in `d` variables, `C(d + p, p)` (saturating).
pub fn library_size(d: usize, p: u32) -> usize {
    (1..=p as usize).fold(1usize, |acc, i| acc.saturating_mul(d + i) / i)
}

/// The exponent vectors of every monomial of total order `≤ p` in `d` variables: by total order,
/// then lexicographically decreasing (`1, x1, x2, …, x1², x1 x2, …`).
pub fn monomials(d: usize, p: u32) -> Vec<Vec<u32>> {
    fn rec(d: usize, k: usize, left: u32, cur: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
        if k == d {
            if left == 0 {
                out.push(cur.clone());
            }
            return;
        }
        for e in (0..=left).rev() {
            cur[k] = e;
            rec(d, k + 1, left - e, cur, out);
        }
        cur[k] = 0;
    }
    let mut out = Vec::new();
    for total in 0..=p {
        rec(d, 0, total, &mut vec![0; d], &mut out);
    }
    out
}

/// `φ_m(x)` for every monomial of `lib`.
fn features(lib: &[Vec<u32>], x: &[f64]) -> Vec<f64> {
    lib.iter().map(|nu| nu.iter().zip(x).filter(|(e, _)| **e > 0).map(|(e, v)| v.powi(*e as i32)).product()).collect()
}

/// Conservation laws of the labels (`n × d`): see the module docs.
pub fn label_invariants(labels: &[f64], d: usize, tol: f64) -> Vec<Vec<f64>> {
    let n = labels.len() / d;
    if n < d {
        return Vec::new();
    }
    let rms: Vec<f64> = (0..d)
        .map(|k| {
            let s = (0..n).map(|i| labels[i * d + k].powi(2)).sum::<f64>() / n as f64;
            if s > 0.0 { s.sqrt() } else { 1.0 }
        })
        .collect();
    let l = DMatrix::from_fn(n, d, |i, k| labels[i * d + k] / rms[k]);
    let svd = l.svd(false, true);
    let Some(vt) = svd.v_t else { return Vec::new() };
    let smax = svd.singular_values.max();
    let mut basis: Vec<DVector<f64>> = Vec::new();
    for (j, s) in svd.singular_values.iter().enumerate() {
        if *s <= tol * smax {
            // u with L_s u ≈ 0 ⇒ w = D⁻¹ u with L w ≈ 0; orthonormalised (Gram–Schmidt).
            let mut w = DVector::from_fn(d, |k, _| vt[(j, k)] / rms[k]);
            for b in &basis {
                w -= b * b.dot(&w);
            }
            let norm = w.norm();
            if norm > 0.0 {
                basis.push(w / norm);
            }
        }
    }
    basis.into_iter().map(|b| b.iter().copied().collect()).collect()
}

/// The weighted, column-normalised design matrix of species `k` at the points `idx`: returns
/// `(A, b, column norms)`.
fn design(
    phi: &[Vec<f64>],
    labels: &[f64],
    d: usize,
    k: usize,
    idx: &[usize],
    floor: f64,
) -> (DMatrix<f64>, DVector<f64>, Vec<f64>) {
    let n = idx.len();
    let rms = (idx.iter().map(|&i| labels[i * d + k].powi(2)).sum::<f64>() / n.max(1) as f64).sqrt();
    let sw: Vec<f64> = idx
        .iter()
        .map(|&i| {
            let m = labels[i * d + k].abs().max(floor * rms);
            if m > 0.0 { 1.0 / m } else { 1.0 }
        })
        .collect();
    let cols = phi[0].len();
    let mut a = DMatrix::from_fn(n, cols, |r, m| sw[r] * phi[r][m]);
    let norms: Vec<f64> = (0..cols).map(|m| a.column(m).norm()).collect();
    for (m, nm) in norms.iter().enumerate() {
        if *nm > 0.0 {
            a.column_mut(m).scale_mut(1.0 / nm);
        }
    }
    let b = DVector::from_fn(n, |r, _| sw[r] * labels[idx[r] * d + k]);
    (a, b, norms)
}

/// Sparse regression of labelled states on mass-action monomials (see the module docs). `set` gives
/// the states and their stiffness values, `labels` the `n × d` targets.
pub fn identify(set: &SampleSet, labels: &[f64], cfg: &IdentifyConfig) -> Result<Identified> {
    let d = set.dim;
    cfg.validate(d)?;
    let n = set.len();
    if n == 0 || labels.len() != n * d {
        return Err(Error::Unsupported("identification needs labelled points".into()));
    }
    let lib = monomials(d, cfg.max_order);
    let mut eps: Vec<f64> = set.eps.clone();
    eps.sort_by(f64::total_cmp);
    eps.dedup();
    let groups: Vec<Vec<usize>> = eps.iter().map(|e| (0..n).filter(|&i| set.eps[i] == *e).collect()).collect();
    if let Some((e, g)) = eps.iter().zip(&groups).find(|(_, g)| g.len() < lib.len()) {
        return Err(Error::Unsupported(format!(
            "{} point(s) at eps = {e}, fewer than the {} monomials of order ≤ {}: give more data or a lower --max-order",
            g.len(),
            lib.len(),
            cfg.max_order
        )));
    }
    let invariants = label_invariants(labels, d, cfg.invariant_tol);

    // Per eps: thresholded supports; per species, the terms kept at more than half of the eps values.
    let mut votes = vec![vec![0usize; lib.len()]; d];
    let mut per_eps = Vec::new();
    let mut designs = Vec::new();
    for (g, &e) in groups.iter().zip(&eps) {
        let phi: Vec<Vec<f64>> = g.iter().map(|&i| features(&lib, set.state(i))).collect();
        let mut terms = 0;
        let mut ds = Vec::new();
        let mut trimmed_k = Vec::new();
        for (k, vote) in votes.iter_mut().enumerate() {
            let (a, b, norms) = design(&phi, labels, d, k, g, cfg.weight_floor);
            let (a, b, norms, dropped) = trimmed(a, b, norms, cfg.trim);
            trimmed_k.push(dropped);
            let bnorm = b.norm();
            let mut support: Vec<usize> = (0..lib.len()).filter(|&m| norms[m] > 0.0).collect();
            if bnorm > 0.0 {
                for _ in 0..cfg.rounds {
                    let c = solve(&a, &b, &support);
                    // Relative to the labels or to the largest term, whichever is larger: where large
                    // terms cancel (a quasi-steady species), the noise they leave is on their scale.
                    let top = support.iter().map(|&m| c[m].abs()).fold(bnorm, f64::max);
                    let kept: Vec<usize> =
                        support.iter().copied().filter(|&m| c[m].abs() >= cfg.threshold * top).collect();
                    if kept == support {
                        break;
                    }
                    support = kept;
                }
            } else {
                support.clear();
            }
            terms += support.len();
            for m in support {
                vote[m] += 1;
            }
            ds.push((a, b, norms));
        }
        per_eps.push(EpsFit {
            eps: e,
            points: g.len(),
            terms,
            trimmed: trimmed_k,
            residual: Vec::new(),
            condition: Vec::new(),
        });
        designs.push(ds);
    }

    let mut kept: Vec<Vec<bool>> = votes.iter().map(|v| v.iter().map(|&c| 2 * c > eps.len()).collect()).collect();
    // Refit and power laws; with ≥ 3 eps values, the monomial of the worst misfit above the tolerance
    // is pruned and everything refitted, until none is above.
    let mut pruned = Vec::new();
    loop {
        let theta = refit(&designs, &kept, &invariants, &mut per_eps, lib.len(), d);
        let reactions = power_laws(&lib, &kept, &theta, &eps, &invariants, cfg.power_law_tol);
        // A kept monomial that writes no reaction (it vanishes at some eps after the projection) would
        // stay in the fit but not in the file: drop it and refit, so that the two agree.
        let silent: Vec<usize> = (0..lib.len())
            .filter(|&m| kept.iter().any(|row| row[m]) && !reactions.iter().any(|r| r.monomial == lib[m]))
            .collect();
        if !silent.is_empty() {
            for row in kept.iter_mut() {
                for &m in &silent {
                    row[m] = false;
                }
            }
            continue;
        }
        let worst = reactions
            .iter()
            .filter(|r| r.power_law_misfit > cfg.power_law_tol)
            .max_by(|a, b| a.power_law_misfit.total_cmp(&b.power_law_misfit));
        match worst {
            Some(r) if eps.len() >= 3 => {
                let m = lib.iter().position(|nu| *nu == r.monomial).expect("a library monomial");
                pruned.push(Pruned {
                    monomial: r.monomial.clone(),
                    species: r.part.clone(),
                    misfit: r.power_law_misfit,
                });
                // A split part (its kept species, at least one) goes alone; the monomial's other
                // parts stay. Either way a kept term is dropped each pass, so the loop ends.
                for (k, row) in kept.iter_mut().enumerate() {
                    if r.part.as_ref().is_none_or(|p| p.contains(&k)) {
                        row[m] = false;
                    }
                }
            }
            _ => return Ok(Identified { eps, library: lib.len(), reactions, per_eps, invariants, pruned }),
        }
    }
}

/// One species' weighted design at one eps: matrix, targets, column norms.
type Design = (DMatrix<f64>, DVector<f64>, Vec<f64>);

/// Every eps refitted on the kept terms: `θ[e][k][m]` in physical units, projected off the
/// invariants; the residuals into `per_eps`.
fn refit(
    designs: &[Vec<Design>],
    kept: &[Vec<bool>],
    invariants: &[Vec<f64>],
    per_eps: &mut [EpsFit],
    nlib: usize,
    d: usize,
) -> Vec<Vec<Vec<f64>>> {
    let mut theta = vec![vec![vec![0.0; nlib]; d]; designs.len()];
    for (ei, ds) in designs.iter().enumerate() {
        per_eps[ei].residual.clear();
        per_eps[ei].condition.clear();
        for (k, (a, b, norms)) in ds.iter().enumerate() {
            let support: Vec<usize> = (0..nlib).filter(|&m| kept[k][m] && norms[m] > 0.0).collect();
            let (c, cond) = solve_cond(a, b, &support);
            let r = b - a * DVector::from_column_slice(&c);
            per_eps[ei].residual.push(r.norm() / (b.nrows().max(1) as f64).sqrt());
            per_eps[ei].condition.push(cond);
            for &m in &support {
                theta[ei][k][m] = c[m] / norms[m];
            }
        }
        for m in 0..nlib {
            let mut col = DVector::from_fn(d, |k, _| theta[ei][k][m]);
            for w in invariants {
                let w = DVector::from_column_slice(w);
                col -= &w * w.dot(&col);
            }
            for (k, t) in theta[ei].iter_mut().enumerate() {
                t[m] = col[k];
            }
        }
    }
    theta
}
