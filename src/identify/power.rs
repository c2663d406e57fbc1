//! The eps dependence of identified rate laws (see `identify` (`src/identify/mod.rs`), "Reactions" and
//! "Several eps powers on one monomial"): per active monomial, the column of coefficients `θ_·m(e)` over
//! the stiffness values is fitted as `v e^β` (β the least-squares slope of `ln ‖θ‖` over `ln e`), or,
//! where that law misses a kept species' own coefficient by more than the tolerance, split into groups of
//! species that share an eps power, one reaction each.

use nalgebra::DVector;
use serde::Serialize;

use crate::model::Reaction;

/// One identified reaction and how well its coefficients follow a power law of eps.
#[derive(Debug, Clone, Serialize)]
pub struct ReactionFit {
    /// The reaction (rate constant, orders, eps exponent, stoichiometry with largest entry 1).
    pub reaction: Reaction,
    /// The monomial's exponents `ν_m`.
    pub monomial: Vec<u32>,
    /// `max_e ‖θ(e) − v e^{β}‖ / ‖θ(e)‖` over the reaction's species of the monomial's column (the
    /// whole column when one power law fits each kept species).
    pub power_law_misfit: f64,
    /// `‖θ(e)‖` of the reaction's part of the column at each stiffness value of `Identified::eps`.
    pub magnitude: Vec<f64>,
    /// The kept species (indices) of the monomial this reaction carries when the monomial is split
    /// by eps power; `None` when it is the whole column. Pruning drops these species' terms only.
    pub part: Option<Vec<usize>>,
}

/// Gap between the eps powers of two species' coefficients on one monomial above which they belong to
/// different reactions (eps powers of rate laws are integers or simple fractions).
pub const POWER_GAP: f64 = 0.5;

/// The least-squares slope of `ln |y|` over `ln e` (0 with one eps value).
fn log_slope(ln_e: &[f64], y: &[f64]) -> f64 {
    if ln_e.len() < 2 {
        return 0.0;
    }
    let ln_y: Vec<f64> = y.iter().map(|v| v.abs().ln()).collect();
    let (mx, my) = (crate::stats::mean_std(ln_e).0, crate::stats::mean_std(&ln_y).0);
    let sxy: f64 = ln_e.iter().zip(&ln_y).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = ln_e.iter().map(|x| (x - mx).powi(2)).sum();
    sxy / sxx
}

/// The species of one monomial's column grouped by the eps power of their coefficients: the kept
/// species (those the thresholded fits keep on this monomial), sorted by their own power law's exponent
/// and cut where two neighbours differ by more than [`POWER_GAP`]; what the projection onto the
/// conservation laws leaves in the other species goes with the group of the largest coefficient. One
/// group (the whole column) when the species share a power; more when the monomial carries reactions
/// that scale differently with eps (OREGO's `y2` speeds `y1` up as `1/eps` and slows `y2` down as
/// `eps`), which one power law of the whole column would misfit in the smaller species.
fn power_groups(cols: &[DVector<f64>], kept: &[bool], ln_e: &[f64]) -> Vec<Vec<usize>> {
    let d = kept.len();
    let mut betas: Vec<(usize, f64)> = (0..d)
        .filter(|&k| kept[k] && cols.iter().all(|c| c[k] != 0.0 && c[k].is_finite()))
        .map(|k| (k, log_slope(ln_e, &cols.iter().map(|c| c[k]).collect::<Vec<_>>())))
        .collect();
    betas.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for (k, b) in betas {
        match groups.last_mut() {
            Some(g) if b - last <= POWER_GAP => g.push(k),
            _ => groups.push(vec![k]),
        }
        last = b;
    }
    if groups.len() <= 1 {
        return vec![(0..d).collect()];
    }
    let size = |k: usize| cols.iter().map(|c| c[k].abs()).fold(0.0, f64::max);
    let top = (0..d).max_by(|&a, &b| size(a).total_cmp(&size(b))).unwrap_or(0);
    // The largest coefficient's group; when that species is in none, the group of the largest kept one.
    let home = groups.iter().position(|g| g.contains(&top)).unwrap_or_else(|| {
        let size_of = |g: &Vec<usize>| g.iter().map(|&k| size(k)).fold(0.0, f64::max);
        (0..groups.len()).max_by(|&a, &b| size_of(&groups[a]).total_cmp(&size_of(&groups[b]))).unwrap_or(0)
    });
    let rest: Vec<usize> = (0..d).filter(|k| !groups.iter().any(|g| g.contains(k))).collect();
    groups[home].extend(rest);
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

/// The power law `v e^β` of a column over the eps values (β from its norms), with the norms
/// `‖θ(e)‖`: `None` when it vanishes at some eps.
fn column_law(cols: &[DVector<f64>], ln_e: &[f64], eps: &[f64], d: usize) -> Option<(Vec<f64>, f64, DVector<f64>)> {
    let mags: Vec<f64> = cols.iter().map(|c| c.norm()).collect();
    if mags.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let beta = log_slope(ln_e, &mags);
    let v = cols.iter().zip(eps).fold(DVector::zeros(d), |acc, (c, e)| acc + c * e.powf(-beta)) / eps.len() as f64;
    Some((mags, beta, v))
}

/// One reaction per active monomial and eps power, its eps dependence as a power law.
pub(super) fn power_laws(
    lib: &[Vec<u32>],
    kept: &[Vec<bool>],
    theta: &[Vec<Vec<f64>>],
    eps: &[f64],
    invariants: &[Vec<f64>],
    tol: f64,
) -> Vec<ReactionFit> {
    let d = kept.len();
    let ln_e: Vec<f64> = eps.iter().map(|e| e.ln()).collect();
    let mut reactions = Vec::new();
    for (m, nu) in lib.iter().enumerate() {
        if !(0..d).any(|k| kept[k][m]) {
            continue;
        }
        let full: Vec<DVector<f64>> = (0..eps.len()).map(|ei| DVector::from_fn(d, |k, _| theta[ei][k][m])).collect();
        let kept_m: Vec<bool> = (0..d).map(|k| kept[k][m]).collect();
        // Split only where one power law of the whole column misses a kept species by more than the
        // tolerance in that species' own coefficient (a noisy small coefficient that one law fits
        // does not become a reaction of its own).
        let whole = column_law(&full, &ln_e, eps, d);
        let fits_each = whole.is_some_and(|(_, beta, v)| {
            (0..d)
                .filter(|&k| kept_m[k])
                .all(|k| full.iter().zip(eps).all(|(c, e)| (c[k] - v[k] * e.powf(beta)).abs() <= tol * c[k].abs()))
        });
        let groups = if fits_each { vec![(0..d).collect()] } else { power_groups(&full, &kept_m, &ln_e) };
        let split = groups.len() > 1;
        for group in groups {
            let part = split.then(|| group.iter().copied().filter(|&k| kept_m[k]).collect::<Vec<usize>>());
            let mut cols: Vec<DVector<f64>> =
                full.iter().map(|c| DVector::from_fn(d, |k, _| if group.contains(&k) { c[k] } else { 0.0 })).collect();
            if split {
                // Each part conserves what the data conserve, as the whole column did.
                for c in &mut cols {
                    for w in invariants {
                        let w = DVector::from_column_slice(w);
                        *c -= &w * w.dot(c);
                    }
                }
            }
            let Some((mags, beta, v)) = column_law(&cols, &ln_e, eps, d) else {
                continue; // vanishes (after the projection) at some eps: nothing to write
            };
            let misfit =
                cols.iter().zip(eps).map(|(c, e)| (c - &v * e.powf(beta)).norm() / c.norm()).fold(0.0, f64::max);
            let k = v.amax();
            if !(k.is_finite() && k > 0.0) {
                continue;
            }
            reactions.push(ReactionFit {
                reaction: Reaction {
                    rate_constant: k,
                    orders: nu.iter().map(|e| *e as f64).collect(),
                    eps_exponent: beta,
                    stoichiometry: v.iter().map(|s| s / k).collect(),
                },
                monomial: nu.clone(),
                power_law_misfit: misfit,
                magnitude: mags,
                part,
            });
        }
    }
    reactions
}
