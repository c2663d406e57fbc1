//! `stiffx eval --data FILE.csv`: checkpoints evaluated on held-out trajectories instead of the
//! system's test states ([`crate::eval::holdout`]): each checkpoint's rollouts of the file's
//! trajectories (`data_rollouts.csv`, per checkpoint with several), and over all the checkpoints their
//! eigenvalue spread at the data's states beside the exact error of their mean against the
//! checkpoint's system (`data_spectrum.csv`; the spread is 0 with one checkpoint; no error for a
//! `data` system's checkpoint, which has no reference).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::backend::Precision;
use crate::engine::checkpoint::Checkpoint;
use crate::error::Result;
use crate::eval::evaluate::learned_rhs;
use crate::eval::holdout::{SpectrumRow, learned_rollouts, read_holdout, spectrum_rows};
use crate::eval::spectral::JacobianMode;
use crate::eval::stacked::Ensemble;
use crate::io::write_csv;

/// Evaluates `cks` (read from `paths`) on the trajectories of `data` into `out`.
pub fn eval_data(
    data: &Path,
    paths: &[PathBuf],
    cks: &[Checkpoint],
    out: &Path,
    device: &Device,
    precision: Precision,
    mode: JacobianMode,
) -> Result<()> {
    let cfg = &cks[0].config;
    let sys = cfg.system.as_ref();
    let names = sys.state_names();
    let file = read_holdout(data, &names, &sys.train_grid())?;
    let tol = (cfg.eval.rollout_rtol, cfg.eval.rollout_atol);
    let fields = cks.iter().map(|ck| learned_rhs(ck, device, precision)).collect::<Result<Vec<_>>>()?;
    for (i, (field, path)) in fields.iter().zip(paths).enumerate() {
        let rows = learned_rollouts(field, &names, &file, data, tol);
        crate::interrupt::check(|| format!("rolling out {}; its rollouts are not written", path.display()))?;
        let dir = if cks.len() == 1 { out.to_path_buf() } else { out.join(format!("checkpoint{}", i + 1)) };
        write_csv(&dir.join("data_rollouts.csv"), &rows)?;
        super::identify::print_rollouts(&path.display().to_string(), data, &rows, "the learned Jacobian");
    }
    let ens = Ensemble::new(fields)?;
    let spectrum = spectrum_rows(&ens, sys, &file, mode);
    write_csv(&out.join("data_spectrum.csv"), &spectrum)?;
    println!(
        "eigenvalues at the data's states: spread over {} checkpoint(s){}",
        cks.len(),
        if sys.has_reference() {
            " against the error of their mean (exact: the checkpoint's system)"
        } else {
            " (no reference: the checkpoint's system is a data file; `--system` names a true one)"
        }
    );
    print_spectrum(&spectrum);
    println!("results in {} (data_rollouts.csv, data_spectrum.csv)", out.display());
    Ok(())
}

/// Prints `data_spectrum.csv`'s rows: per eps, the learned time scales, the spread and the error.
pub(super) fn print_spectrum(rows: &[SpectrumRow]) {
    println!(
        "{:>10} {:>7} {:>10} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11} {:>8}",
        "eps",
        "points",
        "|λ| fast",
        "|λ| slow",
        "ratio max",
        "spread p95",
        "spread max",
        "error p50",
        "error p95",
        "error max",
        "covered"
    );
    for r in rows {
        println!(
            "{:>10} {:>7} {:>10.3e} {:>10.3e} {:>10.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>8.3}",
            r.eps,
            r.points,
            r.fast_p50,
            r.slow_p50,
            r.stiffness_ratio_max,
            r.spread_p95,
            r.spread_max,
            r.error_p50,
            r.error_p95,
            r.error_max,
            r.covered
        );
    }
}
