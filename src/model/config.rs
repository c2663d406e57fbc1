//! `[model]` of a config: the network's shape and activation, how the stiffness parameter and the
//! states enter it (`eps_input`, `state_input`: linear, asinh or log maps), and per-component values.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::model::Activation;

/// How the stiffness parameter enters the network (before standardisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EpsInput {
    /// `eps` itself (paper eq. 9).
    #[default]
    Linear,
    /// `ln(eps)`: spreads a grid spanning decades evenly over the input range (the fast rate is `1/eps`).
    Log,
}

impl EpsInput {
    /// The network's input feature for a stiffness value.
    pub fn feature(self, eps: f64) -> f64 {
        match self {
            EpsInput::Linear => eps,
            EpsInput::Log => eps.ln(),
        }
    }
}

/// How the state enters the network (before standardisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StateInput {
    /// `x` itself (paper eq. 9).
    #[default]
    Linear,
    /// `asinh(x_i / c_i)` per species, `c_i` a low quantile of `|x_i|` (see
    /// [`Normalizer`](crate::model::Normalizer)): for species spanning orders of magnitude.
    Asinh,
    /// `ln(x_i + c_i)` per species ([`StateMap::Log`](crate::model::StateMap::Log)), `c_i` 1e-12 of
    /// the largest `|x_i|` ([`log_offsets`](crate::model::log_offsets); `state_quantile` is not
    /// used): for concentrations, and with `activation = "exp"` the mass-action (CRNN) model class.
    Log,
}

impl StateInput {
    /// The [`Normalizer`](crate::model::Normalizer)'s map for this input, `None` for linear inputs.
    pub fn map(self) -> Option<crate::model::StateMap> {
        match self {
            StateInput::Linear => None,
            StateInput::Asinh => Some(crate::model::StateMap::Asinh),
            StateInput::Log => Some(crate::model::StateMap::Log),
        }
    }
}

/// A per-component setting ([`ModelConfig::state_quantile`], `train.weight_floor`): one
/// number for every state component, or a list of them, one per component in state order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a number or a list of numbers, one per state component (model.state_quantile: in [0, 1]; train.weight_floor: > 0)"
)]
pub enum PerComponent {
    /// The same value for every component.
    All(f64),
    /// One value per component, in state order.
    Each(Vec<f64>),
}

/// [`ModelConfig::state_quantile`]: one quantile for every species, or one per species.
pub type StateQuantile = PerComponent;

impl PerComponent {
    /// The value of component `i`.
    pub fn of(&self, i: usize) -> f64 {
        match self {
            PerComponent::All(q) => *q,
            PerComponent::Each(q) => q[i],
        }
    }

    /// One value per state component (`dim`) when a list, and every value passing `ok`; the error
    /// names `field` and the allowed values (`allowed`, e.g. "a number in [0, 1]").
    pub fn check(&self, dim: usize, field: &str, ok: impl Fn(f64) -> bool, allowed: &str) -> Result<()> {
        let qs = match self {
            PerComponent::All(q) => std::slice::from_ref(q),
            PerComponent::Each(q) => {
                if q.len() != dim {
                    return Err(Error::invalid(
                        field,
                        format!("{q:?}"),
                        format!("{allowed} or a list of {dim} of them (one per state component)"),
                    ));
                }
                q.as_slice()
            }
        };
        // A list's bad entry is named by its index: `train.weight_floor[2]`.
        let at =
            |i: usize| if matches!(self, PerComponent::Each(_)) { format!("{field}[{i}]") } else { field.to_string() };
        match qs.iter().enumerate().find(|(_, q)| !ok(**q)) {
            Some((i, q)) => {
                Err(Error::invalid(at(i), q, format!("{allowed} (or a list of them, one per state component)")))
            }
            None => Ok(()),
        }
    }

    /// As a [`ModelConfig::state_quantile`]: every quantile in [0, 1], one per state component if a list.
    pub fn validate(&self, dim: usize) -> Result<()> {
        self.check(dim, "model.state_quantile", |q| (0.0..=1.0).contains(&q), "a number in [0, 1]")
    }
}

/// MLP shape (paper eqs. 9–12) and how inputs enter it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of hidden layers `L`.
    pub hidden: i64,
    /// Width `W` of each hidden layer.
    pub width: i64,
    /// `linear` (paper) or `log` stiffness input.
    pub eps_input: EpsInput,
    /// `linear` (paper), `asinh` or `log` state input.
    pub state_input: StateInput,
    /// Hidden activation: `silu` (paper) or `exp` (with `log` inputs and `hidden = 1`: a chemical
    /// reaction neural network, see [`crate::model`]).
    pub activation: Activation,
    /// Quantile of `|x_i|` that sets the scale `c_i` of the `asinh` state input: one number for every
    /// species, or one per species (`[0.05, 0.05, 0.5]`). A high quantile makes a species' input nearly
    /// linear (`c_i` on the scale of the species itself), a low one logarithmic over the decades it spans.
    pub state_quantile: StateQuantile,
    /// Project the learned RHS onto the system's linear invariants (`wᵀF = 0`, e.g. mass conservation):
    /// `F ← P F`, `J ← P J` with `P = I - W(WᵀW)⁻¹Wᵀ`, so that their zero eigenvalues are exact. No
    /// effect for systems without invariants.
    pub project_invariants: bool,
    /// With `project_invariants`: state indices (0-based) solved from the invariants, one per
    /// invariant (oblique projection, see `LearnedRhs::with_invariants` in `eval::spectral`);
    /// empty (default): orthogonal projection.
    pub eliminate: Vec<usize>,
    /// Start a mass-action network (CRNN) from a mechanism instead of random weights: `[model.init]
    /// file = "runs/id/mechanism.yaml"` (e.g. what `stiffx identify` wrote). Each reaction becomes a
    /// hidden unit holding it exactly (`crate::eval::reactions::network_from_mechanism`), units beyond
    /// the reactions start dead; training then refines it. The parsed mechanism is stored in the
    /// run's config and checkpoint. Needs `activation = "exp"`, `state_input = "log"`, `hidden = 1`,
    /// `width` ≥ its reactions, and `eps_input = "log"` when a reaction has an eps power.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitMechanism>,
    /// With [`init`](Self::init): keep the starting mechanism's reaction orders (default `true`), so
    /// that training refines the rate constants, eps powers and stoichiometry of a fixed set of rate
    /// laws, as kinetic parameter estimation does. Free orders drift by Adam's step size, and an
    /// order `ν = 1 ± δ` on a species near 0 scales its Jacobian entry by `c^{∓δ}` (`c` the log
    /// offset): on POLLU that took the eigenvalues within 5 % from 95 % of the points to 3–17 %
    /// (results/pollu/). `false`: the orders train too.
    pub keep_orders: bool,
}

/// [`ModelConfig::init`]: the mechanism a reaction network starts from, read from `file` and stored
/// parsed (as a `mechanism` system stores its own), so that a run's config and checkpoint keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "InitRaw")]
pub struct InitMechanism {
    /// The YAML file the mechanism came from.
    pub file: String,
    /// The parsed mechanism.
    pub mechanism: crate::plugins::mechanism::Mechanism,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitRaw {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    mechanism: Option<crate::plugins::mechanism::Mechanism>,
}

impl TryFrom<InitRaw> for InitMechanism {
    type Error = String;
    fn try_from(raw: InitRaw) -> std::result::Result<Self, String> {
        let m = crate::plugins::mechanism::MechanismSystem::from_stored(raw.file, raw.mechanism, "model.init")?;
        Ok(Self { file: m.file, mechanism: m.mechanism })
    }
}

impl ModelConfig {
    /// Whether the network is a mass-action reaction network (CRNN: `exp` activation and `log` state
    /// inputs): its reaction orders are kept `≥ 0` and its output layer has no bias
    /// ([`Weights::mass_action`](crate::model::Weights::mass_action)).
    pub fn mass_action(&self) -> bool {
        self.activation == Activation::Exp && self.state_input == StateInput::Log
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hidden: 4,
            width: 128,
            eps_input: EpsInput::Linear,
            state_input: StateInput::Linear,
            activation: Activation::Silu,
            state_quantile: PerComponent::All(0.05),
            project_invariants: true,
            eliminate: Vec::new(),
            init: None,
            keep_orders: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state_scales;

    /// `c_i` is the quantile of species `i`'s `|x_i|` (one quantile for all, or one per species), the
    /// eps column is ignored, and an all-zero column gets scale 1.
    #[test]
    fn state_scales_take_each_species_quantile() {
        // 5 rows of (x0, x1, x2, eps): x0 = 1…5, x1 = -10…-50, x2 = 0.
        let rows: Vec<f64> = (1..=5).flat_map(|k| [k as f64, -10.0 * k as f64, 0.0, 0.3]).collect();
        assert_eq!(state_scales(&rows, 4, 3, |_| 0.5), vec![3.0, 30.0, 1.0]);
        let per = PerComponent::Each(vec![0.0, 1.0, 0.5]);
        assert_eq!(state_scales(&rows, 4, 3, |i| per.of(i)), vec![1.0, 50.0, 1.0]);
        assert!(per.validate(3).is_ok());
        assert!(per.validate(2).unwrap_err().to_string().contains("model.state_quantile"));
        let bad = PerComponent::Each(vec![0.1, 1.5, 0.5]);
        assert!(bad.validate(3).unwrap_err().to_string().contains("1.5"));
    }
}
