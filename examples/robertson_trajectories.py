"""Robertson trajectories from SciPy, written as a stiffx data file (the input of ``[sampler] type =
"data"``): an independent solver (``scipy.integrate.solve_ivp``, Radau, with a hand-written RHS and
Jacobian; nothing from stiffx), so that a run on this file learns from data alone.

    python examples/robertson_trajectories.py --out runs/robertson.csv [--per-eps 24] [--seed 1]

The file has the columns ``trajectory,t,eps,y1,y2,y3``: ``per_eps`` trajectories at each eps of
``mechanisms/robertson.yaml``'s training grid (k2 = 3e7/eps, k3 = 1e4/eps), initial states drawn as the
mechanism draws them (y1 ~ U[0.2, 1], y2 = 0, y3 ~ U[0, 0.8]), output at t = 0 and ``points``
log-spaced times from ``t_first`` to ``horizon``. Values are written with 17 significant digits (round
trip exact).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

TRAIN_EPS = [0.25, 0.5, 1.0, 2.0, 4.0]


def robertson(eps: float):
    """The RHS and Jacobian of Robertson's reaction at stiffness ``eps``."""
    k1, k2, k3 = 0.04, 3e7 / eps, 1e4 / eps

    def f(_t, y):
        r1, r2, r3 = k1 * y[0], k2 * y[1] ** 2, k3 * y[1] * y[2]
        return [-r1 + r3, r1 - r2 - r3, r2]

    def jac(_t, y):
        return [
            [-k1, k3 * y[2], k3 * y[1]],
            [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
            [0.0, 2 * k2 * y[1], 0.0],
        ]

    return f, jac


def trajectories(per_eps: int, seed: int, t_first: float, horizon: float, points: int, rtol: float, atol: float):
    """Yields ``(id, eps, times, states)`` for every trajectory."""
    rng = np.random.default_rng(seed)
    times = np.concatenate([[0.0], np.geomspace(t_first, horizon, points)])
    for eps in TRAIN_EPS:
        f, jac = robertson(eps)
        for k in range(per_eps):
            y0 = [rng.uniform(0.2, 1.0), 0.0, rng.uniform(0.0, 0.8)]
            sol = solve_ivp(f, (0.0, horizon), y0, method="Radau", jac=jac, t_eval=times, rtol=rtol, atol=atol)
            if not sol.success:
                raise RuntimeError(f"eps = {eps}, trajectory {k}: {sol.message}")
            yield f"eps{eps}-{k}", eps, sol.t, sol.y.T


def write(path: Path, rows) -> int:
    """Writes the trajectories to ``path``; returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trajectory", "t", "eps", "y1", "y2", "y3"])
        for tid, eps, t, y in rows:
            for ti, yi in zip(t, y):
                w.writerow([tid, repr(float(ti)), repr(eps), *(repr(float(v)) for v in yi)])
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-eps", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--t-first", type=float, default=1e-6)
    ap.add_argument("--horizon", type=float, default=1e6)
    ap.add_argument("--points", type=int, default=264)
    ap.add_argument("--rtol", type=float, default=1e-10)
    ap.add_argument("--atol", type=float, default=1e-16)
    a = ap.parse_args()
    n = write(a.out, trajectories(a.per_eps, a.seed, a.t_first, a.horizon, a.points, a.rtol, a.atol))
    print(f"wrote {n} rows ({a.per_eps} trajectories at each of {len(TRAIN_EPS)} eps) to {a.out}")


if __name__ == "__main__":
    main()
