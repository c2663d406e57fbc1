//! The network `F_θ(x, eps)` (paper eqs. 9–12): inputs standardised by training statistics,
//! `L` hidden layers of width `W` with SiLU, a linear output layer.
//!
//! ```text
//! h_0 = ((x - μ_x)/σ_x, (eps - μ_ε)/σ_ε),   h_{l+1} = σ(W_l h_l + b_l),   a = W_L h_L + b_L
//! ```
//!
//! The activation `σ` is SiLU (the paper) or `exp` ([`Activation`]). With `exp`, logarithmic state and
//! stiffness inputs (`model.state_input = "log"`, `model.eps_input = "log"`) and one hidden layer, the
//! network is a *chemical reaction neural network* (CRNN, Ji & Deng 2021): hidden unit `j` is a
//! mass-action rate and the output layer its stoichiometry,
//!
//! ```text
//! r_j = exp(b_j + Σ_i ν_ij ln x_i + β_j ln eps) = k_j eps^β_j Π_i x_i^ν_ij,    F_k = Σ_j S_kj r_j + b_k
//! ```
//!
//! (`ν_ij = W_ij/σ_i` after the standardisation), a model class that contains every mass-action
//! mechanism (Robertson's, with `width ≥ 3`) exactly.
//!
//! The canonical, backend-independent form of a trained network is [`Weights`] (host `f64`, which holds
//! an f32-trained network exactly and an f64-trained one without rounding it): it is what checkpoints
//! store, what initialisation produces (from the run's seed, so that every backend and precision starts
//! from the same network), and what [`Mlp::from_weights`] loads onto any device and precision.
//!
//! One file per part, every item re-exported here (`crate::model::X`): [`normalizer`] (the input
//! standardisation and state input maps), [`weights`] (the host form [`Weights`], its layers and
//! activation, and the reactions of a mass-action network), [`store`] (the weights as a safetensors
//! file), [`mlp`] (the burn module [`Mlp`] and
//! the host ↔ tensor helpers), [`stacked`] (`M` networks of one shape as one module, for training and
//! evaluating them together), `linear` (a dense layer `X W + b` as one operation on the flex backend,
//! its products written without flex's zeroing and copy) and `silu` (SiLU fused into one pass on
//! the flex backend).

pub mod config;
#[cfg(feature = "flex")]
pub mod linear;
pub mod mlp;
pub mod normalizer;
#[cfg(feature = "flex")]
pub mod silu;
pub mod stacked;
pub mod store;
pub mod weights;

pub use mlp::{Mlp, tensor2, tensor2_as, to_f64};
pub use normalizer::{LOG_OFFSET, Normalizer, StateMap, log_offsets, state_scales};
pub use stacked::{StackedLinear, StackedMlp};
pub use weights::{Activation, LayerWeights, Reaction, Weights};
