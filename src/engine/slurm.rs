//! A ready `sbatch` script for a spec: one SLURM array task per job.
//!
//! ```bash
//! stiffx jobs configs/table1.toml --slurm > table1.sbatch
//! sbatch table1.sbatch                       # array 0..N-1, each `stiffx run-job … --index $SLURM_ARRAY_TASK_ID`
//! stiffx collect configs/table1.toml         # when every task has finished
//! ```
//!
//! The script names the spec, the output directory and the stiffx binary by absolute path (so it can
//! be submitted from any folder; `STIFFX=…` overrides the binary), asks for `--requeue` (a requeued task
//! redoes its unfinished job cleanly, see [`super::job`]), and writes each task's log to
//! `slurm-stiffx-<array id>_<task>.out` in the submission folder. `--time` and `--mem` are starting
//! points to edit for a cluster's limits.

use std::path::Path;

/// The sbatch script for `n` jobs of the spec at `spec` with outputs in `out`, each task running
/// `exe run-job <spec> --out <out> --index $SLURM_ARRAY_TASK_ID <args>`.
pub fn sbatch(spec: &Path, out: &Path, n: usize, exe: &Path, args: &[String], largest_job: &str) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let stem = spec.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "spec".into());
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let extra: String = args.iter().map(|a| format!(" {}", quote(a))).collect();
    format!(
        "#!/bin/bash
# stiffx job array for {spec}: {n} jobs, one array task each (largest job: {largest_job}).
# Submit with `sbatch {stem}.sbatch`; when every task has finished:
#   {exe} collect {spec} --out {out}
# or chain it: sbatch --dependency=afterok:<array job id> --wrap \"{exe} collect {spec} --out {out}\"
#SBATCH --job-name=stiffx-{stem}
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=slurm-stiffx-%A_%a.out
set -euo pipefail
STIFFX=\"${{STIFFX:-{exe}}}\"
exec \"$STIFFX\" run-job {qspec} --out {qout} --index \"$SLURM_ARRAY_TASK_ID\" --quiet{extra}
",
        spec = abs(spec),
        out = abs(out),
        exe = abs(exe),
        qspec = quote(&abs(spec)),
        qout = quote(&abs(out)),
        last = n.saturating_sub(1),
    )
}
