//! # stiffx
//!
//! Learn the right-hand side `F(x, eps)` of a stiff ODE system with a neural network **and check that
//! the learned operator has the right eigenstructure** — the method of Valorani, *Learning Stiff
//! Dynamical Operators* (asinh target scaling, fuzzy-cloud off-manifold sampling, autograd Jacobian
//! diagnostics).
//!
//! The crate is a framework of four object-safe plugin traits, each implementation registered with
//! [`inventory`] and serialisable in configs with `typetag`:
//!
//! | trait | built-ins | role |
//! |---|---|---|
//! | [`plugins::system::StiffSystem`] | `davis-skodje` (in `systems/`) | the exact ODE, its grids and reference spectrum |
//! | [`plugins::sampler::Sampler`] | `trajectory`, `cloud` | states of the dataset (Alg. 2, 3) |
//! | [`plugins::labeller::Labeller`] | `direct`, `burst`, `finite-difference` | regression targets (eqs. 14, 15, Alg. 4) |
//! | [`plugins::transform::TargetTransform`] | `identity`, `asinh` | target scaling (eq. 28) |
//!
//! One loop ([`engine::pipeline::run`]) drives sample → label → transform → train → evaluate as typed
//! stages handed to observers ([`engine::observe`]); plugins never call each other. Only [`model`],
//! [`train`] and [`eval::spectral`] touch burn tensors; the backend is a run-time [`backend::Backend`]
//! choice, compiled in by cargo features. Multi-run experiments are specs expanded to job lists
//! ([`engine`]: `stiffx jobs`, `run-job`, `collect`, SLURM arrays). Folders: `plugins/` (the traits and
//! the registry), `model/`, `train/`, `eval/`, `engine/`, `commands/`, `figures/`; [`stats`] is the leaf
//! of order statistics.
#![warn(missing_docs)]

pub use inventory;

pub mod backend;
pub mod cli;
pub mod commands;

pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod figures;
pub mod identify;
pub mod interrupt;
pub mod io;
pub mod model;
pub mod ode;
pub mod plugin_keys;
pub mod plugins;
pub mod resources;
pub mod stats;
pub mod table;
pub mod train;

/// Built-in systems: every file of the top-level `systems/` folder is a module here.
#[path = "../systems/mod.rs"]
pub mod systems;

pub use error::{Error, Result};
