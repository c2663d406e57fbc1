//! Stiff systems defined by a reaction-mechanism file, no code: `[system] type = "mechanism"`,
//! `file = "mechanisms/pollu.yaml"`.
//!
//! The file (a Cantera YAML subset plus a `stiffx:` section, see [`parse`](mod@parse)) gives species, irreversible
//! mass-action reactions with rate constants and per-reaction powers of `eps`; [`system`] turns it into
//! `x' = S · r(x, eps)` with its analytic Jacobian and its conservation laws. Shipped mechanisms:
//! `mechanisms/robertson.yaml` (the default, identical to the `robertson` system),
//! `mechanisms/pollu.yaml` and `mechanisms/hires.yaml` (the Test Set for IVP Solvers problems).

mod check;
pub mod parse;
pub mod system;
pub mod units;
pub mod write;

pub use parse::{Mechanism, Reaction, Term, parse};
pub use system::MechanismSystem;

/// The mechanism behind a system when it is a `mechanism` system (`None` for compiled-in systems):
/// the truth that learned or identified mechanisms are matched against.
pub fn mechanism_of(system: &dyn crate::plugins::system::StiffSystem) -> Option<Mechanism> {
    let v = serde_json::to_value(system).ok()?;
    if v.get("type").and_then(|t| t.as_str()) != Some("mechanism") {
        return None;
    }
    serde_json::from_value::<Mechanism>(v.get("mechanism")?.clone()).ok()
}

/// The mechanism files in `dir` (`mechanisms/` for `stiffx list`), sorted by path: each file's path
/// and a one-line summary (its `description:`, species and reaction counts), or why it does not parse.
pub fn shipped(dir: &std::path::Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let path = p.display().to_string();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let description = text
                .lines()
                .find_map(|l| l.strip_prefix("description:"))
                .map(|d| d.trim().to_string())
                .unwrap_or_default();
            let summary = match parse(&text, &path) {
                Ok(m) => format!("{description} [{} species, {} reactions]", m.species.len(), m.reactions.len()),
                Err(e) => format!("does not parse: {e}"),
            };
            (path, summary)
        })
        .collect()
}
