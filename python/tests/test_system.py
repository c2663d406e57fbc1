"""Systems defined in Python: trained, evaluated and reloaded like built-in ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stiffx
from conftest import REPO
from pysystems import Broken, DavisSkodje, FailsAt, WrongShape

HERE = Path(__file__).resolve().parent


def tiny(epochs: int = 30) -> dict:
    """``configs/tiny.toml`` as a dict, without its ``[system]`` (the Python one replaces it)."""
    return {
        "seed": 1,
        "sampler": {"type": "cloud", "k": 2, "base": {"type": "trajectory", "per_eps": 2, "horizon": 2.0, "dt": 0.05}},
        "labeller": {"type": "direct"},
        "transform": {"type": "asinh"},
        "model": {"hidden": 2, "width": 16},
        "train": {"epochs": epochs, "batch": 64, "lr": 3e-3},
        "eval": {"horizon": 1.0},
    }


@pytest.fixture(scope="module")
def py_run(tmp_path_factory):
    DavisSkodje.calls.update(rhs=0, jacobian=0, states=0)
    out = tmp_path_factory.mktemp("py") / "run"
    return stiffx.run(tiny(), out=out, system=DavisSkodje(), progress=False)


def test_python_system_trains_and_labels_in_batches(py_run):
    m = py_run.metrics
    assert np.isfinite(m["best_val_loss"])
    assert np.all(np.isfinite(py_run.per_eps["fast_rel"]))
    # Labelling is batched: far fewer calls than states for the direct labels (1024 per call), while
    # the solvers call one state at a time.
    n = m["n_train"] + m["n_val"]
    assert DavisSkodje.calls["states"] >= n
    config = json.loads((py_run.out / "checkpoint.json").read_text())["config"]
    assert config["system"]["type"] == "python"
    assert config["system"]["module"] == "pysystems" and config["system"]["name"] == "DavisSkodje"
    assert len(config["system"]["source_sha256"]) == 64


def test_python_system_learns_like_the_builtin(py_run, tmp_path):
    # The same experiment on the built-in Davis–Skodje: the data differ (NumPy draws the initial
    # states), the quality must not.
    rust = stiffx.run(REPO / "configs/tiny.toml", out=tmp_path / "rust", progress=False)
    a, b = py_run.metrics["eval"]["grid_mean"], rust.metrics["eval"]["grid_mean"]
    assert a["fast_rel"] < 3 * b["fast_rel"] + 0.05, (a, b)
    model = py_run.model()
    x = model.test_initial_states
    assert np.allclose(model.exact_rhs(x, 0.1), stiffx.load(rust.out).exact_rhs(x, 0.1), rtol=1e-15, atol=0)


def test_runs_on_a_python_system_reproduce(py_run, tmp_path):
    again = stiffx.run(tiny(), out=tmp_path / "again", system=DavisSkodje(), progress=False)
    assert (tmp_path / "again/checkpoint.safetensors").read_bytes() == (py_run.out / "checkpoint.safetensors").read_bytes()
    assert again.metrics["eval"]["per_eps"] == py_run.metrics["eval"]["per_eps"]


def run_fresh(code: str) -> subprocess.CompletedProcess:
    """Runs Python code in a fresh interpreter with the tests' folder importable."""
    return subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True)


def test_checkpoint_reloads_in_a_fresh_process(py_run):
    code = f"import stiffx; m = stiffx.load({str(py_run.out)!r}); print(m.rhs([1.0, 0.5], 0.1).tolist())"
    res = run_fresh(code)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == py_run.model().rhs([1.0, 0.5], 0.1).tolist()


def test_missing_or_changed_system_is_named(py_run, tmp_path):
    text = (py_run.out / "checkpoint.json").read_text()
    meta = json.loads(text)
    # The module is gone.
    meta["config"]["system"]["module"] = "no_such_module_xyz"
    (tmp_path / "a").mkdir()
    (tmp_path / "a/checkpoint.json").write_text(json.dumps(meta))
    (tmp_path / "a/checkpoint.safetensors").write_bytes((py_run.out / "checkpoint.safetensors").read_bytes())
    res = run_fresh(f"import stiffx; stiffx.load({str(tmp_path / 'a')!r})")
    assert res.returncode != 0 and "cannot import module `no_such_module_xyz`" in res.stderr, res.stderr
    # The class changed since the checkpoint was written.
    meta["config"]["system"]["module"] = "pysystems"
    meta["config"]["system"]["source_sha256"] = "0" * 64
    (tmp_path / "a/checkpoint.json").write_text(json.dumps(meta))
    res = run_fresh(f"import stiffx; stiffx.load({str(tmp_path / 'a')!r})")
    assert res.returncode != 0 and "has changed since this was written" in res.stderr, res.stderr
    # The CLI cannot load it and says why.
    from conftest import cli

    res = cli("inspect", "--checkpoint", str(py_run.out), "--eps", "0.1", "--state", "1,0.5", check=False)
    assert res.returncode == 2 and "python" in res.stderr, res.stderr


def test_exceptions_in_the_system_reach_the_caller(tmp_path):
    with pytest.raises(ZeroDivisionError, match="broken on purpose"):
        stiffx.run(tiny(2), out=tmp_path / "b", system=Broken(), progress=False)
    with pytest.raises(stiffx.StiffxError, match=r"WrongShape`\.rhs: returned"):
        stiffx.run(tiny(2), out=tmp_path / "w", system=WrongShape(), progress=False)


def test_a_python_exception_stops_the_run_at_once(tmp_path):
    # Raised during labelling (call 2 of the batched labels) and during evaluation (after training):
    # either way no further Python call is made, the exception reaches the caller, and the run
    # directory holds no metrics.
    for fail_at, name in [(2, "labels"), (None, "eval")]:
        if fail_at is None:
            probe = FailsAt(10**9)
            stiffx.run(tiny(2), out=tmp_path / "probe", system=probe, progress=False)
            fail_at = probe.n - 3  # a call made after training, during the rollouts of the evaluation
        sys = FailsAt(fail_at)
        with pytest.raises(RuntimeError, match=f"failed at call {fail_at}"):
            stiffx.run(tiny(2), out=tmp_path / name, system=sys, progress=False)
        assert sys.after == 0, (name, sys.after)
        assert not (tmp_path / name / "metrics.json").exists(), name
    # A progress callback that raises at epoch 2 of 30: no epoch after it is reported.
    seen = []

    def callback(stage, done, total, info):
        seen.append((stage, done))
        if stage == "train" and done == 2:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        stiffx.run(tiny(30), out=tmp_path / "cb", system=DavisSkodje(), progress=callback)
    assert seen[-1] == ("train", 2) and not (tmp_path / "cb" / "metrics.json").exists(), seen


def test_missing_attributes_are_named(tmp_path):
    class NoGrid:
        dim = 2
        test_initial_states = [[1.0, 0.5]]
        initial_ranges = [(0.5, 2.5), (0.0, 1.0)]

        def rhs(self, x, eps):
            return -x

    with pytest.raises(stiffx.StiffxError, match="has no attribute `train_grid`"):
        stiffx.run(tiny(2), out=tmp_path / "n", system=NoGrid(), progress=False)


def test_sobol_placement_needs_initial_ranges(tmp_path):
    """``placement = "sobol"`` spreads a Python system's initial states over its ``initial_ranges``;
    a system that only draws them (``sample_initial``) is refused, naming the field."""

    class Ranged:
        dim = 2
        state_names = ["y", "z"]
        train_grid = [0.1, 0.2]
        unseen_grid = [0.15]
        test_initial_states = [[1.0, 0.5 + 0.5]]
        initial_ranges = [(0.5, 2.5), (0.75, 1.5)]

        def rhs(self, x, eps):
            y, z = x[:, 0], x[:, 1]
            return np.stack([-y, -(z - y / (1 + y)) / eps], axis=1)

    cfg = tiny(1)
    cfg["sampler"]["base"]["placement"] = "sobol"
    stiffx.run(cfg, out=tmp_path / "ranged", system=Ranged(), progress=False)
    assert (tmp_path / "ranged" / "metrics.json").exists()
    with pytest.raises(stiffx.StiffxError, match=r"sampler\.base\.placement"):
        stiffx.run(cfg, out=tmp_path / "drawn", system=DavisSkodje(), progress=False)
    assert not (tmp_path / "drawn" / "metrics.json").exists()


def test_union_sampler_from_a_dict(tmp_path):
    # Long and short trajectories together (`union`, src/plugins/union.rs) around a Python system: every
    # part's states are in the data, and a bad part is named by its index.
    cfg = tiny(epochs=2)
    parts = [
        {"type": "trajectory", "per_eps": 2, "horizon": 2.0, "dt": 0.05},
        {"type": "trajectory", "per_eps": 4, "horizon": 0.2, "dt": 0.05},
    ]
    cfg["sampler"] = {"type": "cloud", "k": 2, "base": {"type": "union", "parts": parts}}
    run = stiffx.run(cfg, out=tmp_path / "union", system=DavisSkodje(), progress=False)
    n = run.metrics["n_train"] + run.metrics["n_val"]
    per_eps = 2 * 41 + 4 * 5  # points of the long and the short trajectories
    assert n == 3 * per_eps * len(DavisSkodje.train_grid), n  # each with K = 2 cloud copies
    parts[1]["per_eps"] = 0
    with pytest.raises(stiffx.StiffxError, match=r"sampler\.base\.parts\[1\]\.per_eps"):
        stiffx.run(cfg, out=tmp_path / "bad", system=DavisSkodje(), progress=False)
