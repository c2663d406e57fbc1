//! The spectral evaluation: the learned Jacobian and its eigenvalues ([`spectral`]), the metrics that
//! compare them and the rollouts with the exact ones ([`metrics`]), the evaluation of a checkpoint over
//! eps grids ([`evaluate`]) and its traces ([`traces`]), several networks of one shape at once, and their deep ensemble ([`stacked`]), the data diagnostics of the paper's Figs. 2–5 ([`diagnostics`]), and a
//! trained reaction network as a mechanism file matched against the true one ([`reactions`]), and
//! rollouts and ensemble spread on held-out trajectories of a data file ([`holdout`]).

pub mod diagnostics;
pub mod evaluate;
pub mod holdout;
pub mod metrics;
pub mod reactions;
pub mod spectral;
pub mod stacked;
pub mod traces;
