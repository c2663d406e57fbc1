//! `stiffx run`: one run of the pipeline from a config (and command-line overrides), and the summary
//! it prints.

use crate::cli::{RunArgs, run_config};
use crate::engine::pipeline::{RunMetrics, run as run_pipeline};
use crate::error::Result;

use super::{print_eval_table, time_label};

fn print_summary(m: &RunMetrics) {
    println!(
        "best val loss {:.3e} (epoch {}), {:.0} samples/s on {}{}",
        m.best_val_loss,
        m.best_epoch,
        m.train_samples_per_sec,
        m.backend,
        if m.train_precision.is_f32() { "" } else { " (f64 training)" }
    );
    print_eval_table(&m.eval.per_eps);
    let r = &m.eval.reference;
    println!(
        "at eps = {}: rollout {:.3e}, fast {:.3e}, slow {:.3e}, fast rel {:.3e}",
        r.eps, r.rollout_l2, r.fast_abs, r.slow_abs, r.fast_rel
    );
    let g = &m.eval.grid_mean;
    println!(
        "grid mean: rollout {:.3e}, fast {:.3e}, slow {:.3e}, fast rel {:.3e} (largest eps mean {:.3e})",
        g.rollout_l2, g.fast_abs, g.slow_abs, g.fast_rel, g.fast_rel_worst_eps_mean
    );
    if let Some(p) = &g.pointwise {
        println!(
            "pointwise over {} points: fast rel p50 {:.3e}, p95 {:.3e}, p99 {:.3e}, max {:.3e}; all eigenvalues p99 {:.3e}, max {:.3e}",
            p.points, p.fast_rel.p50, p.fast_rel.p95, p.fast_rel.p99, p.fast_rel.max, p.all_rel.p99, p.all_rel.max
        );
        if let Some(w) = &p.worst_point {
            println!("worst point: {}", w.describe());
        }
    }
    if !m.windows.is_empty() {
        println!("every nonzero eigenvalue within 5 %, per decade of t (all eps):");
        // The last row of `pool_windows` is the one over all points.
        for (i, w) in m.windows.iter().enumerate() {
            let what = if i + 1 == m.windows.len() {
                "all points".to_string()
            } else {
                format!("t {}…{}", time_label(w.t_from), time_label(w.t_to))
            };
            println!("  {what:>14}: {:>5.1} %  ({} points)", 100.0 * w.all_within, w.points);
        }
    }
}

/// `stiffx run`.
pub fn run(a: &RunArgs) -> Result<()> {
    let (cfg, opts) = run_config(a)?;
    let m = run_pipeline(&cfg, &opts)?;
    print_summary(&m);
    if let Some(o) = &opts.out {
        println!("results in {}", o.display());
    }
    Ok(())
}
