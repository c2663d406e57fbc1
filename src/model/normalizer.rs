//! Input standardisation ([`Normalizer`]) and the per-species state input maps ([`StateMap`]:
//! `asinh`, `log`) with their scales ([`state_scales`], [`log_offsets`]).

use serde::{Deserialize, Serialize};

/// Input standardisation `(v - mean) / std` per input column (states then eps), after an optional
/// per-species input map `φ_i` ([`StateMap`]) with scales `c_i`: `asinh(x_i / c_i)`
/// (`model.state_input = "asinh"`) or `ln(x_i + c_i)` (`"log"`). Its slope `φ_i'` enters the Jacobian's
/// chain rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column standard deviations (1 where a column is constant).
    pub std: Vec<f64>,
    /// Scales `c_i` of the state input map; empty: the state enters linearly (paper eq. 9).
    #[serde(default)]
    pub state_scale: Vec<f64>,
    /// Which map the scales belong to (checkpoints written before `log` existed: `asinh`).
    #[serde(default)]
    pub state_map: StateMap,
}

/// The per-species state input map `φ_i` of a [`Normalizer`] with scales `c_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateMap {
    /// `φ(x) = asinh(x/c)`, `φ' = 1/sqrt(c² + x²)`: linear for `|x| ≪ c`, logarithmic above, so that a
    /// species spanning decades (Robertson's `y2` from 1e-10 to 4e-5) is resolved at every scale, and
    /// smooth through 0 (unlike `ln`), so cloud perturbations may cross it.
    #[default]
    Asinh,
    /// `φ(x) = ln(max(x, 0) + c)`, `φ' = 1/(x + c)` for `x ≥ 0` and 0 below (a negative concentration,
    /// a solver's round-off, counts as none; a continuation with slope `1/c` would map `x = -1e-10` to
    /// `-1e6` for `c = 1e-16`). For concentrations: with an
    /// `exp` activation, `exp(ν ln(x + c)) = (x + c)^ν` is a mass-action factor, exact as `c → 0`, and
    /// unlike `asinh` its slope at `x = 0` gives a first-order rate the exact derivative `∂(x + c)/∂x = 1`.
    Log,
}

impl StateMap {
    /// `φ(x)` with scale `c`.
    pub fn apply(self, x: f64, c: f64) -> f64 {
        match self {
            StateMap::Asinh => (x / c).asinh(),
            StateMap::Log => (x.max(0.0) + c).ln(),
        }
    }

    /// Replaces the states in `rows` (`n × cols`, states first) by `φ_i(x_i)` with scales `scale`
    /// (nothing when `scale` is empty: linear inputs).
    pub fn map_rows(self, scale: &[f64], rows: &mut [f64], cols: usize) {
        if scale.is_empty() {
            return;
        }
        for r in rows.chunks_mut(cols) {
            for (v, c) in r.iter_mut().zip(scale) {
                *v = self.apply(*v, *c);
            }
        }
    }

    /// `φ'(x)` with scale `c`.
    pub fn slope(self, x: f64, c: f64) -> f64 {
        match self {
            StateMap::Asinh => 1.0 / c.hypot(x),
            StateMap::Log if x >= 0.0 => 1.0 / (x + c),
            StateMap::Log => 0.0,
        }
    }
}

/// Scales of the `asinh` state input map: `c_i` = the `q(i)`-quantile of `|x_i|` over `rows` (`n × cols`,
/// states first), floored at 1e-12 of the largest `|x_i|` (1 for a column that is all zero). A low
/// quantile puts the linear-to-logarithmic crossover below most of the data, so the map is
/// logarithmic over the decades the species actually spans.
pub fn state_scales(rows: &[f64], cols: usize, d: usize, q: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..d)
        .map(|i| {
            let v: Vec<f64> = rows.iter().skip(i).step_by(cols).map(|x| x.abs()).collect();
            let max = v.iter().copied().fold(0.0, f64::max);
            if max == 0.0 {
                return 1.0;
            }
            crate::stats::quantile(v, q(i)).unwrap_or(max).max(1e-12 * max)
        })
        .collect()
}

/// Offsets `c_i` of the `log` state input: `LOG_OFFSET` × the largest `|x_i|` over `rows` (`n × cols`,
/// states first; 1 for a column that is all zero): far below any value a species takes while it
/// matters, so that `ln(x + c)` is `ln x` to within `c/x`, and a mass-action rate built on it is exact.
pub fn log_offsets(rows: &[f64], cols: usize, d: usize) -> Vec<f64> {
    (0..d)
        .map(|i| {
            let max = rows.iter().skip(i).step_by(cols).fold(0.0f64, |m, x| m.max(x.abs()));
            if max == 0.0 { 1.0 } else { LOG_OFFSET * max }
        })
        .collect()
}

/// Relative offset of the `log` state input ([`log_offsets`]).
pub const LOG_OFFSET: f64 = 1e-12;

impl Normalizer {
    /// Replaces the states in `rows` (`n × cols`, states first) by their input features `φ_i(x_i)`
    /// (nothing for linear inputs, `state_scale` empty).
    pub fn map_states(&self, rows: &mut [f64], cols: usize) {
        self.state_map.map_rows(&self.state_scale, rows, cols);
    }

    /// `dφ_i/dx_i` at `x` (one state): 1 for linear inputs.
    pub fn state_slopes(&self, x: &[f64]) -> Vec<f64> {
        if self.state_scale.is_empty() {
            return vec![1.0; x.len()];
        }
        x.iter().zip(&self.state_scale).map(|(v, c)| self.state_map.slope(*v, *c)).collect()
    }

    /// Fits mean and standard deviation of each column of `rows` (`n × cols`, row-major).
    pub fn fit(rows: &[f64], cols: usize) -> Self {
        let n = (rows.len() / cols).max(1) as f64;
        let mut mean = vec![0.0; cols];
        for r in rows.chunks(cols) {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / n;
            }
        }
        let mut var = vec![0.0; cols];
        for r in rows.chunks(cols) {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let std = var.into_iter().map(|v| if v > 0.0 { v.sqrt() } else { 1.0 }).collect();
        Self { mean, std, state_scale: Vec::new(), state_map: StateMap::Asinh }
    }

    /// Standardises `rows` into network inputs.
    pub fn apply(&self, rows: &[f64]) -> Vec<f64> {
        let c = self.mean.len();
        rows.iter().enumerate().map(|(i, v)| (v - self.mean[i % c]) / self.std[i % c]).collect()
    }
}
