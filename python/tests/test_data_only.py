"""A network learned by ``stiffx run`` from a file of SciPy trajectories and nothing else (no ``[system]``:
the file is the system), then checked against the true mechanism (issue 21): ``stiffx identify --data``
finds the mechanism in the file, a reaction network starts from it and trains on finite-difference labels,
the run rolls out held-out trajectories, and ``stiffx eval --system mechanisms/robertson.yaml`` finds the
fast eigenvalue within 1 % at every point and every nonzero eigenvalue within 5 % at 95 % of them (the
file's 121 log-spaced times per trajectory bound the finite-difference labels: measured 1.2e-3 and 97.6 %)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import REPO, cli
from test_npz import robertson_rows

pytest.importorskip("scipy.integrate")

# Starts whose total mass differs (with one total, y1 = total − y2 − y3 on every state and the
# mass-action monomials are not independent: nothing could be identified).
STARTS = [(1.0, 0.0, 0.0), (0.8, 0.0, 0.5), (0.6, 0.0, 0.1), (0.4, 0.0, 0.7)]


def write(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(float(v)) if not isinstance(v, str) else v) for k, v in r.items()})


def crnn_config(tmp_path: Path) -> str:
    """A reaction network on `tmp_path`'s `train.csv`, started from `id/mechanism.yaml`, no `[system]`."""
    return f"""
seed = 2
[sampler]
type = "data"
path = "{tmp_path / 'train.csv'}"
[labeller]
type = "finite-difference"
order = 4
[transform]
type = "identity"
[model]
hidden = 1
width = 3
activation = "exp"
eps_input = "log"
state_input = "log"
[model.init]
file = "{tmp_path / 'id' / 'mechanism.yaml'}"
[train]
precision = "f64"
epochs = 20
weighting = "relative"
weight_floor = [0.01, 0.01, 0.003]
lr = 1e-5
lr_final = 1e-7
[eval]
data = "{tmp_path / 'held.csv'}"
horizon = 1e3
spacing = "log"
t_first = 1e-5
points = 40
integrator = "bdf"
rollout_atol = 1e-14
reference_method = "bdf"
reference_rtol = 1e-10
reference_atol = 1e-18
reference_eps = 1.0
"""


def test_a_network_from_trajectories_alone_has_the_true_eigenvalues(tmp_path: Path) -> None:
    rows = robertson_rows(starts=STARTS)
    held = {r["trajectory"] for r in rows if r["trajectory"].endswith("-3")}
    write([r for r in rows if r["trajectory"] not in held], tmp_path / "train.csv")
    write([r for r in rows if r["trajectory"] in held], tmp_path / "held.csv")
    cli("identify", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "id"))
    config = crnn_config(tmp_path)
    (tmp_path / "c.toml").write_text(config)
    checked = cli("run", "--config", str(tmp_path / "c.toml"), "--check", "--out", str(tmp_path / "unused")).stdout
    assert "eps 0.5, 1, 2; conservation laws: y1 + y2 + y3 = const" in checked, checked
    out = tmp_path / "run"
    cli("run", "--config", str(tmp_path / "c.toml"), "--quiet", "--no-figures", "--out", str(out))
    resolved = (out / "config.toml").read_text()
    assert 'type = "data"' in resolved and "find_invariants = true" in resolved, resolved
    metrics = json.loads((out / "metrics.json").read_text())
    assert "eval" not in metrics and metrics["data"]["trajectories"] == 3, metrics
    # Held-out starts outside the training ones (more y3): 1.0e-2 … 1.6e-2 of the range at t = 1e3.
    assert 0 < metrics["data"]["rollout_max_rel"] < 5e-2, metrics["data"]
    assert not (out / "per_eps.csv").exists()
    # Against the truth, named only now.
    ck = str(out / "checkpoint.json")
    truth = str(REPO / "mechanisms/robertson.yaml")
    cli("eval", "--checkpoint", ck, "--system", truth, "--eps", "0.5,1,2", "--out", str(tmp_path / "truth"))
    with open(tmp_path / "truth" / "per_eps.csv") as f:
        per_eps = list(csv.DictReader(f))
    assert [float(r["eps"]) for r in per_eps] == [0.5, 1.0, 2.0]
    for r in per_eps:
        assert float(r["fast_rel_max"]) < 1e-2 and float(r["all_within"]) >= 0.95, r
    # Without a truth, the checkpoint is evaluated on trajectories only.
    refused = cli("eval", "--checkpoint", ck, check=False)
    assert refused.returncode == 2 and "--data" in refused.stderr, refused.stderr
    # The true mechanism as the exact side of `inspect`: the three rate laws are recovered.
    shown = cli("inspect", "--checkpoint", ck, "--eps", "1", "--state", "0.9,3e-5,0.1", "--truth", truth).stdout
    assert "true reactions recovered" in shown and ": 3 of 3" in shown, shown


def test_the_python_api_learns_from_a_dict_with_no_system(tmp_path: Path) -> None:
    """`stiffx.run` with a dict config (JSON inside) completes the data system like a TOML file does."""
    tomllib = pytest.importorskip("tomllib")
    import stiffx

    rows = robertson_rows(starts=STARTS)
    write([r for r in rows if not r["trajectory"].endswith("-3")], tmp_path / "train.csv")
    write([r for r in rows if r["trajectory"].endswith("-3")], tmp_path / "held.csv")
    cli("identify", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "id"))
    config = tomllib.loads(crnn_config(tmp_path))
    assert "system" not in config
    result = stiffx.run(config, out=tmp_path / "run", progress=False)
    assert result.metrics["data"]["trajectories"] == 3 and "eval" not in result.metrics
    assert result.per_eps == {}
    assert 'type = "data"' in (tmp_path / "run" / "config.toml").read_text()
    # A data system has no right-hand side to give.
    with pytest.raises(stiffx.StiffxError, match="right-hand side"):
        stiffx.system({"type": "data", "file": str(tmp_path / "train.csv")})
