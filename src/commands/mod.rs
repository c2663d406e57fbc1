//! The subcommands behind the CLI, one module per command: [`run`], [`eval`], [`bench`](mod@bench),
//! [`sweep`] (with `compare` and `diagnose`), [`inspect`], [`export`], [`identify`](mod@identify) (and [`identify_data`] for `--data`) and [`jobs`] (with `run-job` and `collect`).
//! Each returns a typed error; `main` maps it to the exit code. Here: the tables that `run` and `eval`
//! both print.

pub mod bench;
pub mod eval;
pub mod eval_data;
pub mod export;
pub mod identify;
pub mod identify_data;
pub mod inspect;
pub mod jobs;
pub mod run;
pub mod sweep;

/// The per-eps table `stiffx run` and `stiffx eval` print.
fn print_eval_table(per_eps: &[crate::eval::metrics::EpsMetrics]) {
    // The period column only for systems whose test trajectories oscillate over the horizon.
    let oscillating = per_eps.iter().any(|e| e.period_rel.is_some());
    println!(
        "{:>8} {:>11} {:>11} {:>11} {:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10} {:>9}{}",
        "eps",
        "rollout L2",
        "rollout rel",
        "|dl_fast|",
        "|dl_slow|",
        "fast rel",
        "fast p99",
        "fast max",
        "slow max",
        "all max",
        "complex",
        "angle deg",
        "all ≤ 5 %",
        if oscillating { format!(" {:>12}", "period rel") } else { String::new() }
    );
    for e in per_eps {
        println!(
            "{:>8} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>8.3} {:>10.3} {:>9.3}{}",
            e.eps,
            e.rollout_l2,
            e.rollout_rel,
            e.fast_abs,
            e.slow_abs,
            e.fast_rel,
            e.fast_rel_p99,
            e.fast_rel_max,
            e.slow_rel_max,
            e.all_rel_max,
            e.complex_fraction,
            e.fast_angle_deg,
            e.all_within,
            match (oscillating, e.period_rel) {
                (false, _) => String::new(),
                (true, Some(p)) => format!(" {p:>12.3e}"),
                (true, None) => format!(" {:>12}", "—"),
            }
        );
    }
}

/// A window edge as people write it: `0`, `0.01` … `1000`, else `1e-4`, `1e5`.
fn time_label(t: f64) -> String {
    if t == 0.0 || (1e-2..=1e3).contains(&t) { format!("{t}") } else { format!("{t:e}") }
}
