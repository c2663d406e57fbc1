//! Checks of a parsed or stored [`Mechanism`]: every number finite and in its range, indices in
//! range, grids and states complete. A file's own parser names lines; these checks name the field
//! path (`system.mechanism.reactions[2].k` for a mechanism stored in a config or checkpoint), so a
//! hand-edited or corrupted copy is refused before any solver sees a NaN.

use super::parse::{Mechanism, Term};
use crate::error::Error;

/// The project's invalid-value message ([`Error::invalid`]) for `path`, as the parser's `String` error.
fn bad(path: String, value: impl std::fmt::Display, allowed: &str) -> Result<(), String> {
    Err(Error::invalid(path, value, allowed).to_string())
}

impl Mechanism {
    /// What a state component may be: a concentration, or any finite number for a signed mechanism.
    fn state_allowed(&self) -> &'static str {
        if self.signed {
            "a finite number"
        } else {
            "a finite concentration >= 0 (or `stiffx: signed: true` for signed state variables)"
        }
    }

    /// Checks every field; `prefix` is the path of the mechanism in its document (`""` for a file,
    /// `"system.mechanism."` for a stored copy) and starts every field path in the message.
    pub fn check(&self, prefix: &str) -> Result<(), String> {
        let d = self.species.len();
        if d == 0 || self.reactions.is_empty() {
            return Err("a mechanism needs at least one species and one reaction".into());
        }
        for (j, r) in self.reactions.iter().enumerate() {
            let at = format!("{prefix}reactions[{j}]");
            let terms = |what: &str, ts: &[Term], order: bool| -> Result<(), String> {
                for (i, t) in ts.iter().enumerate() {
                    if t.species >= d {
                        return bad(format!("{at}.{what}[{i}].species"), t.species, &format!("a species index < {d}"));
                    }
                    let ok = t.coeff.is_finite() && if order { t.coeff >= 0.0 } else { t.coeff > 0.0 };
                    if !ok {
                        let allowed = if order { "a finite number >= 0" } else { "a finite number > 0" };
                        return bad(format!("{at}.{what}[{i}].coeff (`{}`)", r.equation), t.coeff, allowed);
                    }
                }
                Ok(())
            };
            terms("reactants", &r.reactants, false)?;
            terms("products", &r.products, false)?;
            terms("orders", &r.orders, true)?;
            // The rate law is the orders, or the reactants' coefficients when no orders are given.
            let (law, what) = if r.orders.is_empty() { (&r.reactants, "reactants") } else { (&r.orders, "orders") };
            if self.signed
                && let Some((i, t)) = law.iter().enumerate().find(|(_, t)| t.coeff != t.coeff.round())
            {
                let path = format!("{at}.{what}[{i}].coeff (`{}`)", r.equation);
                return bad(path, t.coeff, "a whole number (the species are signed: `signed: true`)");
            }
            if !(r.k.is_finite() && r.k >= 0.0) {
                return bad(format!("{at}.k (`{}`)", r.equation), r.k, "a finite rate constant >= 0");
            }
            if !(r.eps_power.is_finite() && r.eps_power.abs() <= 64.0) {
                return bad(
                    format!("{at}.eps_power (`{}`)", r.equation),
                    r.eps_power,
                    "a finite power of eps in [-64, 64]",
                );
            }
        }
        for (name, grid) in [("train_eps", &self.train_eps), ("unseen_eps", &self.unseen_eps)] {
            if grid.is_empty() {
                return bad(format!("{prefix}{name}"), "[]", "a non-empty list of finite numbers > 0");
            }
            if let Some((i, e)) = grid.iter().enumerate().find(|(_, e)| !(e.is_finite() && **e > 0.0)) {
                return bad(format!("{prefix}{name}[{i}]"), e, "a finite number > 0");
            }
        }
        if self.initial.len() != d {
            return bad(
                format!("{prefix}initial"),
                format!("{} ranges", self.initial.len()),
                &format!("one [lo, hi] per species ({d})"),
            );
        }
        for (i, &[lo, hi]) in self.initial.iter().enumerate() {
            for (k, v) in [lo, hi].into_iter().enumerate() {
                if !(v.is_finite() && (self.signed || v >= 0.0)) {
                    let what = format!("{v} (`{}`)", self.species[i]);
                    return bad(format!("{prefix}initial[{i}][{k}]"), what, self.state_allowed());
                }
            }
            if lo > hi {
                let what = format!("[{lo}, {hi}] for `{}`", self.species[i]);
                return bad(format!("{prefix}initial[{i}]"), what, "lo <= hi");
            }
        }
        if self.test_states.is_empty() {
            return bad(format!("{prefix}test_states"), "[]", "at least one state");
        }
        for (s, x) in self.test_states.iter().enumerate() {
            if x.len() != d {
                return bad(
                    format!("{prefix}test_states[{s}]"),
                    format!("{} components", x.len()),
                    &format!("{d} components"),
                );
            }
            if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !(v.is_finite() && (self.signed || **v >= 0.0))) {
                return bad(format!("{prefix}test_states[{s}][{i}]"), v, self.state_allowed());
            }
        }
        if !(self.horizon.is_finite() && self.horizon > 0.0) {
            return bad(format!("{prefix}horizon"), self.horizon, "a finite number > 0");
        }
        Ok(())
    }
}
