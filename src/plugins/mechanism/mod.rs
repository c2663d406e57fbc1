//! Stiff systems defined by a reaction-mechanism file, no code: `[system] type = "mechanism"`,
//! `file = "mechanisms/pollu.yaml"`.
//!
//! The file (a Cantera YAML subset plus a `stiffx:` section, see [`parse`](mod@parse)) gives species, irreversible
//! mass-action reactions with rate constants and per-reaction powers of `eps`; [`system`] turns it into
//! `x' = S · r(x, eps)` with its analytic Jacobian and its conservation laws. Shipped mechanisms:
//! `mechanisms/robertson.yaml` (the default, identical to the `robertson` system),
//! `mechanisms/pollu.yaml` and `mechanisms/hires.yaml` (the Test Set for IVP Solvers problems).

pub mod parse;
pub mod system;

pub use parse::{Mechanism, Reaction, Term, parse};
pub use system::MechanismSystem;
