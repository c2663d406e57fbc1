//! Running a whole spec in this process: `stiffx sweep` and `stiffx compare` are expand, run every job
//! here ([`Spec::run_all`]), collect.

use std::path::Path;

use super::compare::{CompareRow, CompareSpec, tables as compare_tables};
use super::spec::{Kind, Spec, train_runs};
use super::sweep::{Row, tables as sweep_tables};
use crate::config::Config;
use crate::engine::pipeline::RunOptions;
use crate::error::{Error, Result};

/// Runs (or resumes) a sweep with the experiment engine and writes its tables (into `out`, or the
/// sweep file's `out`). Returns the rows.
pub fn sweep(path: &Path, backend_opts: &RunOptions, out: Option<&Path>) -> Result<Vec<Row>> {
    let spec = Spec::load(path, out)?;
    let Kind::Sweep(sc) = &spec.kind else {
        return Err(Error::invalid("kind", "compare", "a sweep file (use `stiffx compare --spec` for a compare spec)"));
    };
    let done = train_runs(&spec.run_all(backend_opts)?);
    sweep_tables(sc, &spec.out, done, backend_opts).map(|(rows, _)| rows)
}

/// Runs (or resumes) the comparison into `out` with the experiment engine and writes its table and
/// figure. Returns the rows and the Markdown table.
pub fn compare(
    bases: &[Config],
    spec: &CompareSpec,
    out: &Path,
    opts: &RunOptions,
) -> Result<(Vec<CompareRow>, String)> {
    let spec_run = Spec {
        path: out.join("compare_spec.toml"),
        out: out.to_path_buf(),
        kind: Kind::Compare { bases: bases.to_vec(), spec: spec.clone() },
    };
    let done = train_runs(&spec_run.run_all(opts)?);
    compare_tables(bases, spec, out, done, opts)
}
