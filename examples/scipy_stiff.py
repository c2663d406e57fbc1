"""A learned stiff operator in SciPy's stiff solvers, with the learned Jacobian.

Trains (or loads) a Davis–Skodje and a Robertson model with stiffx, integrates each with
``scipy.integrate.solve_ivp(method="BDF" or "Radau", jac=model.jacobian)``, and prints, per system:

- SciPy against stiffx's own BDF rollout of the same learned model (the two solvers on one ODE);
- the learned trajectory against the true one;
- SciPy with the learned Jacobian against SciPy with its finite-difference Jacobian: RHS evaluations,
  Jacobian evaluations and wall time (median of interleaved repetitions).

    python examples/scipy_stiff.py                                # trains two small models first
    python examples/scipy_stiff.py --ds runs/ds --rob runs/rob    # existing checkpoints
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

import stiffx

REPO = Path(__file__).resolve().parents[1]


def solve(model, x0, eps, times, method, rtol, atol, jac=True):
    t0 = time.perf_counter()
    sol = solve_ivp(
        lambda t, x: model.rhs(x, eps),
        (times[0], times[-1]),
        x0,
        method=method,
        t_eval=times,
        rtol=rtol,
        atol=atol,
        jac=(lambda t, x: model.jacobian(x, eps)) if jac else None,
    )
    return sol, time.perf_counter() - t0


def range_error(a, b):
    """Largest error per species relative to the species' range along ``b``."""
    return float(np.max(np.abs(a - b) / (np.ptp(b, axis=0) + 1e-300)))


def report(name, model, eps, times, rtol, atol, repeats=5):
    print(f"\n## {name} (eps = {eps}, rtol = {rtol})\n")
    print("| x0 | method | SciPy vs stiffx BDF | learned vs true | nfev (jac) | nfev (FD) | njev | time jac / FD |")
    print("|---|---|---|---|---|---|---|---|")
    for x0 in model.test_initial_states:
        ours = model.rollout(x0, eps, times, rtol=rtol, atol=float(np.min(atol)))
        true = model.reference(x0, eps, times)
        for method in ["BDF", "Radau"]:
            sol, _ = solve(model, x0, eps, times, method, rtol, atol)
            fd, _ = solve(model, x0, eps, times, method, rtol, atol, jac=False)
            tj, tf = [], []
            for _ in range(repeats):
                tj.append(solve(model, x0, eps, times, method, rtol, atol)[1])
                tf.append(solve(model, x0, eps, times, method, rtol, atol, jac=False)[1])
            print(
                f"| {np.array2string(np.asarray(x0), precision=3)} | {method} | {range_error(sol.y.T, ours):.2e} "
                f"| {range_error(sol.y.T, true):.2e} | {sol.nfev} | {fd.nfev} | {sol.njev} "
                f"| {np.median(tj) * 1e3:.1f} ms / {np.median(tf) * 1e3:.1f} ms |"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ds", type=Path, help="a Davis–Skodje checkpoint (default: train configs/tiny.toml)")
    p.add_argument("--rob", type=Path, help="a Robertson checkpoint (default: configs/tiny_robertson.toml, 60 epochs)")
    p.add_argument("--out", type=Path, default=REPO / "runs/scipy_example")
    a = p.parse_args()
    ds = stiffx.load(a.ds) if a.ds else stiffx.run(REPO / "configs/tiny.toml", out=a.out / "ds").model()
    if a.rob:
        rob = stiffx.load(a.rob)
    else:
        cfg = (REPO / "configs/tiny_robertson.toml").read_text().replace("epochs = 3", "epochs = 60")
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "rob.toml").write_text(cfg)
        rob = stiffx.run(a.out / "rob.toml", out=a.out / "rob").model()
    report("Davis–Skodje", ds, 0.05, np.linspace(0.0, 1.0, 21), 1e-6, 1e-10)
    report("Robertson", rob, 1.0, np.concatenate([[0.0], np.logspace(-5, 3, 17)]), 1e-6, [1e-10, 1e-16, 1e-10])


if __name__ == "__main__":
    main()
