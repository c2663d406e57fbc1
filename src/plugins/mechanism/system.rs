//! The `mechanism` system: a [`Mechanism`] as a [`StiffSystem`].
//!
//! With `d` species, `m` reactions, rate-law orders `ν_ij` (the reactant coefficients, or the
//! reaction's `orders:`) and net stoichiometry `S = products − reactants` (d × m):
//!
//! ```text
//! x' = F(x, eps) = S · r(x, eps),      r_j = k_j · eps^{p_j} · Π_i x_i^{ν_ij}
//! J_ik = ∂F_i/∂x_k = Σ_j S_ij · k_j · eps^{p_j} · ν_kj · x_k^{ν_kj − 1} · Π_{l≠k} x_l^{ν_lj}
//! ```
//!
//! The Jacobian is analytic (from the stoichiometry, no finite differences). Conservation laws are a
//! basis of the left null space of `S` (`wᵀ S = 0`, hence `wᵀ F = 0` for every `x` and `eps`), from
//! the reduced row echelon form of `Sᵀ` (one vector per free column, that column's entry set to 1);
//! they are returned by [`StiffSystem::invariants`].
//!
//! Config: `file` names the YAML file; the parsed mechanism is stored inline under `mechanism`, so a
//! checkpoint's config carries the mechanism itself. When `mechanism` is present it is used and `file`
//! is not read (a checkpoint reloads without the file); otherwise `file` is read (relative to the
//! working directory). Training initial states are drawn uniformly per species in the file's
//! `initial` ranges.

use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::parse::{Mechanism, Term, parse};
use crate::plugins::system::StiffSystem;

/// The mechanism shipped as the default (Robertson's reaction).
const DEFAULT_FILE: &str = "mechanisms/robertson.yaml";
const DEFAULT_TEXT: &str = include_str!("../../../mechanisms/robertson.yaml");

/// A stiff system read from a reaction-mechanism file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MechanismSystemRaw")]
pub struct MechanismSystem {
    /// The YAML file the mechanism came from.
    pub file: String,
    /// The parsed mechanism (stored in configs and checkpoints).
    pub mechanism: Mechanism,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MechanismSystemRaw {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    mechanism: Option<Mechanism>,
}

impl TryFrom<MechanismSystemRaw> for MechanismSystem {
    type Error = String;
    fn try_from(raw: MechanismSystemRaw) -> Result<Self, String> {
        Self::from_stored(raw.file, raw.mechanism, "system")
    }
}

impl Default for MechanismSystem {
    fn default() -> Self {
        Self::from_text(DEFAULT_TEXT, DEFAULT_FILE).expect("the shipped robertson.yaml parses")
    }
}

impl MechanismSystem {
    /// From a config table's `file` and stored `mechanism` (at `field`: `system`, `model.init`): a
    /// stored mechanism is checked (errors name `field.mechanism.…`), else the file is read.
    pub fn from_stored(file: Option<String>, mechanism: Option<Mechanism>, field: &str) -> Result<Self, String> {
        match (file, mechanism) {
            (file, Some(mechanism)) => {
                let file = file.unwrap_or_default();
                mechanism
                    .check(&format!("{field}.mechanism."))
                    .map_err(|e| format!("stored mechanism (from `{file}`): {e}"))?;
                Ok(Self { file, mechanism })
            }
            (Some(file), None) => Self::from_file(&file),
            (None, None) => Err(format!("{field} needs `file = \"path/to/mechanism.yaml\"`")),
        }
    }

    /// Reads and parses `file`; errors name the file (and line, column where the YAML gives them).
    pub fn from_file(file: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: cannot read the mechanism file: {e}"))?;
        Self::from_text(&text, file)
    }

    /// Parses mechanism YAML `text`, recording `file` as its source.
    pub fn from_text(text: &str, file: &str) -> Result<Self, String> {
        Ok(Self { file: file.to_string(), mechanism: parse(text, file)? })
    }

    /// The net stoichiometric matrix `S` (species × reactions).
    pub fn stoichiometry(&self) -> DMatrix<f64> {
        let m = &self.mechanism;
        let mut s = DMatrix::zeros(m.species.len(), m.reactions.len());
        for (j, r) in m.reactions.iter().enumerate() {
            for t in &r.reactants {
                s[(t.species, j)] -= t.coeff;
            }
            for t in &r.products {
                s[(t.species, j)] += t.coeff;
            }
        }
        s
    }

    /// The rate constant of reaction `j` at `eps`: `k_j · eps^{p_j}`.
    fn k_eff(&self, j: usize, eps: f64) -> f64 {
        let r = &self.mechanism.reactions[j];
        let p = r.eps_power;
        let scale = if p == 0.0 {
            1.0
        } else if p == p.round() && p.abs() < 64.0 {
            eps.powi(p as i32)
        } else {
            eps.powf(p)
        };
        r.k * scale
    }
}

/// `x^ν`: `powi` for integer orders (exact products, as a hand-written RHS), `powf` otherwise.
fn pow(x: f64, nu: f64) -> f64 {
    if nu == nu.round() && nu.abs() < 64.0 { x.powi(nu as i32) } else { x.powf(nu) }
}

/// `Π_i x_i^{ν_i}` over the terms, skipping index `skip` (for the Jacobian).
fn monomial(terms: &[Term], x: &[f64], skip: Option<usize>) -> f64 {
    terms.iter().filter(|t| Some(t.species) != skip).map(|t| pow(x[t.species], t.coeff)).product()
}

/// A basis of the left null space of `s` (`wᵀ s = 0`), from the reduced row echelon form of `sᵀ`.
pub fn left_null_space(s: &DMatrix<f64>) -> Vec<Vec<f64>> {
    let mut a = s.transpose(); // m × d
    let (rows, cols) = a.shape();
    let tol = 1e-12 * a.abs().max().max(1.0);
    let mut pivots = Vec::new();
    let mut row = 0;
    for c in 0..cols {
        if row == rows {
            break;
        }
        let Some(p) = (row..rows).max_by(|&i, &k| a[(i, c)].abs().total_cmp(&a[(k, c)].abs())) else { break };
        if a[(p, c)].abs() <= tol {
            continue;
        }
        a.swap_rows(row, p);
        let piv = a[(row, c)];
        for k in 0..cols {
            a[(row, k)] /= piv;
        }
        for i in 0..rows {
            if i != row && a[(i, c)] != 0.0 {
                let f = a[(i, c)];
                for k in 0..cols {
                    a[(i, k)] -= f * a[(row, k)];
                }
            }
        }
        pivots.push(c);
        row += 1;
    }
    (0..cols)
        .filter(|c| !pivots.contains(c))
        .map(|free| {
            let mut w = vec![0.0; cols];
            w[free] = 1.0;
            for (r, &pc) in pivots.iter().enumerate() {
                let v = -a[(r, free)];
                w[pc] = if v.abs() <= tol { 0.0 } else { v };
            }
            w
        })
        .collect()
}

#[typetag::serde(name = "mechanism")]
impl StiffSystem for MechanismSystem {
    fn dim(&self) -> usize {
        self.mechanism.species.len()
    }

    fn state_names(&self) -> Vec<String> {
        self.mechanism.species.clone()
    }

    fn train_grid(&self) -> Vec<f64> {
        self.mechanism.train_eps.clone()
    }

    fn unseen_grid(&self) -> Vec<f64> {
        self.mechanism.unseen_eps.clone()
    }

    fn rhs(&self, x: &[f64], eps: f64, dx: &mut [f64]) {
        dx.fill(0.0);
        for (j, r) in self.mechanism.reactions.iter().enumerate() {
            let rate = self.k_eff(j, eps) * monomial(r.rate_law(), x, None);
            for t in &r.reactants {
                dx[t.species] -= t.coeff * rate;
            }
            for t in &r.products {
                dx[t.species] += t.coeff * rate;
            }
        }
    }

    fn jacobian(&self, x: &[f64], eps: f64) -> DMatrix<f64> {
        let d = self.dim();
        let mut jac = DMatrix::zeros(d, d);
        for (j, r) in self.mechanism.reactions.iter().enumerate() {
            let k = self.k_eff(j, eps);
            let law = r.rate_law();
            for tk in law.iter().filter(|t| t.coeff != 0.0) {
                // ∂r_j/∂x_k = k · ν_kj · x_k^{ν_kj − 1} · Π_{l≠k} x_l^{ν_lj}
                let dr = k * tk.coeff * pow(x[tk.species], tk.coeff - 1.0) * monomial(law, x, Some(tk.species));
                for t in &r.reactants {
                    jac[(t.species, tk.species)] -= t.coeff * dr;
                }
                for t in &r.products {
                    jac[(t.species, tk.species)] += t.coeff * dr;
                }
            }
        }
        jac
    }

    fn sample_initial(&self, rng: &mut StdRng) -> Vec<f64> {
        self.mechanism.initial.iter().map(|&[lo, hi]| if hi > lo { rng.random_range(lo..=hi) } else { lo }).collect()
    }

    fn initial_unit_dims(&self) -> Option<usize> {
        Some(self.mechanism.initial.len())
    }

    fn initial_from_unit(&self, u: &[f64]) -> Option<Vec<f64>> {
        crate::plugins::system::from_unit_box(&self.mechanism.initial, u)
    }

    fn test_initial_states(&self) -> Vec<Vec<f64>> {
        self.mechanism.test_states.clone()
    }

    fn invariants(&self) -> Vec<Vec<f64>> {
        left_null_space(&self.stoichiometry())
    }
}

crate::register!(
    system,
    MechanismSystem,
    "a reaction-mechanism YAML file (Cantera subset + `stiffx:`), mass action; default mechanisms/robertson.yaml"
);
