"""``stiffx.load`` / ``Model``: the same numbers as the CLI's ``inspect``, shapes, metadata, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stiffx
from conftest import REPO, cli


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-wise relative difference ‖a − b‖/‖b‖."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("which", ["ds_run", "rob_run"])
def test_rhs_and_jacobian_equal_cli_inspect(which, request, tmp_path):
    run = request.getfixturevalue(which)
    model = stiffx.load(run.out)
    states = model.test_initial_states
    eps = float(model.train_grid[0])
    args = ["inspect", "--checkpoint", str(run.out / "checkpoint.json"), "--eps", repr(eps), "--out", str(tmp_path / "i.json")]
    for s in states:
        args += ["--state", ",".join(repr(float(v)) for v in s)]
    cli(*args)
    ref = json.loads((tmp_path / "i.json").read_text())
    f, j, ev = model.rhs(states, eps), model.jacobian(states, eps), model.eigenvalues(states, eps)
    assert f.shape == (len(states), model.dim) and j.shape == (len(states), model.dim, model.dim)
    for p, r in enumerate(ref):
        assert rel(f[p], np.asarray(r["rhs_learned"])) <= 1e-12
        assert rel(j[p].ravel(), np.asarray(r["jacobian_learned"])) <= 1e-12
        lam = np.asarray([complex(a, b) for a, b in r["eigenvalues_learned"]])
        assert rel(ev[p], lam) <= 1e-12
        # The exact operator of the checkpoint's system, too.
        assert rel(model.exact_rhs(states[p], eps), np.asarray(r["rhs_exact"])) <= 1e-12
        assert rel(model.exact_jacobian(states[p], eps).ravel(), np.asarray(r["jacobian_exact"])) <= 1e-12


def test_shapes_single_state_and_per_point_eps(ds_run):
    m = ds_run.model()
    x = np.array([[1.0, 0.6], [2.0, 0.8]])
    f = m.rhs(x, [0.05, 0.2])
    assert np.array_equal(f[0], m.rhs(x[0], 0.05)) and np.array_equal(f[1], m.rhs(x[1], 0.2))
    assert m.jacobian(x[0], 0.1).shape == (2, 2)
    jr, jf = m.jacobian(x, 0.1, mode="reverse"), m.jacobian(x, 0.1, mode="forward")
    assert rel(jr, jf) < 1e-10
    assert m.eigenvalues(x, 0.1).dtype == np.complex128
    assert m.state_names == ["y", "z"] and m.dim == 2
    assert m.metadata["format"] == "stiffx-checkpoint-2" and m.metadata["system"] == "davis-skodje"
    assert m.config["model"]["width"] == 16


def test_old_format_checkpoints_still_load():
    # A format-1 checkpoint committed with the results of an earlier round.
    old = REPO / "results/robertson_crnn/checkpoint.json"
    if not old.exists():
        pytest.skip("no committed format-1 checkpoint")
    m = stiffx.load(old)
    assert m.metadata["format"] == "stiffx-checkpoint-1"
    assert np.all(np.isfinite(m.rhs(m.test_initial_states, 1.0)))


def test_bad_inputs_raise_stiffx_error(ds_run, tmp_path):
    m = ds_run.model()
    with pytest.raises(stiffx.StiffxError, match=r"expected \(2,\) or \(n, 2\)"):
        m.rhs(np.zeros((3, 3)), 0.1)
    with pytest.raises(stiffx.StiffxError, match="eps"):
        m.rhs(np.zeros((1, 2)), -1.0)
    with pytest.raises(stiffx.StiffxError, match="forward"):
        m.jacobian(np.zeros((1, 2)), 0.1, mode="sideways")
    with pytest.raises(stiffx.StiffxError, match="cannot load checkpoint"):
        stiffx.load(tmp_path / "nope.json")
    # A weights file that is not the one the metadata names.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "checkpoint.json").write_text((ds_run.out / "checkpoint.json").read_text())
    (bad / "checkpoint.safetensors").write_bytes(b"not the weights")
    with pytest.raises(stiffx.StiffxError, match="SHA-256"):
        stiffx.load(bad)


def test_config_errors_have_the_cli_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "configs/tiny.toml").read_text().replace("width = 16", "width = -3"))
    res = cli("run", "--config", str(bad), "--out", str(tmp_path / "o"), check=False)
    assert res.returncode == 2
    cli_msg = res.stderr.strip().removeprefix("error: ").splitlines()[0]
    with pytest.raises(stiffx.StiffxError) as e:
        stiffx.run(bad, out=tmp_path / "o2", progress=False)
    assert str(e.value).splitlines()[0] == cli_msg
    assert "width" in cli_msg
    # A dict names the field too.
    with pytest.raises(stiffx.StiffxError, match="widht"):
        stiffx.run({"model": {"widht": 3}}, progress=False)


def test_run_results_and_determinism(ds_run, tmp_path):
    m = ds_run.metrics
    assert m["seed"] == 1 and np.isfinite(m["best_val_loss"])
    assert set(ds_run.per_eps["eps"]) == {0.05, 0.1, 0.2}
    assert np.all(np.isfinite(ds_run.per_eps["rollout_rel"]))
    again = stiffx.run(REPO / "configs/tiny.toml", out=tmp_path / "again", progress=False)
    # CPU results reproduce bit for bit: the same weights, hence the same checkpoint files.
    assert (tmp_path / "again/checkpoint.safetensors").read_bytes() == (ds_run.out / "checkpoint.safetensors").read_bytes()
    assert again.metrics["eval"]["per_eps"] == m["eval"]["per_eps"]


def test_progress_callback_sees_every_epoch(tmp_path):
    seen = []
    stiffx.run(REPO / "configs/tiny.toml", out=tmp_path / "p", progress=lambda *a: seen.append(a))
    train = [a for a in seen if a[0] == "train"]
    assert train[0][1:3] == (0, 30) and train[-1][1:3] == (30, 30)
    assert all(a[3] is None or dict(a[3])["val_loss"] > 0 for a in train)
    assert seen[0][0] == "data" and seen[-1][:2] == ("evaluate", 1)


def test_plugins_lists_the_builtins():
    names = {(k, n) for k, n, _ in stiffx.plugins()}
    assert ("system", "robertson") in names and ("transform", "asinh") in names
