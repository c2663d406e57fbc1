//! The four plugin traits and their built-ins, and the registry that finds them by name.
//!
//! | trait | built-ins | role |
//! |---|---|---|
//! | [`system::StiffSystem`] | in `systems/`, `mechanism`, `data` | the exact ODE `x' = F(x, eps)`, its grids and reference spectrum (none for a [`data_system`]: a trajectory file) |
//! | [`sampler::Sampler`] | `trajectory`, `cloud`, `data`, `union` | states of the dataset (Alg. 2, 3; trajectories from a CSV or NPZ file, [`data`] via [`columns`]; several samplers' states together, [`union`]) |
//! | [`labeller::Labeller`] | `direct`, `burst`, `finite-difference` | regression targets (eqs. 14, 15, Alg. 4) |
//! | [`transform::TargetTransform`] | `identity`, `asinh` | target scaling `G = T(F)` (eq. 28) |
//!
//! Plugins work in f64 on the CPU, never call each other, and are registered with
//! `register!` ([`registry`]); the built-in transforms, samplers and labellers are
//! registered in [`builtins`].

pub mod builtins;
pub mod cloud;
pub mod columns;
pub mod data;
pub mod data_system;
pub mod labeller;
pub mod mechanism;
pub mod registry;
pub mod sampler;
pub mod system;
pub mod transform;
pub mod union;
