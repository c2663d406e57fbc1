//! `stiffx jobs`, `stiffx run-job` and `stiffx collect`: the experiment engine's verbs
//! ([`crate::engine`]).

use std::io::Write;

use clap::ValueEnum;

use crate::cli::together;
use crate::cli::{CollectArgs, JobsArgs, RunJobArgs, run_options};
use crate::engine::pipeline::RunOptions;
use crate::engine::spec::run_indices;
use crate::engine::{Spec, parse_indices};
use crate::error::{Error, Result};
use crate::table::Table;

/// The estimated size of a job: expected samples × epochs, `None` when the sampler cannot say.
fn cost(job: &crate::engine::Job) -> Option<(usize, usize)> {
    if job.task != crate::engine::job::Task::Train {
        return None;
    }
    let cfg = &job.config;
    let n = cfg.sampler.expected_len(cfg.system.train_grid().len())?;
    let epochs = cfg.train.epochs.max(0) as usize + cfg.train.lbfgs_rounds() * 10;
    Some((n, n * epochs))
}

/// `stiffx jobs`: the list (index, id, status, estimated cost), its count, or an sbatch array.
pub fn jobs(a: &JobsArgs) -> Result<()> {
    let spec = Spec::load(&a.spec, a.out.as_deref())?;
    let results = spec.results()?;
    let mut stdout = std::io::stdout().lock();
    let io = |e: std::io::Error| Error::io("<stdout>", e);
    if a.count {
        writeln!(stdout, "{}", results.len()).map_err(io)?;
        return Ok(());
    }
    if a.slurm {
        crate::cli::device_options(&a.device)?;
        let largest = results
            .iter()
            .filter_map(|(j, _)| cost(j).map(|c| (c.1, j.id.clone())))
            .max()
            .map_or("size unknown".to_string(), |(c, id)| format!("{id}, ~{c:.1e} sample-epochs", c = c as f64));
        let exe = std::env::current_exe().map_err(|e| Error::io("<current executable>", e))?;
        let name = |v: Option<clap::builder::PossibleValue>| v.map(|v| v.get_name().to_string()).unwrap_or_default();
        let args = vec![
            "--backend".to_string(),
            name(a.device.backend.to_possible_value()),
            "--jacobian".to_string(),
            name(a.device.jacobian.to_possible_value()),
            "--precision".to_string(),
            name(a.device.precision.to_possible_value()),
        ];
        let script = crate::engine::slurm::sbatch(&spec.path, &spec.out, results.len(), &exe, &args, &largest);
        write!(stdout, "{script}").map_err(io)?;
        return Ok(());
    }
    let done = results.iter().filter(|(_, m)| m.is_some()).count();
    writeln!(
        stdout,
        "{} jobs of {} in {} ({} done, {} to run)",
        results.len(),
        spec.path.display(),
        spec.out.display(),
        done,
        results.len() - done
    )
    .map_err(io)?;
    let mut table = Table::new(["index", "id", "status", "samples", "sample-epochs"]).left_aligned(&[1, 2]);
    let mut total = 0usize;
    for (j, m) in &results {
        let (n, c) = cost(j).map_or(("?".to_string(), "?".to_string()), |(n, c)| {
            total += c;
            (n.to_string(), format!("{:.2e}", c as f64))
        });
        let status = if m.is_some() { "done" } else { "missing" };
        table.row([j.index.to_string(), j.id.clone(), status.to_string(), n, c]);
    }
    write!(stdout, "{}", table.console()).map_err(io)?;
    writeln!(
        stdout,
        "total ~{:.2e} sample-epochs (about {:.0} s at 60k samples/s, the flex backend on 2 cores)",
        total as f64,
        total as f64 / 6e4
    )
    .map_err(io)?;
    Ok(())
}

/// `stiffx run-job`: runs the selected jobs one after the other in this process.
pub fn run_job(a: &RunJobArgs) -> Result<()> {
    let opts = RunOptions { together: together(a.together)?, ..run_options(&a.compute)? };
    let spec = Spec::load(&a.spec, a.out.as_deref())?;
    let jobs = spec.jobs()?;
    let idx = parse_indices(&a.index, jobs.len())?;
    let metrics = run_indices(&jobs, &idx, &spec.out, &opts)?;
    for (i, m) in idx.iter().zip(&metrics) {
        let g = &m.evaluation().grid_mean;
        println!("job {i} {}: fast rel {:.3e} (grid mean), rollout L2 {:.3e}", jobs[*i].id, g.fast_rel, g.rollout_l2);
    }
    Ok(())
}

/// `stiffx collect`: the spec's tables, figures and report; the missing jobs if some have not finished.
pub fn collect(a: &CollectArgs) -> Result<()> {
    let opts = run_options(&a.compute)?;
    let spec = Spec::load(&a.spec, a.out.as_deref())?;
    let md = spec.collect(&spec.results()?, &opts)?;
    print!("{md}");
    println!("results in {}", spec.out.display());
    Ok(())
}
