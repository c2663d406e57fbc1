//! High-accuracy integration of the *exact* system with diffsol: reference trajectories (Alg. 2,
//! rollout references) and burst micro-integrations (Alg. 4).
//!
//! Many initial states of one stiffness value are integrated as **one** diffsol problem with
//! `nbatch` lanes (diffsol's vector batching: each lane is one state, the RHS closure is called per
//! lane, and the step-size controller uses the maximum over lanes of the per-lane RMS error norm
//! `sqrt(mean_i (e_i / (atol + rtol |y_i|))²)`, so every lane meets the tolerance on its own). The
//! method is Tsit5 (diffsol's `tsit45`), an explicit 5(4) pair: the systems are stiff, but the
//! horizons here are a few fast time scales (bursts) or need accuracy far below the stability limit
//! (references), where an explicit high-order method is the cheapest.
//!
//! Integrating backward in time (`t < 0`, the backward half of a burst) integrates `x' = -F(x)`
//! forward over `|t|`.

use diffsol::{NalgebraContext, NalgebraMat, OdeBuilder, OdeSolverMethod, OdeSolverStopReason, Vector};

use crate::error::{Error, Result};
use crate::plugins::system::StiffSystem;

type M = NalgebraMat<f64>;

fn solver_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Solver { context: context.to_string(), message: e.to_string() }
}

/// The error of a failed step: what was integrated (system and eps), to which time, where it stopped,
/// the state there of the lane that went furthest (non-finite, else the largest), its initial state,
/// and what to change.
#[allow(clippy::too_many_arguments)]
fn step_failure(
    what: &str,
    m: usize,
    d: usize,
    target: f64,
    at: f64,
    y: &[f64],
    x0: &[f64],
    method: Method,
    e: impl std::fmt::Display,
) -> Error {
    let size = |k: usize| {
        let lane = &y[k * d..(k + 1) * d];
        if lane.iter().all(|v| v.is_finite()) {
            lane.iter().map(|v| v.abs()).fold(0.0, f64::max)
        } else {
            f64::INFINITY
        }
    };
    let k = (0..m).max_by(|&a, &b| size(a).total_cmp(&size(b))).unwrap_or(0);
    let show = |v: &[f64]| v.iter().map(|x| format!("{x:.4e}")).collect::<Vec<_>>().join(", ");
    Error::Solver {
        context: format!(
            "{what}, integrating {m} lane(s) to t = {target}: stopped at t = {at:.6e}; lane {k} from [{}] was at [{}]",
            show(&x0[k * d..(k + 1) * d]),
            show(&y[k * d..(k + 1) * d])
        ),
        message: format!(
            "{e}. {}a state that grows without bound means the system's parameters or initial-state \
             ranges leave its domain; otherwise loosen rtol/atol or shorten the horizon",
            match method {
                Method::Tsit45 =>
                    "This was an explicit solver: a stiff system needs BDF (sampler.method or eval.reference_method = \"bdf\"); ",
                Method::Bdf => "",
            }
        ),
    }
}

/// Integrates every state of `x0` (`m × d`, row-major) over `[0, t]` (`t` may be negative) and returns
/// the final states (`m × d`).
pub fn flow_batch(system: &dyn StiffSystem, eps: f64, x0: &[f64], t: f64, rtol: f64, atol: f64) -> Result<Vec<f64>> {
    let out = solve_at(system, eps, x0, &[0.0, t.abs()], rtol, atol, t < 0.0)?;
    let d = system.dim();
    let m = x0.len() / d;
    let mut last = Vec::with_capacity(m * d);
    for lane in out.chunks(2 * d) {
        last.extend_from_slice(&lane[d..]);
    }
    Ok(last)
}

/// Integration method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Tsit5, explicit 5(4) (diffsol `tsit45`): cheapest when the step is set by accuracy.
    #[default]
    Tsit45,
    /// Variable-order BDF (diffsol `bdf`, LU solves with the Jacobian): for stiff horizons where an
    /// explicit method's step is set by stability.
    Bdf,
}

/// How output times are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spacing {
    /// `0, Δt, 2Δt, …, ⌊T/Δt⌋Δt` (the paper's).
    #[default]
    Linear,
    /// `0` followed by `points` geometrically spaced times from `t_first` to `T`: for systems whose
    /// dynamics span decades of time (Robertson over 1e-5…1e5).
    Log,
}

/// How many times [`output_times`] gives, computed without building them (saturating, for estimates
/// of configs not yet validated).
pub fn count_times(spacing: Spacing, dt: f64, horizon: f64, points: usize) -> usize {
    match spacing {
        Spacing::Linear => ((horizon / dt + 1e-9).floor().max(0.0) as usize).saturating_add(1),
        Spacing::Log => points.max(2).saturating_add(1),
    }
}

/// Output times of a trajectory: see [`Spacing`]. `dt` is used by `Linear`, `t_first` and `points` by
/// `Log` (`t_k = t_first · (T/t_first)^(k/(points-1))`, the last one exactly `T`).
pub fn output_times(spacing: Spacing, dt: f64, horizon: f64, t_first: f64, points: usize) -> Vec<f64> {
    match spacing {
        Spacing::Linear => {
            let n = (horizon / dt + 1e-9).floor() as usize;
            (0..=n).map(|i| i as f64 * dt).collect()
        }
        Spacing::Log => {
            let n = points.max(2);
            let ratio = (horizon / t_first).ln();
            std::iter::once(0.0)
                .chain(
                    (0..n).map(
                        |k| if k + 1 == n { horizon } else { t_first * (ratio * k as f64 / (n - 1) as f64).exp() },
                    ),
                )
                .collect()
        }
    }
}

/// The most output times one trajectory may have (`horizon / dt` or `points`): 10⁷ times a 20-species
/// state is 1.6 GB per trajectory, beyond any use, and the guard keeps a tiny `dt` from overflowing
/// the allocation of the time grid.
pub const MAX_TIMES: usize = 10_000_000;

/// Checks the time-grid fields of a config section (`prefix` names it, e.g. `sampler`), the number of
/// output times included (at most [`MAX_TIMES`]).
pub fn check_times(prefix: &str, spacing: Spacing, dt: f64, horizon: f64, t_first: f64, points: i64) -> Result<()> {
    let pos = |field: &str, v: f64| Error::positive(format!("{prefix}.{field}"), v);
    pos("horizon", horizon)?;
    // Both steps are checked whichever spacing uses them: a NaN is refused, not carried along unused.
    pos("dt", dt)?;
    pos("t_first", t_first)?;
    match spacing {
        Spacing::Linear => {
            if dt > horizon {
                return Err(Error::invalid(
                    format!("{prefix}.dt"),
                    dt,
                    format!("at most {prefix}.horizon ({horizon})"),
                ));
            }
            Error::at_most(
                format!("{prefix}.dt"),
                horizon / dt,
                MAX_TIMES as f64,
                &format!("output times over {prefix}.horizon"),
            )?;
        }
        Spacing::Log => {
            if t_first >= horizon {
                return Err(Error::invalid(
                    format!("{prefix}.t_first"),
                    t_first,
                    format!("less than {prefix}.horizon ({horizon})"),
                ));
            }
            if points < 2 {
                return Err(Error::invalid(format!("{prefix}.points"), points, "an integer >= 2"));
            }
            Error::at_most(format!("{prefix}.points"), points as f64, MAX_TIMES as f64, "output times")?;
        }
    }
    Ok(())
}

/// Integrates every state of `x0` (`m × d`) and samples it at the increasing, non-negative `times`
/// (the first may be 0). Returns `m × times.len() × d`, row-major (lane, time, component). With
/// `backward`, integrates `x' = -F(x)`. Explicit (Tsit5), see [`solve_at_with`] for BDF.
pub fn solve_at(
    system: &dyn StiffSystem,
    eps: f64,
    x0: &[f64],
    times: &[f64],
    rtol: f64,
    atol: f64,
    backward: bool,
) -> Result<Vec<f64>> {
    solve_at_with(system, eps, x0, times, rtol, atol, backward, Method::Tsit45)
}

/// [`solve_at`] with a choice of [`Method`]; BDF uses the system's exact Jacobian.
#[allow(clippy::too_many_arguments)]
pub fn solve_at_with(
    system: &dyn StiffSystem,
    eps: f64,
    x0: &[f64],
    times: &[f64],
    rtol: f64,
    atol: f64,
    backward: bool,
    method: Method,
) -> Result<Vec<f64>> {
    let sign = if backward { -1.0 } else { 1.0 };
    let d = system.dim();
    integrate_at(
        d,
        x0,
        times,
        rtol,
        atol,
        method,
        &format!("system `{}` at eps = {eps}", system.typetag_name()),
        |x, y| {
            system.rhs(x, eps, y);
            if backward {
                y.iter_mut().for_each(|v| *v *= sign);
            }
        },
        |x, v, y| {
            let j = system.jacobian(x, eps);
            for r in 0..d {
                y[r] = sign * (0..d).map(|c| j[(r, c)] * v[c]).sum::<f64>();
            }
        },
    )
}

/// The integrator behind [`solve_at_with`] for any right-hand side: `rhs(x, dx)` and the
/// Jacobian-vector product `jac_mul(x, v, Jv)` of one state (`d` values); `x0` holds `m` states, which
/// are integrated as `m` lanes of one diffsol problem. Returns `m × times.len() × d`. A stop signal
/// ([`crate::interrupt`]) ends it between two steps with [`Error::Interrupted`].
#[allow(clippy::too_many_arguments)]
pub fn integrate_at(
    d: usize,
    x0: &[f64],
    times: &[f64],
    rtol: f64,
    atol: f64,
    method: Method,
    what: &str,
    rhs: impl Fn(&[f64], &mut [f64]),
    jac_mul: impl Fn(&[f64], &[f64], &mut [f64]),
) -> Result<Vec<f64>> {
    let m = x0.len() / d.max(1);
    if m == 0 || times.is_empty() {
        return Ok(Vec::new());
    }
    let t_end = times[times.len() - 1];
    let h0 = if t_end > 0.0 { (t_end * 1e-3).min(1e-4) } else { 1e-6 };
    let mut problem = OdeBuilder::<M>::new()
        .context(NalgebraContext::with_nbatch(m))
        .rtol(rtol)
        .atol([atol])
        .h0(h0)
        .p(x0.iter().copied())
        .rhs_implicit(
            move |x: &[f64], _p: &[f64], _t: f64, y: &mut [f64]| rhs(x, y),
            move |x: &[f64], _p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| jac_mul(x, v, y),
        )
        .init(|p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(p), d)
        .build()
        .map_err(|e| solver_err("building the problem", e))?;
    // diffsol counts Newton failures over the *whole* solve (default limit 50), not per step: a long
    // integration through many fast transients (OREGO's relaxation oscillations, each jump a few
    // failed Newton solves that BDF recovers from by cutting the step) would abort although every
    // step ends up meeting the tolerance. The per-step safeguards (consecutive error-test failures,
    // minimum step) still stop a solve that is really stuck.
    problem.ode_options.max_nonlinear_solver_failures = usize::MAX / 2;
    let nt = times.len();
    let mut out = vec![0.0; m * nt * d];
    // The same sampling loop for both solver types.
    macro_rules! drive {
        ($solver:expr) => {{
            let mut solver = $solver;
            let mut write = |ti: usize, y: &[f64]| {
                for lane in 0..m {
                    let dst = (lane * nt + ti) * d;
                    out[dst..dst + d].copy_from_slice(&y[lane * d..(lane + 1) * d]);
                }
            };
            let mut current = 0.0;
            for (ti, &t) in times.iter().enumerate() {
                if t <= current {
                    if ti == 0 || t == current {
                        let y = solver.state().y.clone_as_vec();
                        write(ti, &y);
                        continue;
                    }
                    return Err(Error::invalid("times", t, "an increasing sequence of times >= 0"));
                }
                solver.set_stop_time(t).map_err(|e| solver_err("setting the stop time", e))?;
                loop {
                    // A stop signal ends a long integration between two steps.
                    crate::interrupt::check(|| format!("while integrating {what} (to t = {t})"))?;
                    match solver.step() {
                        Ok(OdeSolverStopReason::TstopReached) => break,
                        Ok(_) => continue,
                        Err(e) => {
                            let st = solver.state();
                            return Err(step_failure(what, m, d, t, st.t, &st.y.clone_as_vec(), x0, method, e));
                        }
                    }
                }
                current = t;
                let y = solver.state().y.clone_as_vec();
                write(ti, &y);
            }
        }};
    }
    match method {
        Method::Tsit45 => drive!(problem.tsit45().map_err(|e| solver_err("creating tsit45", e))?),
        Method::Bdf => drive!(problem.bdf::<diffsol::NalgebraLU<f64>>().map_err(|e| solver_err("creating bdf", e))?),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x' = x² from x = 1 blows up at t = 1: the error says where it stopped, from which state, the
    /// state reached, and what to change.
    #[test]
    fn a_failed_solve_names_the_time_the_state_and_a_remedy() {
        let rhs = |x: &[f64], y: &mut [f64]| y[0] = x[0] * x[0];
        let jac = |x: &[f64], v: &[f64], y: &mut [f64]| y[0] = 2.0 * x[0] * v[0];
        let err =
            integrate_at(1, &[0.5, 1.0], &[0.0, 2.0], 1e-8, 1e-10, Method::Bdf, "system `blowup` at eps = 1", rhs, jac)
                .unwrap_err()
                .to_string();
        for needle in
            ["system `blowup` at eps = 1", "to t = 2", "lane 1 from [1.0000e0]", "stopped at t = 9.99", "domain"]
        {
            assert!(err.contains(needle), "`{needle}` in {err}");
        }
    }
}
