//! Writing a [`Mechanism`] as mechanism YAML: the file format [`parse`](mod@super::parse) reads, so that a
//! written file (a learned reaction network, see `eval::reactions`) runs again as a system with
//! `stiffx run --system FILE.yaml`.
//!
//! Numbers are written in Rust's shortest round-trip form, so parsing the file gives back the same
//! `f64`s: rate constants as plain `{A, b: 0, Ea: 0}` in the file's (default) units, equations with
//! their real stoichiometric coefficients (`1.9998 y2 => 0.9998 y2 + y3`), Cantera's `orders:` where
//! the rate law's orders differ from the reactant coefficients, and each reaction's `eps-power`.

use std::fmt::Write as _;

use super::parse::{Mechanism, Term};

/// `v` in a form both YAML readers (serde-saphyr, Cantera's yaml-cpp) take as a float and that
/// parses back to the same `f64`: shortest round-trip digits, scientific notation with a mantissa
/// dot (`3.0e7`, `1.25e-3`).
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into();
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => s,
    }
}

/// A coefficient in an equation: omitted when 1, shortest round-trip digits otherwise.
fn coeff(v: f64) -> String {
    if v == 1.0 { String::new() } else { format!("{v} ") }
}

fn side(terms: &[Term], names: &[String]) -> String {
    terms.iter().map(|t| format!("{}{}", coeff(t.coeff), names[t.species])).collect::<Vec<_>>().join(" + ")
}

/// The YAML text of `m`, after `header` (each line written as a `# ` comment) and `description`.
pub fn to_yaml(m: &Mechanism, header: &str, description: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "description: {}", yaml_string(description));
    out.push_str("\nspecies:\n");
    for s in &m.species {
        let _ = writeln!(out, "- {{name: {}}}", yaml_string(s));
    }
    out.push_str("\nreactions:\n");
    for (j, r) in m.reactions.iter().enumerate() {
        let eq = format!("{} => {}", side(&r.reactants, &m.species), side(&r.products, &m.species));
        let _ = writeln!(out, "- equation: {}    # {}", eq.trim(), j + 1);
        let _ = writeln!(out, "  rate-constant: {{A: {}, b: 0, Ea: 0}}", number(r.k));
        if r.eps_power != 0.0 {
            let _ = writeln!(out, "  eps-power: {}", number(r.eps_power));
        }
        if !r.orders.is_empty() {
            let orders: Vec<String> = r
                .orders
                .iter()
                .map(|t| format!("{}: {}", yaml_string(&m.species[t.species]), number(t.coeff)))
                .collect();
            let _ = writeln!(out, "  orders: {{{}}}", orders.join(", "));
        }
    }
    let list = |v: &[f64]| v.iter().map(|x| number(*x)).collect::<Vec<_>>().join(", ");
    out.push_str("\nstiffx:\n");
    let _ = writeln!(out, "  train-eps: [{}]", list(&m.train_eps));
    let _ = writeln!(out, "  unseen-eps: [{}]", list(&m.unseen_eps));
    out.push_str("  initial:\n");
    for (name, [lo, hi]) in m.species.iter().zip(&m.initial) {
        let _ = writeln!(out, "    {}: [{}, {}]", yaml_string(name), number(*lo), number(*hi));
    }
    out.push_str("  test-states:\n");
    for x in &m.test_states {
        let entries: Vec<String> = m
            .species
            .iter()
            .zip(x)
            .filter(|(_, v)| **v != 0.0)
            .map(|(n, v)| format!("{}: {}", yaml_string(n), number(*v)))
            .collect();
        let _ = writeln!(out, "  - {{{}}}", entries.join(", "));
    }
    let _ = writeln!(out, "  horizon: {}", number(m.horizon));
    if m.signed {
        out.push_str("  signed: true\n");
    }
    out
}

/// A YAML scalar: plain when it is a safe identifier-like word, double-quoted otherwise.
fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_()-+.,*' ".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !s.contains(", ")
        && !matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain { s.to_string() } else { format!("{s:?}") }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    /// Numbers survive the text: every `f64` written parses back bit for bit.
    #[test]
    fn numbers_round_trip() {
        for v in [3e7, 0.04, 1.0 / 3.0, -0.999917392925007, 2.5e-300, 1e300, 1.0] {
            let s = number(v);
            assert!(s.contains('.') && s.contains('e'), "{s}");
            assert_eq!(s.parse::<f64>().unwrap(), v);
        }
    }

    /// The shipped Robertson file, parsed, written and parsed again, is the same mechanism (the
    /// equation text aside, which the writer regenerates).
    #[test]
    fn a_parsed_mechanism_round_trips_through_the_writer() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/mechanisms/pollu.yaml")).unwrap();
        let m = parse(&text, "pollu.yaml").unwrap();
        let written = to_yaml(&m, "a test\nof the writer", "POLLU, written back");
        let mut back = parse(&written, "written.yaml").unwrap_or_else(|e| panic!("{e}\n{written}"));
        for (a, b) in back.reactions.iter_mut().zip(&m.reactions) {
            a.equation = b.equation.clone();
        }
        assert_eq!(back, m);
    }
}
