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
use crate::system::StiffSystem;

type M = NalgebraMat<f64>;

fn solver_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Solver { context: context.to_string(), message: e.to_string() }
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

/// Integrates every state of `x0` (`m × d`) and samples it at the increasing, non-negative `times`
/// (the first may be 0). Returns `m × times.len() × d`, row-major (lane, time, component). With
/// `backward`, integrates `x' = -F(x)`.
pub fn solve_at(
    system: &dyn StiffSystem,
    eps: f64,
    x0: &[f64],
    times: &[f64],
    rtol: f64,
    atol: f64,
    backward: bool,
) -> Result<Vec<f64>> {
    let d = system.dim();
    let m = x0.len() / d;
    if m == 0 || times.is_empty() {
        return Ok(Vec::new());
    }
    let sign = if backward { -1.0 } else { 1.0 };
    let t_end = times[times.len() - 1];
    let h0 = if t_end > 0.0 { (t_end * 1e-3).min(1e-4) } else { 1e-6 };
    let problem = OdeBuilder::<M>::new()
        .context(NalgebraContext::with_nbatch(m))
        .rtol(rtol)
        .atol([atol])
        .h0(h0)
        .p(x0.iter().copied())
        .rhs(move |x: &[f64], _p: &[f64], _t: f64, y: &mut [f64]| {
            system.rhs(x, eps, y);
            if backward {
                for v in y.iter_mut() {
                    *v *= sign;
                }
            }
        })
        .init(|p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(p), d)
        .build()
        .map_err(|e| solver_err("building the reference problem", e))?;
    let mut solver = problem.tsit45().map_err(|e| solver_err("creating tsit45", e))?;
    // out[lane][time][k]
    let nt = times.len();
    let mut out = vec![0.0; m * nt * d];
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
            match solver
                .step()
                .map_err(|e| solver_err(&format!("integrating {} lanes at eps = {eps} to t = {t}", m), e))?
            {
                OdeSolverStopReason::TstopReached => break,
                _ => continue,
            }
        }
        current = t;
        let y = solver.state().y.clone_as_vec();
        write(ti, &y);
    }
    Ok(out)
}
