//! The experiment engine: every multi-run experiment is a **spec** that expands to one list of
//! **jobs**, and three verbs work on that list.
//!
//! ```text
//! spec (sweep file | compare spec)  ──expand──▶  [job 0, job 1, …, job N-1]
//!   stiffx jobs SPEC            list: index, stable id, status, estimated cost (--slurm: an sbatch array)
//!   stiffx run-job SPEC --index I | A-B | I,J,…     run some jobs in one worker (a SLURM array task)
//!   stiffx collect SPEC         tables, figures and report from the finished jobs (exit 3 if some are missing)
//!   stiffx sweep / compare      expand, run every job here, collect
//! ```
//!
//! A job is a resolved [`Config`](crate::config::Config) (seed included) and the directory its results go
//! to, `<out>/<id>`; the id is stable (it names the directory) and the index is the job's place in
//! the spec's own order, so that `--index $SLURM_ARRAY_TASK_ID` means the same job on every node.
//!
//! Workers never share a file they write: a job works in a hidden sibling directory and renames it
//! into place when it has finished ([`rundir`]: resumable, all or nothing), with a marker ([`rundir::DONE`]) that records the SHA-256 of the
//! resolved config; a job counts as done only when the marker is there and its hash matches, so a
//! requeued task redoes a half-written job from scratch and skips a finished one. Datasets are cached
//! on disk by their data key ([`cache`]): workers that share a dataset generate it once, under a
//! file lock, and the others read it back (bit for bit: floats are written round-trip exact).

pub mod cache;
pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod evalspec;
pub mod job;
pub mod local;
pub mod observe;
pub mod outcome;
pub mod pipeline;
pub mod prepare;
pub mod report;
pub mod rundir;
pub mod slurm;
pub mod spec;
pub mod sweep;
pub mod together;

pub use job::{Job, parse_indices};
pub use spec::Spec;
