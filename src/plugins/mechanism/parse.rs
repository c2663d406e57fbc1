//! Reading a reaction-mechanism YAML file (a Cantera subset plus a `stiffx:` section) into a
//! [`Mechanism`].
//!
//! Each reaction `j` is an irreversible mass-action step `Σ_i ν_ij X_i => Σ_i μ_ij X_i` with rate
//!
//! ```text
//! r_j(x, eps) = k_j · eps^{p_j} · Π_i x_i^{ν_ij}        (zero-order when the left side is empty)
//! ν_ij = the reactant coefficient, or Cantera's per-reaction `orders: {X: 0.5}` where given
//! S_ij = μ_ij − ν_ij                                    (net stoichiometric matrix, d × m)
//! k_j  = A_j · T^{b_j} · exp(−Ea_j / (R T))             (Arrhenius at the fixed temperature T)
//! ```
//!
//! **Units.** Converted to stiffx's one unit system by [`units`](super::units): time in seconds,
//! activation energies in J/kmol (Cantera's `R = 8314.46261815324 J/(kmol·K)`), concentrations in
//! the file's own concentration unit (`quantity/length³` of its `units:` section, Cantera's `kmol/m³` without one,
//! the unit of `initial` and `test-states`). `A` (or a plain `rate-constant: 0.35`, which is `k_j`
//! itself) is a plain number in the file's units or a Cantera `value unit` string such as
//! `1.5e13 cm^3/mol/s` (its dimension checked against the reaction's order); `Ea` likewise
//! (`12.5 kcal/mol`, `5000 K`). `T` (`stiffx: temperature`, in K) is needed only when some `b` or `Ea`
//! is not zero.
//!
//! **Keys.** Top level: `description`, `units`, `phases` and `elements` (Cantera's, so that Cantera
//! loads the same file; stiffx reads no thermodynamics), `generator`, `cantera-version`, `date`,
//! `species` (a list of `{name, composition?, thermo?, note?}`), `reactions` (a list of
//! `{equation, rate-constant, type?: elementary, duplicate?, note?, eps-power?, orders?}`) and `stiffx`
//! (`temperature?`, `eps-power?` (map reaction number, 1-based, → power), `train-eps`, `unseen-eps`,
//! `initial` (species → `[lo, hi]` uniform range or a fixed number; species left out are 0),
//! `test-states` (a list of maps species → value, species left out are 0), `horizon`, in the
//! file's time unit, and `signed?` (`true`: the species are signed state variables of a polynomial ODE,
//! not concentrations; negative initial ranges and test states are allowed, orders must be whole). Every other key is refused with its file, line and column. Equations use `=>`
//! only; `<=>` and `=` (reversible) are refused. A zero-order source is written `=> Y1` (empty left
//! side).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use super::units::GAS_CONSTANT;
use super::units::{FileUnits, split_value};

/// One species with its stoichiometric coefficient on one side of a reaction (or its order in the
/// rate law).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// Index of the species in [`Mechanism::species`].
    pub species: usize,
    /// Stoichiometric coefficient (> 0; integers in a written mechanism, any real in a learned one),
    /// or the order (≥ 0) in [`Reaction::orders`].
    pub coeff: f64,
}

/// One irreversible mass-action reaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    /// The equation as written in the file (for reading only; `reactants`/`products` are authoritative).
    pub equation: String,
    /// Left side (the mass-action orders).
    pub reactants: Vec<Term>,
    /// Right side.
    pub products: Vec<Term>,
    /// Orders of the rate law where they differ from mass action (Cantera's `orders:`): empty means
    /// the reactants' coefficients; otherwise every reactant's order, zeros included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<Term>,
    /// Rate constant `k_j` at `eps = 1` (Arrhenius already evaluated at the file's temperature).
    pub k: f64,
    /// Power `p_j` of `eps` in the rate: `r_j = k_j · eps^{p_j} · Π x^ν`.
    pub eps_power: f64,
}

/// A parsed mechanism: everything a `MechanismSystem` needs, serialisable into a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mechanism {
    /// Species names, in file order (the state order).
    pub species: Vec<String>,
    /// Reactions, in file order.
    pub reactions: Vec<Reaction>,
    /// Training stiffness grid.
    pub train_eps: Vec<f64>,
    /// Unseen stiffness grid.
    pub unseen_eps: Vec<f64>,
    /// Per-species `[lo, hi]` of the uniform initial-state distribution.
    pub initial: Vec<[f64; 2]>,
    /// Fixed test initial states.
    pub test_states: Vec<Vec<f64>>,
    /// Time horizon of the problem (seconds).
    pub horizon: f64,
    /// The species are signed state variables, not concentrations (`stiffx: signed: true`): a
    /// polynomial ODE written as reactions, e.g. Van der Pol identified by `stiffx identify`. Initial
    /// ranges and test states may then be negative, and every order must be a whole number (`x^ν` of a
    /// negative `x`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    units: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    #[allow(dead_code)]
    phases: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    elements: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    generator: Option<IgnoredAny>,
    #[serde(default, rename = "cantera-version")]
    #[allow(dead_code)]
    cantera_version: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    date: Option<IgnoredAny>,
    species: Vec<SpeciesRaw>,
    reactions: Vec<ReactionRaw>,
    stiffx: StiffxRaw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeciesRaw {
    name: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    composition: BTreeMap<String, f64>,
    #[serde(default)]
    #[allow(dead_code)]
    thermo: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactionRaw {
    equation: Spanned<String>,
    #[serde(rename = "rate-constant")]
    rate_constant: Spanned<Rate>,
    #[serde(default, rename = "type")]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    duplicate: bool,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    #[serde(default, rename = "eps-power")]
    eps_power: Option<f64>,
    #[serde(default)]
    orders: Option<Spanned<Entries<f64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StiffxRaw {
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    eps_power: BTreeMap<usize, f64>,
    train_eps: Vec<f64>,
    unseen_eps: Vec<f64>,
    initial: Entries<Range>,
    test_states: Vec<Entries<f64>>,
    horizon: f64,
    #[serde(default)]
    signed: bool,
}

/// A number, or a Cantera `"value unit"` string.
#[derive(Clone)]
struct Val {
    v: f64,
    unit: Option<String>,
}

impl Val {
    fn plain(v: f64) -> Self {
        Val { v, unit: None }
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            N(f64),
            S(String),
        }
        match V::deserialize(d)? {
            V::N(v) => Ok(Val::plain(v)),
            V::S(s) => {
                let (v, unit) = split_value(&s).map_err(de::Error::custom)?;
                Ok(Val { v, unit: unit.map(str::to_string) })
            }
        }
    }
}

/// A rate constant: a plain number `k`, or Arrhenius `{A, b, Ea}` / `[A, b, Ea]`; `A` and `Ea` may
/// carry units (`"1.5e13 cm^3/mol/s"`).
struct Rate {
    a: Val,
    b: f64,
    ea: Val,
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, \"value unit\", {A, b, Ea} or [A, b, Ea]")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Ok(Rate { a: Val::plain(v), b: 0.0, ea: Val::plain(0.0) })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rate, E> {
                let (v, unit) = split_value(s).map_err(E::custom)?;
                Ok(Rate { a: Val { v, unit: unit.map(str::to_string) }, b: 0.0, ea: Val::plain(0.0) })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Rate, S::Error> {
                let a: Val = s.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let b: f64 = s.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let ea: Val = s.next_element()?.ok_or_else(|| de::Error::invalid_length(2, &self))?;
                if s.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(Rate { a, b, ea })
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Rate, M::Error> {
                let (mut a, mut b, mut ea) = (None, 0.0, Val::plain(0.0));
                while let Some(key) = m.next_key::<String>()? {
                    match key.as_str() {
                        "A" => a = Some(m.next_value()?),
                        "b" => b = m.next_value()?,
                        "Ea" => ea = m.next_value()?,
                        other => return Err(de::Error::unknown_field(other, &["A", "b", "Ea"])),
                    }
                }
                Ok(Rate { a: a.ok_or_else(|| de::Error::missing_field("A"))?, b, ea })
            }
        }
        d.deserialize_any(V)
    }
}

/// A map species → value, keys with their locations, in file order (duplicate keys are refused by
/// the YAML reader).
struct Entries<V>(Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map species -> value")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Entries<V>, M::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    out.push((k, m.next_value()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// `[lo, hi]` or a fixed value.
struct Range([f64; 2]);

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum R {
            Fixed(f64),
            Range([f64; 2]),
        }
        match R::deserialize(d)
            .map_err(|_| de::Error::custom("an initial range is a number or [lo, hi] with 0 <= lo <= hi"))?
        {
            R::Fixed(v) => Ok(Range([v, v])),
            R::Range(r) => Ok(Range(r)),
        }
    }
}

/// Parses mechanism YAML `text`; `file` names the source in error messages (`file:line:column: …`).
pub fn parse(text: &str, file: &str) -> Result<Mechanism, String> {
    let raw: FileRaw = serde_saphyr::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!("{file}:{}:{}: {}", l.line(), l.column(), without_location(&e.to_string())),
        None => format!("{file}: {e}"),
    })?;
    let at = |l: &serde_saphyr::Location| format!("{file}:{}:{}", l.line(), l.column());
    let units = match &raw.units {
        Some(u) => FileUnits::from_section(&u.value).map_err(|e| format!("{}: {e}", at(&u.referenced)))?,
        None => FileUnits::default(),
    };
    let species: Vec<String> = raw.species.iter().map(|s| s.name.value.clone()).collect();
    for (i, s) in raw.species.iter().enumerate() {
        if species[..i].contains(&s.name.value) {
            return Err(format!("{}: species `{}` is listed twice", at(&s.name.referenced), s.name.value));
        }
    }
    let index = |name: &str| species.iter().position(|s| s == name);
    let temperature = raw.stiffx.temperature;
    let mut reactions = Vec::with_capacity(raw.reactions.len());
    for (j, r) in raw.reactions.iter().enumerate() {
        let here = at(&r.equation.referenced);
        let eq = r.equation.value.trim();
        if let Some(kind) = &r.kind
            && kind.value != "elementary"
        {
            return Err(format!(
                "{}: reaction {} `type: {}`: only `elementary` (mass-action) reactions are supported",
                at(&kind.referenced),
                j + 1,
                kind.value
            ));
        }
        let tokens: Vec<&str> = eq.split_whitespace().collect();
        if tokens.iter().any(|t| *t == "<=>" || *t == "=") {
            return Err(format!(
                "{here}: reaction {} `{eq}` is reversible; only irreversible `=>` reactions are supported: \
                 write it as two irreversible reactions (forward and reverse), each with its own rate-constant",
                j + 1
            ));
        }
        let Some((lhs, rhs)) = eq.split_once("=>") else {
            return Err(format!("{here}: reaction {} `{eq}` has no `=>`", j + 1));
        };
        let side = |s: &str| -> Result<Vec<Term>, String> {
            let mut terms: Vec<Term> = Vec::new();
            for part in s.split(" + ").map(str::trim).filter(|p| !p.is_empty()) {
                let mut it = part.split_whitespace();
                let (coeff, name) = match (it.next(), it.next(), it.next()) {
                    (Some(n), None, None) => (1.0, n),
                    (Some(c), Some(n), None) => match c.parse::<f64>() {
                        Ok(c) if c.is_finite() && c > 0.0 => (c, n),
                        _ => {
                            return Err(format!(
                                "{here}: reaction {} `{eq}`: coefficient `{c}` is not a number > 0",
                                j + 1
                            ));
                        }
                    },
                    _ => return Err(format!("{here}: reaction {} `{eq}`: cannot read `{part}`", j + 1)),
                };
                let Some(i) = index(name) else {
                    return Err(format!(
                        "{here}: reaction {} `{eq}`: unknown species `{name}` (species: {})",
                        j + 1,
                        species.join(", ")
                    ));
                };
                match terms.iter_mut().find(|t| t.species == i) {
                    Some(t) => t.coeff += coeff,
                    None => terms.push(Term { species: i, coeff }),
                }
            }
            Ok(terms)
        };
        let (reactants, products) = (side(lhs)?, side(rhs)?);
        let mut orders = Vec::new();
        if let Some(o) = &r.orders {
            orders = reactants.iter().map(|t| Term { species: t.species, coeff: t.coeff }).collect();
            for (key, v) in &o.value.0 {
                let place = at(&key.referenced);
                let Some(t) = index(&key.value).and_then(|i| orders.iter_mut().find(|t| t.species == i)) else {
                    return Err(format!(
                        "{place}: reaction {} `{eq}`: orders: `{}` is not a reactant (orders are given for reactants only)",
                        j + 1,
                        key.value
                    ));
                };
                if !(v.is_finite() && *v >= 0.0) {
                    return Err(format!(
                        "{place}: reaction {} `{eq}`: orders: `{}` must be a number >= 0",
                        j + 1,
                        key.value
                    ));
                }
                t.coeff = *v;
            }
        }
        let rate = &r.rate_constant.value;
        let order_terms = if orders.is_empty() { &reactants } else { &orders };
        let order: f64 = order_terms.iter().map(|t| t.coeff).sum();
        let rate_at = at(&r.rate_constant.referenced);
        let a = units
            .rate_coefficient(rate.a.v, rate.a.unit.as_deref(), order)
            .map_err(|e| format!("{rate_at}: reaction {} `{eq}`: A: {e}", j + 1))?;
        let ea = units
            .activation_energy(rate.ea.v, rate.ea.unit.as_deref())
            .map_err(|e| format!("{rate_at}: reaction {} `{eq}`: Ea: {e}", j + 1))?;
        let k = if rate.b == 0.0 && ea == 0.0 {
            a
        } else {
            let Some(t) = temperature else {
                return Err(format!(
                    "{}: reaction {} has an Arrhenius b or Ea but `stiffx: temperature` is not given",
                    at(&r.rate_constant.referenced),
                    j + 1
                ));
            };
            a * t.powf(rate.b) * (-ea / (GAS_CONSTANT * t)).exp()
        };
        if !(k.is_finite() && k >= 0.0) {
            return Err(format!(
                "{}: reaction {}: rate constant {k} is not a finite number >= 0",
                at(&r.rate_constant.referenced),
                j + 1
            ));
        }
        let from_map = raw.stiffx.eps_power.get(&(j + 1)).copied();
        if r.eps_power.is_some() && from_map.is_some() {
            return Err(format!(
                "{here}: reaction {}: eps-power given both on the reaction and in `stiffx: eps-power`",
                j + 1
            ));
        }
        let eps_power = r.eps_power.or(from_map).unwrap_or(0.0);
        if !eps_power.is_finite() {
            return Err(format!("{here}: reaction {}: eps-power must be finite", j + 1));
        }
        reactions.push(Reaction { equation: eq.to_string(), reactants, products, orders, k, eps_power });
    }
    if let Some((&j, _)) = raw.stiffx.eps_power.iter().find(|(j, _)| **j == 0 || **j > reactions.len()) {
        return Err(format!(
            "{file}: `stiffx: eps-power` names reaction {j}, but reactions are numbered 1..={}",
            reactions.len()
        ));
    }
    let by_species = |key: &Spanned<String>, what: &str| {
        index(&key.value).ok_or_else(|| format!("{}: {what}: unknown species `{}`", at(&key.referenced), key.value))
    };
    let mut initial = vec![[0.0, 0.0]; species.len()];
    for (key, Range([lo, hi])) in &raw.stiffx.initial.0 {
        let i = by_species(key, "stiffx initial")?;
        let floor_ok = raw.stiffx.signed || 0.0 <= *lo;
        if !(lo.is_finite() && hi.is_finite() && floor_ok && lo <= hi) {
            let need = if raw.stiffx.signed { "lo <= hi" } else { "0 <= lo <= hi (or `stiffx: signed: true`)" };
            return Err(format!(
                "{}: stiffx initial `{}`: need {need}, got [{lo}, {hi}]",
                at(&key.referenced),
                key.value
            ));
        }
        initial[i] = [*lo, *hi];
    }
    let mut test_states = Vec::new();
    for state in &raw.stiffx.test_states {
        let mut x = vec![0.0; species.len()];
        for (key, v) in &state.0 {
            x[by_species(key, "stiffx test-states")?] = *v;
        }
        test_states.push(x);
    }
    let m = Mechanism {
        species,
        reactions,
        train_eps: raw.stiffx.train_eps,
        unseen_eps: raw.stiffx.unseen_eps,
        initial,
        test_states,
        horizon: raw.stiffx.horizon * units.time,
        signed: raw.stiffx.signed,
    };
    m.check("").map_err(|e| format!("{file}: {e}"))?;
    Ok(m)
}

/// serde-saphyr's message without its own `error: line L column C: ` prefix (the caller writes
/// `file:line:column:` once).
fn without_location(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix("error: line ") else { return msg };
    match rest.split_once(": ") {
        Some((pos, tail)) if pos.split(" column ").all(|n| n.chars().all(|c| c.is_ascii_digit())) => tail,
        _ => msg,
    }
}

impl Reaction {
    /// The terms of the rate law: [`orders`](Self::orders) where given, else the reactants (mass action).
    pub fn rate_law(&self) -> &[Term] {
        if self.orders.is_empty() { &self.reactants } else { &self.orders }
    }
}
