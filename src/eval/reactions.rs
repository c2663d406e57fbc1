//! A trained reaction network as a mechanism file, and matched reaction by reaction against the true
//! mechanism.
//!
//! **Learned → mechanism.** A learned reaction ([`crate::model::Reaction`]) has rate
//! `k · eps^β · Π_i (x_i + c_i)^ν_i` and net stoichiometry `s`. It is written as the mass-action
//! reaction
//!
//! ```text
//! Σ_i a_i X_i  =>  Σ_i (a_i + s_i) X_i,     a_i = max(ν_i, −s_i)     (so products − reactants = s)
//! ```
//!
//! with rate constant `k`, `eps-power: β`, and Cantera's `orders: {X_i: ν_i}` wherever `a_i ≠ ν_i`. The
//! file's RHS is the network's up to the log-input offsets `c_i` (`LOG_OFFSET` = 1e-12 of each
//! species' training range, relative effect `ν c_i / x_i`), which a mechanism cannot express.
//! With `round = tol > 0`, orders and stoichiometric entries within `tol` of an integer are snapped
//! to it first (a readable mechanism; its RHS then differs from the network's by that rounding).
//!
//! **Matching.** Reactions that share their rate law (the same reactant orders and power of eps)
//! cannot be told apart from data: only the sum of their `k_j S_j` acts. So true and learned
//! reactions are grouped by their rate law (orders and eps-power rounded to integers; a learned
//! reaction whose orders are not within 0.05 of integers has no key), and a true group is
//! *recovered* when the learned reactions with the same key carry its summed effect within `tol`:
//!
//! ```text
//! error_G = ‖Σ_{l ∈ G} k_l s_l − Σ_{j ∈ G} k_j S_j‖ / ‖Σ_{j ∈ G} k_j S_j‖        (at eps = 1)
//! ```
//!
//! A learned reaction with no true group is *spurious* when its rate reaches [`SPURIOUS_SHARE`] of
//! `‖F(x)‖` at some test initial state of the true mechanism, *negligible* otherwise.

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::model::Reaction as Learned;
use crate::plugins::mechanism::{Mechanism, MechanismSystem, Reaction, Term};
use crate::plugins::system::StiffSystem;

/// Share of `‖F(x)‖` (at some test state) above which an unmatched learned reaction is spurious.
pub const SPURIOUS_SHARE: f64 = 1e-6;
/// Distance to an integer within which an order or eps-power counts as that integer for matching.
pub const KEY_TOLERANCE: f64 = 0.05;
/// Draws of the system's initial-state distribution whose per-species range becomes `initial`.
const INITIAL_DRAWS: usize = 4096;

/// The mechanism a trained network learned (see the module docs), with the true system's grids,
/// test states and initial-state box (the range of 4096 seeded draws), and `horizon`.
pub fn learned_mechanism(learned: &[Learned], system: &dyn StiffSystem, horizon: f64, round: f64) -> Mechanism {
    let d = system.dim();
    let mut rng = StdRng::seed_from_u64(0);
    let draws: Vec<Vec<f64>> = (0..INITIAL_DRAWS).map(|_| system.sample_initial(&mut rng)).collect();
    let test_states = system.test_initial_states();
    // Signed state variables (Van der Pol) stay as they are and the file says so; concentrations are
    // clamped at 0.
    let signed = draws.iter().chain(&test_states).flatten().any(|v| *v < 0.0);
    let clamp = |v: f64| if signed { v } else { v.max(0.0) };
    let mut initial = vec![[f64::INFINITY, f64::NEG_INFINITY]; d];
    for x in &draws {
        for (b, &v) in initial.iter_mut().zip(x) {
            *b = [b[0].min(clamp(v)), b[1].max(clamp(v))];
        }
    }
    let names = system.state_names();
    Mechanism {
        reactions: learned_reactions(learned, &names, round),
        species: names,
        train_eps: system.train_grid(),
        unseen_eps: system.unseen_grid(),
        initial,
        test_states,
        horizon,
        signed,
    }
}

/// The reactions of [`learned_mechanism`] alone, over the species `names` (equations written with them).
pub fn learned_reactions(learned: &[Learned], names: &[String], round: f64) -> Vec<Reaction> {
    let d = names.len();
    let snap = |v: f64| if round > 0.0 && (v - v.round()).abs() <= round { v.round() } else { v };
    let mut reactions = Vec::new();
    for l in learned {
        let nu: Vec<f64> = l.orders.iter().map(|v| snap(*v)).collect();
        let s: Vec<f64> = l.stoichiometry.iter().map(|v| snap(*v)).collect();
        if !(l.rate_constant.is_finite() && l.rate_constant > 0.0) || s.iter().all(|v| *v == 0.0) {
            continue; // a dead unit changes nothing
        }
        let a: Vec<f64> = (0..d).map(|i| nu[i].max(-s[i])).collect();
        let reactants: Vec<Term> = (0..d).filter(|&i| a[i] > 0.0).map(|i| Term { species: i, coeff: a[i] }).collect();
        let products: Vec<Term> =
            (0..d).filter(|&i| a[i] + s[i] > 0.0).map(|i| Term { species: i, coeff: a[i] + s[i] }).collect();
        let orders = if reactants.iter().any(|t| t.coeff != nu[t.species]) {
            reactants.iter().map(|t| Term { species: t.species, coeff: nu[t.species] }).collect()
        } else {
            Vec::new()
        };
        reactions.push(Reaction {
            equation: String::new(),
            reactants,
            products,
            orders,
            k: l.rate_constant,
            eps_power: snap(l.eps_exponent),
        });
    }
    for r in &mut reactions {
        let side = |t: &[Term]| t.iter().map(|t| format!("{} {}", t.coeff, names[t.species])).collect::<Vec<_>>();
        r.equation = format!("{} => {}", side(&r.reactants).join(" + "), side(&r.products).join(" + "));
    }
    reactions
}

/// Natural log of the rate constant of a hidden unit that holds no reaction of the mechanism in
/// [`network_from_mechanism`]: `k = e^-60 ≈ 1e-26` with no stoichiometry, so the unit changes nothing
/// (and its gradients vanish under Adam's epsilon unless the data need it).
pub const DEAD_LN_K: f64 = -60.0;

/// Why `mech`'s species are not the system's `names` (in any order), naming the missing and the extra
/// ones; `None` when they are (`model.init`, [`network_from_mechanism`]).
pub fn species_mismatch(mech: &Mechanism, names: &[String]) -> Option<String> {
    let missing: Vec<&str> = names.iter().filter(|n| !mech.species.contains(n)).map(String::as_str).collect();
    let extra: Vec<&str> = mech.species.iter().filter(|s| !names.contains(s)).map(String::as_str).collect();
    (!missing.is_empty() || !extra.is_empty()).then(|| {
        format!(
            "its species must be the system's ({}); missing: [{}], not in the system: [{}]",
            names.join(", "),
            missing.join(", "),
            extra.join(", ")
        )
    })
}

/// The inverse of [`Weights::reactions`](crate::model::Weights::reactions): a mass-action network of
/// `width` hidden units that holds `mech` exactly (`model.init`), for inputs standardised by `norm`
/// (`log` state map) over the species `names` (the system's state order; the file's species are
/// matched by name, in any order). Reaction `j` becomes unit `j`:
///
/// ```text
/// W_ij = ν_ij σ_i,   W_dj = β_j σ_d,   b_j = ln k_j + Σ_{i ≤ d} W_ij μ_i / σ_i,   S_j = products − reactants
/// ```
///
/// (`ν` the rate law's orders, `β` the eps power, `μ, σ` the input standardisation, `d` the eps
/// input); units past the reactions are dead ([`DEAD_LN_K`], no stoichiometry). Errors say what does
/// not fit: the species, `width`, the normaliser.
pub fn network_from_mechanism(
    mech: &Mechanism,
    names: &[String],
    norm: &crate::model::Normalizer,
    width: usize,
) -> Result<crate::model::Weights, String> {
    use crate::model::{Activation, LayerWeights, StateMap, Weights};
    let d = names.len();
    if let Some(why) = species_mismatch(mech, names) {
        return Err(why);
    }
    if mech.signed {
        return Err(
            "the mechanism's species are signed (`signed: true`), and a reaction network takes the logarithm of \
                    its species: start it from a mechanism of concentrations"
                .into(),
        );
    }
    let n = mech.reactions.len();
    if n > width {
        return Err(format!(
            "it has {n} reactions, more than model.width = {width} hidden units: set model.width ≥ {n}"
        ));
    }
    if norm.state_map != StateMap::Log
        || norm.state_scale.len() != d
        || norm.mean.len() != d + 1
        || norm.std.len() != d + 1
    {
        return Err("the network's inputs are not logarithmic (model.state_input = \"log\")".into());
    }
    let at = |s: usize| names.iter().position(|n| *n == mech.species[s]).expect("checked above");
    let mut l0 = LayerWeights { d_in: d + 1, d_out: width, w: vec![0.0; (d + 1) * width], b: vec![DEAD_LN_K; width] };
    let mut l1 = LayerWeights { d_in: width, d_out: d, w: vec![0.0; width * d], b: vec![0.0; d] };
    for (j, r) in mech.reactions.iter().enumerate() {
        if !(r.k.is_finite() && r.k > 0.0) {
            return Err(format!(
                "reaction {} ({}) has rate constant {}; a network holds only k > 0",
                j + 1,
                r.equation,
                r.k
            ));
        }
        for t in r.rate_law() {
            l0.w[at(t.species) * width + j] += t.coeff * norm.std[at(t.species)];
        }
        l0.w[d * width + j] = r.eps_power * norm.std[d];
        l0.b[j] = r.k.ln() + (0..=d).map(|i| l0.w[i * width + j] * norm.mean[i] / norm.std[i]).sum::<f64>();
        for t in &r.reactants {
            l1.w[j * d + at(t.species)] -= t.coeff;
        }
        for t in &r.products {
            l1.w[j * d + at(t.species)] += t.coeff;
        }
    }
    Ok(Weights { layers: vec![l0, l1], activation: Activation::Exp, mass_action: true })
}

/// One rate law's reactions, true and learned ([`match_reactions`]).
#[derive(Debug, Clone, Serialize)]
pub struct GroupMatch {
    /// The shared rate law, e.g. `y2^2` or `y2 y3 · eps^-1` (`1` for a zero-order source).
    pub rate_law: String,
    /// The true reactions (1-based numbers in the true file) and their equations.
    pub true_reactions: Vec<(usize, String)>,
    /// The learned reactions (1-based) with this rate law.
    pub learned: Vec<usize>,
    /// Summed true `k S` (at eps = 1) and summed learned `k s`.
    pub true_effect: Vec<f64>,
    /// Summed learned `k s` (zeros when no learned reaction has this rate law).
    pub learned_effect: Vec<f64>,
    /// `‖learned − true‖ / ‖true‖`.
    pub error: f64,
    /// `error ≤ tol`.
    pub recovered: bool,
}

/// A learned reaction with no true counterpart.
#[derive(Debug, Clone, Serialize)]
pub struct Unmatched {
    /// 1-based number among the learned reactions.
    pub reaction: usize,
    /// Its equation.
    pub equation: String,
    /// Its rate law (or `non-integer orders`).
    pub rate_law: String,
    /// Its largest share of `‖F(x)‖` over the true test states.
    pub share: f64,
}

/// The comparison of a learned mechanism with the true one.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// One entry per true rate law, in the order of the true file.
    pub groups: Vec<GroupMatch>,
    /// Unmatched learned reactions with a share above [`SPURIOUS_SHARE`].
    pub spurious: Vec<Unmatched>,
    /// Unmatched learned reactions below it.
    pub negligible: Vec<Unmatched>,
    /// The tolerance on `error`.
    pub tol: f64,
}

impl MatchReport {
    /// Number of recovered groups.
    pub fn recovered(&self) -> usize {
        self.groups.iter().filter(|g| g.recovered).count()
    }

    /// Lines for a terminal or a README: one per true group, then the spurious reactions.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "true reactions recovered (grouped by rate law; error = ‖Σ k s learned − Σ k S true‖/‖Σ k S true‖ ≤ {}): {} of {}",
            self.tol,
            self.recovered(),
            self.groups.len()
        )];
        for g in &self.groups {
            let eqs: Vec<String> = g.true_reactions.iter().map(|(j, e)| format!("{j}: {e}")).collect();
            let learned = if g.learned.is_empty() {
                "no learned reaction".to_string()
            } else {
                format!("learned {}", g.learned.iter().map(|l| format!("r{l}")).collect::<Vec<_>>().join(" + "))
            };
            out.push(format!(
                "  {} rate {:<22} {} | {} | error {:.2e}",
                if g.recovered { "✓" } else { "✗" },
                g.rate_law,
                eqs.join("; "),
                learned,
                g.error
            ));
        }
        out.push(format!(
            "spurious learned reactions (share of ‖F‖ > {SPURIOUS_SHARE:e} at a test state): {}; negligible: {}",
            self.spurious.len(),
            self.negligible.len()
        ));
        for u in &self.spurious {
            out.push(format!("  r{}: {} (rate {}), share {:.2e}", u.reaction, u.equation, u.rate_law, u.share));
        }
        out
    }
}

/// The rate-law key: orders and eps-power rounded to integers, `None` when one is not within
/// [`KEY_TOLERANCE`] of an integer.
fn key(r: &Reaction, d: usize) -> Option<(Vec<i64>, i64)> {
    let mut nu = vec![0.0; d];
    for t in r.rate_law() {
        nu[t.species] += t.coeff;
    }
    let int = |v: f64| ((v - v.round()).abs() <= KEY_TOLERANCE).then_some(v.round() as i64);
    Some((nu.into_iter().map(int).collect::<Option<Vec<_>>>()?, int(r.eps_power)?))
}

/// A mass-action rate law's monomial in words: `y2 y3`, `y2^2`, `1` for a zero-order source.
pub fn monomial_label(orders: &[i64], names: &[String]) -> String {
    let parts: Vec<String> = orders
        .iter()
        .zip(names)
        .filter(|(o, _)| **o != 0)
        .map(|(o, n)| if *o == 1 { n.clone() } else { format!("{n}^{o}") })
        .collect();
    if parts.is_empty() { "1".into() } else { parts.join(" ") }
}

fn describe(key: &(Vec<i64>, i64), names: &[String]) -> String {
    let law = monomial_label(&key.0, names);
    if key.1 != 0 { format!("{law} · eps^{}", key.1) } else { law }
}

/// `k · (products − reactants)` at eps = 1.
fn effect(r: &Reaction, d: usize) -> Vec<f64> {
    let mut v = vec![0.0; d];
    for t in &r.reactants {
        v[t.species] -= r.k * t.coeff;
    }
    for t in &r.products {
        v[t.species] += r.k * t.coeff;
    }
    v
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Matches `learned` against `truth` (same species, in the same order): see the module docs.
pub fn match_reactions(truth: &Mechanism, learned: &Mechanism, tol: f64) -> MatchReport {
    let d = truth.species.len();
    let mut groups: Vec<((Vec<i64>, i64), GroupMatch)> = Vec::new();
    for (j, r) in truth.reactions.iter().enumerate() {
        let k = key(r, d).expect("a true mechanism has integer orders");
        let e = effect(r, d);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, g)) => {
                g.true_reactions.push((j + 1, r.equation.clone()));
                g.true_effect.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
            }
            None => groups.push((
                k.clone(),
                GroupMatch {
                    rate_law: describe(&k, &truth.species),
                    true_reactions: vec![(j + 1, r.equation.clone())],
                    learned: Vec::new(),
                    true_effect: e,
                    learned_effect: vec![0.0; d],
                    error: 1.0,
                    recovered: false,
                },
            )),
        }
    }
    let truth_system = MechanismSystem { file: String::new(), mechanism: truth.clone() };
    // ‖F(x)‖ of the true mechanism at its test states, once for every unmatched reaction.
    let true_norms: Vec<f64> = truth
        .test_states
        .iter()
        .map(|x| {
            let mut f = vec![0.0; d];
            truth_system.rhs(x, 1.0, &mut f);
            norm(&f).max(f64::MIN_POSITIVE)
        })
        .collect();
    let (mut spurious, mut negligible) = (Vec::new(), Vec::new());
    for (l, r) in learned.reactions.iter().enumerate() {
        let k = key(r, d);
        if let Some((_, g)) = k.as_ref().and_then(|k| groups.iter_mut().find(|(g, _)| g == k)) {
            g.learned.push(l + 1);
            g.learned_effect.iter_mut().zip(effect(r, d)).for_each(|(a, b)| *a += b);
            continue;
        }
        let one = Mechanism { reactions: vec![r.clone()], ..truth.clone() };
        let alone = MechanismSystem { file: String::new(), mechanism: one };
        let share = truth
            .test_states
            .iter()
            .zip(&true_norms)
            .map(|(x, n)| {
                let mut fl = vec![0.0; d];
                alone.rhs(x, 1.0, &mut fl);
                norm(&fl) / n
            })
            .fold(0.0, f64::max);
        let u = Unmatched {
            reaction: l + 1,
            equation: r.equation.clone(),
            rate_law: k.map(|k| describe(&k, &truth.species)).unwrap_or_else(|| "non-integer orders".into()),
            share,
        };
        if share > SPURIOUS_SHARE { spurious.push(u) } else { negligible.push(u) }
    }
    let groups = groups
        .into_iter()
        .map(|(_, mut g)| {
            let diff: Vec<f64> = g.learned_effect.iter().zip(&g.true_effect).map(|(a, b)| a - b).collect();
            g.error = norm(&diff) / norm(&g.true_effect).max(f64::MIN_POSITIVE);
            g.recovered = g.error <= tol;
            g
        })
        .collect();
    MatchReport { groups, spurious, negligible, tol }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::mechanism::parse;

    fn robertson() -> Mechanism {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/mechanisms/robertson.yaml")).unwrap();
        parse(&text, "robertson.yaml").unwrap()
    }

    /// Robertson's true reactions as a network would hold them (orders, stoichiometry scaled to
    /// `max |s| = 1`), plus a spurious one and a dead one.
    fn as_learned(m: &Mechanism, perturb: f64) -> Vec<Learned> {
        let d = m.species.len();
        let mut out: Vec<Learned> = m
            .reactions
            .iter()
            .map(|r| {
                let s = effect(r, d).iter().map(|v| v / r.k).collect::<Vec<_>>();
                let big = s.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let mut orders = vec![0.0; d];
                r.reactants.iter().for_each(|t| orders[t.species] = t.coeff);
                Learned {
                    rate_constant: r.k * big * (1.0 + perturb),
                    orders,
                    eps_exponent: r.eps_power,
                    stoichiometry: s.iter().map(|v| v / big).collect(),
                }
            })
            .collect();
        out.push(Learned {
            rate_constant: 5.0,
            orders: vec![0.0, 0.0, 1.0],
            eps_exponent: 0.0,
            stoichiometry: vec![1.0, 0.0, -1.0],
        });
        out.push(Learned {
            rate_constant: 0.0,
            orders: vec![1.0, 0.0, 0.0],
            eps_exponent: 0.0,
            stoichiometry: vec![0.0; 3],
        });
        out
    }

    /// A network holding the true reactions (rates 0.5 % off) recovers all three within 1 %, finds the
    /// spurious one, and writes a file that parses back to its own reactions; 2 % off is not recovered.
    #[test]
    fn matching_recovers_true_reactions_and_names_spurious_ones() {
        let truth = robertson();
        let sys = MechanismSystem { file: String::new(), mechanism: truth.clone() };
        let learned = learned_mechanism(&as_learned(&truth, 0.005), &sys, 1e5, 0.0);
        assert_eq!(learned.reactions.len(), 4, "the dead unit is dropped");
        let report = match_reactions(&truth, &learned, 0.01);
        assert_eq!(report.recovered(), 3, "{:#?}", report);
        assert!(report.groups.iter().all(|g| (g.error - 0.005).abs() < 1e-9), "{report:#?}");
        assert_eq!(report.spurious.len(), 1);
        assert_eq!(report.spurious[0].reaction, 4);
        let off = learned_mechanism(&as_learned(&truth, 0.02), &sys, 1e5, 0.0);
        assert_eq!(match_reactions(&truth, &off, 0.01).recovered(), 0);
        // Written and parsed back: the same reactions (the learned `2 y2 => y2 + y3` included).
        let text = crate::plugins::mechanism::write::to_yaml(&learned, "test", "learned");
        let back = parse(&text, "learned.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (a, b) in back.reactions.iter().zip(&learned.reactions) {
            assert_eq!(
                (&a.reactants, &a.products, &a.orders, a.k, a.eps_power),
                (&b.reactants, &b.products, &b.orders, b.k, b.eps_power)
            );
        }
        assert!(text.contains("2.0 y2 => y2 + y3") || text.contains("2 y2 => y2 + y3"), "{text}");
    }

    /// Two true reactions with one rate law (POLLU's HCHO => 2 HO2 + CO and HCHO => CO) are one group:
    /// a single learned reaction carrying their summed effect recovers both.
    #[test]
    fn reactions_sharing_a_rate_law_are_one_group() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/mechanisms/pollu.yaml")).unwrap();
        let truth = parse(&text, "pollu.yaml").unwrap();
        let d = truth.species.len();
        let hcho = truth.species.iter().position(|s| s == "HCHO").unwrap();
        let (r4, r5) = (&truth.reactions[3], &truth.reactions[4]);
        let sum: Vec<f64> = effect(r4, d).iter().zip(effect(r5, d)).map(|(a, b)| a + b).collect();
        let mut orders = vec![0.0; d];
        orders[hcho] = 1.0;
        let big = sum.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let one = Learned {
            rate_constant: big,
            orders,
            eps_exponent: 0.0,
            stoichiometry: sum.iter().map(|v| v / big).collect(),
        };
        let sys = MechanismSystem { file: String::new(), mechanism: truth.clone() };
        let learned = learned_mechanism(&[one], &sys, 60.0, 0.0);
        let report = match_reactions(&truth, &learned, 0.01);
        let g = report.groups.iter().find(|g| g.true_reactions.len() == 2 && g.rate_law == "HCHO").unwrap();
        assert!(g.recovered && g.error < 1e-14, "{g:#?}");
        assert_eq!(report.recovered(), 1);
        assert_eq!(report.groups.len(), 25 - 4, "POLLU has four pairs that share a rate law");
    }
}
