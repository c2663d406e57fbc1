//! `stiffx identify --data FILE.csv`: a mechanism from a file of trajectories and nothing else — no
//! config, no system, no reference anywhere. The species are the file's columns; the stiffness grid is
//! the file's `eps` values (eps = 1 without the column).
//!
//! What replaces the reference system's metrics:
//! - **label error estimate**: the order-`p` finite-difference labels `L⁽ᵖ⁾` against the order-`q`
//!   ones on the same points (`q = p + 2`; for `p = 6`, `q = 4`). For `q > p` their difference is the
//!   leading truncation error of the order-`p` labels, `|L⁽ᵖ⁾ − L⁽ᵠ⁾| ≈ |L⁽ᵖ⁾ − f|`, when the data are
//!   smooth and resolved; for `p = 6` it is the order-4 error, an upper bound (`label_error.csv`: per
//!   species, median, p95 and max of `|L⁽ᵖ⁾ − L⁽ᵠ⁾| / (|L⁽ᵠ⁾| + 10⁻³ RMS(L⁽ᵠ⁾))`);
//! - **rollouts** of the file's own trajectories (`rollouts.csv`) and of `--holdout`'s
//!   (`holdout.csv`) by BDF with the identified mechanism's analytic Jacobian, errors relative to each
//!   species' range over the file;
//! - **the identified spectrum along the data** (`spectrum.csv`): per eps, the fastest and slowest
//!   nonzero `|λ|` of the identified Jacobian at the data points (the mechanism's conservation laws are
//!   its zero eigenvalues) and the stiffness ratio;
//! - **its jackknife spread** as the trust measure: the identification repeated `G` times, refit `g`
//!   without the trajectories `k ≡ g (mod G)` (the delete-group jackknife; a bootstrap with
//!   replacement leaves too few distinct trajectories at a few per eps), and at every point
//!   `sqrt((G−1)/n · Σ_g |μ_i⁽ᵍ⁾ − λ_i|²) / |λ_i|` for each nonzero eigenvalue, over the `n ≤ G` refits
//!   that succeeded, `μ_i⁽ᵍ⁾` the refit's eigenvalue nearest to `λ_i` (robust to reordering; not
//!   one-to-one, so two close eigenvalues can share a match). Centred on the full fit `λ_i` rather
//!   than the refits' mean, it includes their bias: conservative.
//!
//! A trajectory the identified mechanism cannot integrate is a row with an infinite error, not an
//! abort (the mechanism file is still written, and the other outputs follow).

use std::path::Path;

use serde::Serialize;

use crate::cli::IdentifyArgs;
use crate::error::{Error, Result};
use crate::eval::reactions::learned_reactions;
use crate::identify::{IdentifyConfig, identify as fit};
use crate::io::write_csv;
use crate::plugins::data::{DataFile, DataSampler};
use crate::plugins::labeller::fd_labels;
use crate::plugins::mechanism::{Mechanism, MechanismSystem};
use crate::plugins::sampler::{SampleSet, Trajectory};
use crate::plugins::system::StiffSystem;

use super::identify::{distinct, fit_and_print, print_rollouts, rollouts, settings, write_identified};

/// Default number of jackknife groups (refits).
const JACKKNIFE: usize = 10;
/// Most jackknife groups allowed.
const MAX_JACKKNIFE: usize = 1000;
/// Most data points per eps at which the spectrum is computed (evenly strided).
const SPECTRUM_POINTS: usize = 2000;

/// The label error estimate of one species (`label_error.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct LabelError {
    /// Species.
    pub species: String,
    /// Order of the labels used and of the comparison labels.
    pub order: usize,
    /// Order of the comparison labels.
    pub against: usize,
    /// Median of the relative difference over points.
    pub median_rel: f64,
    /// Its 95th percentile.
    pub p95_rel: f64,
    /// Its maximum.
    pub max_rel: f64,
}

/// The identified spectrum along the data at one eps (`spectrum.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct SpectrumRow {
    /// Stiffness value.
    pub eps: f64,
    /// Data points used.
    pub points: usize,
    /// Zero eigenvalues (the identified mechanism's conservation laws).
    pub zero: usize,
    /// Median and maximum of the fastest `|λ|`.
    pub fast_p50: f64,
    /// Maximum of the fastest `|λ|`.
    pub fast_max: f64,
    /// Median of the slowest nonzero `|λ|`.
    pub slow_p50: f64,
    /// Minimum of the slowest nonzero `|λ|`.
    pub slow_min: f64,
    /// Largest fastest/slowest ratio at one point.
    pub stiffness_ratio_max: f64,
    /// Jackknife refits that succeeded.
    pub refits: usize,
    /// Median and 95th percentile over points of the fastest eigenvalue's relative jackknife spread.
    pub fast_spread_p50: f64,
    /// 95th percentile of the same.
    pub fast_spread_p95: f64,
    /// Median over points of the largest relative spread of any nonzero eigenvalue.
    pub all_spread_p50: f64,
    /// 95th percentile of the same.
    pub all_spread_p95: f64,
}

/// `stiffx identify --data FILE.csv --out DIR`.
pub fn identify_data(a: &IdentifyArgs) -> Result<()> {
    let path =
        a.data.as_deref().ok_or_else(|| Error::invalid("--data", "(not given)", "a CSV file of trajectories"))?;
    from_data(a, path, &settings(a))
}

fn from_data(a: &IdentifyArgs, path: &Path, icfg: &IdentifyConfig) -> Result<()> {
    let order = a.fd_order.unwrap_or(4);
    if ![2, 4, 6].contains(&order) {
        return Err(Error::invalid("--fd-order", order, "2, 4 or 6"));
    }
    let groups = a.jackknife.unwrap_or(JACKKNIFE);
    if groups > MAX_JACKKNIFE {
        return Err(Error::invalid("--jackknife", groups, format!("0 (none) … {MAX_JACKKNIFE}")));
    }
    let reader = DataSampler { path: path.display().to_string(), eps: None };
    let (names, mut file) = reader.read_own_columns()?;
    let d = names.len();
    icfg.validate(d)?;
    let has_eps = !file.trajectories[0].eps.is_nan();
    file.resolve_eps(Some(1.0), path)?;
    if let Some((id, tr)) = file.ids.iter().zip(&file.trajectories).find(|(_, t)| t.times.len() < order + 1) {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: format!(
                "trajectory `{id}` has {} points; labels of order {order} need at least {}",
                tr.times.len(),
                order + 1
            ),
        });
    }
    let own = file.clone();
    let trajectories = &own.trajectories;
    let train_eps = distinct(&trajectories.iter().map(|t| t.eps).collect::<Vec<_>>());
    // The stiffness value of a trajectory in a file without an `eps` column: 1 when the training file
    // has none either, its only value when it has one, else none (an error naming the file).
    let default_eps = match (has_eps, train_eps.as_slice()) {
        (false, _) => Some(1.0),
        (true, [e]) => Some(*e),
        _ => None,
    };
    let holdout = match &a.holdout {
        Some(h) => {
            let mut f = DataSampler { path: h.display().to_string(), eps: None }.read(&names, "eps")?;
            f.resolve_eps(default_eps, h)?;
            Some((h, f))
        }
        None => None,
    };
    let frame = frame(&names, trajectories, &train_eps, holdout.as_ref().map(|(_, f)| f));
    let set = file.into_set(d);
    println!(
        "{}: {} trajectories, {} points; species {}; {}",
        path.display(),
        trajectories.len(),
        set.len(),
        names.join(", "),
        if has_eps {
            format!("eps {}", train_eps.iter().map(|e| format!("{e}")).collect::<Vec<_>>().join(", "))
        } else {
            "no `eps` column: every trajectory at eps = 1".into()
        }
    );
    let labels = fd_labels(&set, order)?;
    let against = if order < 6 { order + 2 } else { 4 };
    let errors = if trajectories.iter().all(|t| t.times.len() > against) {
        label_errors(&names, &labels, &fd_labels(&set, against)?, order, against)
    } else {
        Vec::new()
    };
    if errors.is_empty() {
        println!("  no label error estimate: some trajectory has too few points for order-{against} labels");
    }
    write_csv(&a.out.join("label_error.csv"), &errors)?;
    for e in &errors {
        println!(
            "  label error estimate (order {} against {}), {}: median {:.1e}, p95 {:.1e}, max {:.1e} relative",
            e.order, e.against, e.species, e.median_rel, e.p95_rel, e.max_rel
        );
    }
    let id = fit_and_print(&set, &labels, icfg, &names)?;
    let learned: Vec<_> = id.reactions.iter().map(|r| r.reaction.clone()).collect();
    let mech = Mechanism { reactions: learned_reactions(&learned, &names, 0.0), ..frame.clone() };
    let identified = write_identified(&a.out, &mech, &id, icfg, &path.display().to_string())?;
    // Rollout tolerances: relative 1e-6; absolute 1e-8 of the smallest species range in the file.
    let range = own.ranges(d);
    let smallest = range.iter().copied().filter(|r| *r > 0.0).fold(f64::INFINITY, f64::min);
    let tol = (1e-6, if smallest.is_finite() { 1e-8 * smallest } else { 1e-12 });
    let rows = rollouts(&identified, &names, &own, tol, path);
    write_csv(&a.out.join("rollouts.csv"), &rows)?;
    print_rollouts("the file's own trajectories", path, &rows, "the file's Jacobian");
    if let Some((h, f)) = &holdout {
        let rows = rollouts(&identified, &names, f, tol, h);
        write_csv(&a.out.join("holdout.csv"), &rows)?;
        print_rollouts("held-out trajectories", h, &rows, "the file's Jacobian");
    }
    // The delete-group jackknife: trajectory k is left out of refit k mod G, same settings. A point's
    // label depends on its own trajectory only, so each refit takes its rows of `labels` as they are.
    let groups = groups.min(trajectories.len());
    let starts: Vec<usize> = std::iter::once(0)
        .chain(trajectories.iter().scan(0, |n, t| {
            *n += t.times.len();
            Some(*n)
        }))
        .collect();
    let mut members = Vec::new();
    for g in 0..groups {
        let keep: Vec<usize> = (0..trajectories.len()).filter(|k| k % groups != g).collect();
        let l: Vec<f64> = keep.iter().flat_map(|&k| labels[starts[k] * d..starts[k + 1] * d].iter().copied()).collect();
        let trs = keep.iter().map(|&k| trajectories[k].clone()).collect();
        let s = DataFile { ids: Vec::new(), trajectories: trs }.into_set(d);
        if let Ok(f) = fit(&s, &l, icfg) {
            let learned: Vec<_> = f.reactions.iter().map(|r| r.reaction.clone()).collect();
            let m = Mechanism { reactions: learned_reactions(&learned, &names, 0.0), ..frame.clone() };
            members.push(MechanismSystem { file: String::new(), mechanism: m });
        }
    }
    if groups < 2 {
        println!("  no jackknife spread: it needs at least 2 trajectories (and --jackknife ≥ 2)");
    }
    let rows = spectrum(&identified, &members, groups, &set);
    write_csv(&a.out.join("spectrum.csv"), &rows)?;
    println!(
        "the identified spectrum along the data (jackknife: {} refits of {groups}, each without a group of trajectories):",
        members.len()
    );
    println!(
        "  {:>10} {:>7} {:>5} {:>11} {:>11} {:>11} {:>11} {:>11} {:>13} {:>13}",
        "eps",
        "points",
        "zero",
        "|λ|fast p50",
        "|λ|fast max",
        "|λ|slow p50",
        "|λ|slow min",
        "ratio max",
        "fast spread95",
        "all spread95"
    );
    for r in &rows {
        println!(
            "  {:>10} {:>7} {:>5} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>13.2e} {:>13.2e}",
            r.eps,
            r.points,
            r.zero,
            r.fast_p50,
            r.fast_max,
            r.slow_p50,
            r.slow_min,
            r.stiffness_ratio_max,
            r.fast_spread_p95,
            r.all_spread_p95
        );
    }
    println!("results in {}", a.out.display());
    Ok(())
}

/// Everything of the mechanism file but its reactions, from the data: the grids (unseen: the held-out
/// file's other eps values, else half the smallest and twice the largest training value), the box of
/// the first states (clamped at 0 unless some species' first states go below 0: signed), up to `data_system::TEST_STATES` first states as test states, and the longest
/// trajectory's duration as the horizon.
fn frame(names: &[String], trs: &[Trajectory], train_eps: &[f64], holdout: Option<&DataFile>) -> Mechanism {
    let (box_, tests) = crate::plugins::data_system::first_states(trs, names.len());
    // Concentrations: clamped at 0 (clamping commutes with the box's min and max); signed state
    // variables (a first state below 0 by more than rounding) stay as they are.
    let signed = box_.iter().any(|[lo, hi]| *lo < -1e-9 * lo.abs().max(hi.abs()));
    let clamp = |v: f64| if signed { v } else { v.max(0.0) };
    let initial: Vec<[f64; 2]> = box_.iter().map(|[lo, hi]| [clamp(*lo), clamp(*hi)]).collect();
    let test_states: Vec<Vec<f64>> = tests.iter().map(|x| x.iter().map(|v| clamp(*v)).collect()).collect();
    let horizon = trs.iter().map(|t| t.times[t.times.len() - 1] - t.times[0]).fold(0.0, f64::max);
    let mut unseen: Vec<f64> = holdout.map_or_else(Vec::new, |f| {
        let e: Vec<f64> = f.trajectories.iter().map(|t| t.eps).collect();
        distinct(&e).into_iter().filter(|e| !train_eps.contains(e)).collect()
    });
    if unseen.is_empty() {
        unseen = vec![0.5 * train_eps[0], 2.0 * train_eps[train_eps.len() - 1]];
    }
    Mechanism {
        species: names.to_vec(),
        reactions: Vec::new(),
        train_eps: train_eps.to_vec(),
        unseen_eps: unseen,
        initial,
        test_states,
        horizon: if horizon > 0.0 { horizon } else { 1.0 },
        signed,
    }
}

/// The label error estimate per species (see the module docs).
fn label_errors(names: &[String], lp: &[f64], lq: &[f64], order: usize, against: usize) -> Vec<LabelError> {
    let d = names.len();
    let n = lp.len() / d;
    (0..d)
        .map(|k| {
            let rms = ((0..n).map(|i| lq[i * d + k].powi(2)).sum::<f64>() / n as f64).sqrt();
            // A species whose labels are all zero (a constant column) gets the absolute difference.
            let floor = if rms > 0.0 { 1e-3 * rms } else { 1.0 };
            let rel: Vec<f64> =
                (0..n).map(|i| (lp[i * d + k] - lq[i * d + k]).abs() / (lq[i * d + k].abs() + floor)).collect();
            let q = crate::stats::quantiles(rel.clone(), &[0.5, 0.95]);
            LabelError {
                species: names[k].clone(),
                order,
                against,
                median_rel: q[0].unwrap_or(f64::NAN),
                p95_rel: q[1].unwrap_or(f64::NAN),
                max_rel: rel.iter().copied().fold(0.0, f64::max),
            }
        })
        .collect()
}

/// The identified spectrum and its jackknife spread (`members` of the `groups` refits that
/// succeeded) at up to [`SPECTRUM_POINTS`] data points per eps. At each point the nonzero eigenvalues
/// are those above `1e-10 |λ_fast|` (a state where a species is 0 can have more zeros than the
/// conservation laws); a point with none is skipped.
fn spectrum(
    identified: &MechanismSystem,
    members: &[MechanismSystem],
    groups: usize,
    set: &SampleSet,
) -> Vec<SpectrumRow> {
    let d = set.dim;
    let zero = identified.invariants().len().min(d);
    let mut rows = Vec::new();
    for eps in distinct(&set.eps) {
        let idx: Vec<usize> = (0..set.len()).filter(|&i| set.eps[i] == eps).collect();
        let stride = idx.len().div_ceil(SPECTRUM_POINTS).max(1);
        let (mut fast, mut slow, mut ratio, mut fast_spread, mut all_spread) = (vec![], vec![], vec![], vec![], vec![]);
        for &i in idx.iter().step_by(stride) {
            let x = &set.x[i * d..(i + 1) * d];
            let lam = identified.reference_eigenvalues(x, eps);
            let ev: Vec<f64> = lam.iter().map(|l| l.norm()).collect();
            let nonzero = ev.iter().take(d - zero).filter(|v| **v > 1e-10 * ev[0] && **v > 0.0).count();
            if nonzero == 0 {
                continue;
            }
            fast.push(ev[0]);
            slow.push(ev[nonzero - 1]);
            ratio.push(ev[0] / ev[nonzero - 1]);
            if members.len() >= 2 {
                let b: Vec<_> = members.iter().map(|m| m.reference_eigenvalues(x, eps)).collect();
                // Each refit's eigenvalue nearest to λ_j (robust to a refit's reordering).
                let spread = |j: usize| {
                    let ss: f64 = b
                        .iter()
                        .map(|e| e.iter().map(|m| (m - lam[j]).norm()).fold(f64::INFINITY, f64::min).powi(2))
                        .sum();
                    ((groups as f64 - 1.0) / b.len() as f64 * ss).sqrt() / ev[j]
                };
                fast_spread.push(spread(0));
                all_spread.push((0..nonzero).map(spread).fold(0.0, f64::max));
            }
        }
        let q = |v: &[f64], p: f64| crate::stats::quantile(v.to_vec(), p).unwrap_or(f64::NAN);
        rows.push(SpectrumRow {
            eps,
            points: fast.len(),
            zero,
            fast_p50: q(&fast, 0.5),
            fast_max: fast.iter().copied().fold(f64::NAN, f64::max),
            slow_p50: q(&slow, 0.5),
            slow_min: slow.iter().copied().fold(f64::NAN, f64::min),
            stiffness_ratio_max: ratio.iter().copied().fold(f64::NAN, f64::max),
            refits: members.len(),
            fast_spread_p50: q(&fast_spread, 0.5),
            fast_spread_p95: q(&fast_spread, 0.95),
            all_spread_p50: q(&all_spread, 0.5),
            all_spread_p95: q(&all_spread, 0.95),
        });
    }
    rows
}
