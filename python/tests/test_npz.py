"""Trajectory data written by NumPy (``numpy.savez`` / ``savez_compressed``) reach the CLI exactly as the
same data in a CSV file: ``stiffx identify --data`` finds the same mechanism and spectrum from either, with
string or integer trajectory ids; a NaN is named by row and array."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, cli

scipy_integrate = pytest.importorskip("scipy.integrate")


def robertson_rows(per_eps: int = 3, starts: list[tuple[float, float, float]] | None = None) -> list[dict]:
    """Robertson trajectories by SciPy's Radau (a solver outside stiffx), eps 0.5, 1, 2 × `per_eps`
    starts `(1 − 0.2k, 0, 0.2k)` (one total mass), or × the given `starts`."""
    starts = starts or [(1.0 - 0.2 * k, 0.0, 0.2 * k) for k in range(per_eps)]
    def rhs(_t, y, eps):
        y1, y2, y3 = y
        return [-0.04 * y1 + 1e4 / eps * y2 * y3, 0.04 * y1 - 1e4 / eps * y2 * y3 - 3e7 / eps * y2**2, 3e7 / eps * y2**2]

    times = np.concatenate([[0.0], np.logspace(-5, 3, 120)])
    rows = []
    for eps in (0.5, 1.0, 2.0):
        for k, y0 in enumerate(starts):
            sol = scipy_integrate.solve_ivp(rhs, (0, times[-1]), y0, method="Radau", t_eval=times, args=(eps,), rtol=1e-10, atol=1e-14)
            for j, t in enumerate(sol.t):
                rows.append({"trajectory": f"e{eps}-{k}", "t": t, "eps": eps, "y1": sol.y[0, j], "y2": sol.y[1, j], "y3": sol.y[2, j]})
    return rows


def identify(path: Path, out: Path) -> tuple[str, str]:
    cli("identify", "--data", str(path), "--out", str(out))
    mech = (out / "mechanism.yaml").read_text()
    body = "\n".join(l for l in mech.splitlines() if str(path) not in l)
    return body, (out / "spectrum.csv").read_text()


def test_npz_written_by_numpy_identifies_like_the_csv(tmp_path: Path) -> None:
    rows = robertson_rows()
    with open(tmp_path / "rob.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(float(v)) if not isinstance(v, str) else v) for k, v in r.items()})
    arrays = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    np.savez_compressed(tmp_path / "rob_str.npz", **arrays)
    ids = {tid: i for i, tid in enumerate(dict.fromkeys(arrays["trajectory"]))}
    np.savez(tmp_path / "rob_int.npz", **{**arrays, "trajectory": np.array([ids[t] for t in arrays["trajectory"]], dtype=np.int32)})
    want = identify(tmp_path / "rob.csv", tmp_path / "csv")
    assert "reactions:" in want[0]
    assert identify(tmp_path / "rob_str.npz", tmp_path / "str") == want
    assert identify(tmp_path / "rob_int.npz", tmp_path / "int") == want
    bad = dict(arrays)
    bad["y2"] = bad["y2"].copy()
    bad["y2"][7] = np.nan
    np.savez(tmp_path / "bad.npz", **bad)
    r = cli("identify", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "bad"), check=False)
    assert r.returncode == 2, r.stderr
    assert "row 7 of array `y2`: `NaN` is not a finite number" in r.stderr, r.stderr
