"""``examples/numpy_reader.py``, the NumPy-only checkpoint reader, against the ``stiffx`` command line.

Every case trains a seconds-long model with the CLI binary (``$STIFFX_BIN``, else
``target/debug/stiffx``), and the reader's RHS and Jacobian must equal ``stiffx inspect``'s to a
norm-wise relative 1e-12 per state, in both checkpoint formats:

- format 2 (``checkpoint.json`` + ``checkpoint.safetensors``): what runs write, or ``stiffx export`` of
  what they write when the binary still writes format 1;
- format 1 (one JSON file): what the binary writes, or else the format-2 checkpoint rewritten as
  format 1 here, which ``stiffx inspect`` must then evaluate exactly as the original (so the rewrite
  itself is checked), and the committed CRNN checkpoint of ``results/robertson_crnn``.

The cases cover both activations, linear/asinh/log state inputs, linear/log eps inputs, the identity
and asinh transforms (global, per-eps power-law and interpolated scales), the orthogonal and the oblique
invariant projector, and complex eigenvalues. Self-contained: the shared ``conftest.py`` is not needed
(``pytest --noconftest python/tests/test_numpy_reader.py`` runs without the stiffx Python package).
Skipped only when there is no stiffx binary.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
READER = REPO / "examples" / "numpy_reader.py"
CRNN_V1 = REPO / "results" / "robertson_crnn" / "checkpoint.json"


def _import_reader() -> ModuleType:
    """``examples/numpy_reader.py`` as the module ``numpy_reader`` (it is not on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location("numpy_reader", READER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["numpy_reader"] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


nr = _import_reader()


def stiffx_bin() -> Path:
    """The CLI binary, ``$STIFFX_BIN`` or ``target/debug/stiffx``; skips the test when there is none."""
    env = os.environ.get("STIFFX_BIN")
    path = Path(env) if env else REPO / "target" / "debug" / "stiffx"
    if not path.is_file():
        pytest.skip(f"no stiffx binary at {path} (build it with `cargo build` or set STIFFX_BIN)")
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    """Runs the CLI from the repository root; fails the test with its stderr if it fails."""
    res = subprocess.run([str(stiffx_bin()), *args], cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"stiffx {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
    return res


def has_export() -> bool:
    """Whether the binary has ``stiffx export`` (format 2 from any checkpoint)."""
    return subprocess.run([str(stiffx_bin()), "export", "--help"], capture_output=True).returncode == 0


def fmt_of(ck: Path) -> str:
    return json.loads(ck.read_text())["format"]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-wise relative difference ‖a − b‖/‖b‖ (absolute when ``b`` is zero)."""
    a, b = np.ravel(np.asarray(a)), np.ravel(np.asarray(b))
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (nb if nb > 0 else 1.0))


def inspect(ck: Path, eps: float, states: np.ndarray, out: Path) -> List[dict]:
    """``stiffx inspect`` of ``ck`` at ``states``: its JSON records, one per state."""
    args = ["inspect", "--checkpoint", str(ck), "--eps", repr(float(eps)), "--out", str(out)]
    for s in states:
        args.append("--state=" + ",".join(repr(float(v)) for v in s))  # `=`: a leading minus is no flag
    cli(*args)
    return json.loads(out.read_text())


def to_v1(ck2: Path, out: Path, *, project_invariants: Optional[bool] = None, val_loss=None) -> Path:
    """A format-2 checkpoint rewritten as format 1 (weights inline, ``w`` row-major ``d_in × d_out``)."""
    from safetensors.numpy import load as load_safetensors

    meta = json.loads(ck2.read_text())
    tensors = load_safetensors((ck2.parent / meta["weights_file"]).read_bytes())
    layers = []
    for i, (d_in, d_out) in enumerate(meta["network"]["layers"]):
        w = tensors[f"layers.{i}.weight"]  # (d_out, d_in)
        b = tensors[f"layers.{i}.bias"]
        layers.append({"d_in": d_in, "d_out": d_out, "w": w.T.ravel().tolist(), "b": b.tolist()})
    config = json.loads(json.dumps(meta["config"]))
    if project_invariants is not None:
        config["model"]["project_invariants"] = project_invariants
    v1 = {
        "format": "stiffx-checkpoint-1",
        "config": config,
        "normalizer": meta["normalizer"],
        "weights": {
            "layers": layers,
            "activation": meta["network"]["activation"],
            "mass_action": meta["network"]["mass_action"],
        },
        "epoch": meta["epoch"],
        "val_loss": meta["val_loss"] if val_loss is None else val_loss,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(v1))
    return out


def with_model_field(ck1: Path, out: Path, **fields) -> Path:
    """A copy of the format-1 checkpoint ``ck1`` with ``config.model`` fields replaced."""
    meta = json.loads(ck1.read_text())
    meta["config"]["model"].update(fields)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(meta))
    return out


# --------------------------------------------------------------------------------------------------
# The cases: configs (seconds-long runs), states and stiffness values
# --------------------------------------------------------------------------------------------------

TINY = (REPO / "configs" / "tiny.toml").read_text()
TINY_ROB = (REPO / "configs" / "tiny_robertson.toml").read_text()
TINY_VDP = """seed = 1
[system]
type = "van-der-pol"
train_eps = [0.05, 0.1, 0.2]
[sampler]
type = "cloud"
k = 2
[sampler.base]
type = "trajectory"
per_eps = 2
horizon = 2.0
dt = 0.05
[labeller]
type = "direct"
[transform]
type = "asinh"
per_eps = true
quantile = 0.9
[model]
hidden = 2
width = 16
eps_input = "log"
[train]
epochs = 10
batch = 64
[eval]
horizon = 1.0
"""


@dataclass(frozen=True)
class Case:
    """A model to train: its config text, and where to compare the reader with ``stiffx inspect``."""

    config: str
    eps: Sequence[float]
    states: Sequence[Sequence[float]]


DS_STATES = [[1.0, 0.0], [0.5, 0.3], [2.0, 0.8], [1.5, -0.2]]
ROB_STATES = [[1.0, 0.0, 0.0], [0.9, 1e-5, 0.1], [0.5, 2e-5, 0.5], [0.98, -1e-9, 0.02]]

CASES: Dict[str, Case] = {
    # asinh transform with global scales, SiLU, linear inputs, no invariants.
    "ds": Case(TINY, [0.1, 0.07], DS_STATES),
    # identity transform.
    "ds-identity": Case(TINY.replace('type = "asinh"', 'type = "identity"'), [0.1], DS_STATES),
    # per-eps scales interpolated in ln eps: below, on, between and beyond the grid 0.05, 0.1, 0.2.
    "ds-interpolate": Case(
        TINY.replace('type = "asinh"', 'type = "asinh"\nper_eps = true\neps_fit = "interpolate"'),
        [0.03, 0.1, 0.07, 0.15, 0.3],
        DS_STATES,
    ),
    # per-eps power-law scales, log eps input, complex eigenvalues.
    "vdp": Case(TINY_VDP, [0.07, 0.5], [[1.0, 0.0], [0.5, 0.3], [2.0, -1.0], [0.1, 2.0]]),
    # asinh state input, log eps input, orthogonal projector onto y1 + y2 + y3 = const.
    "rob": Case(TINY_ROB, [1.0, 0.7], ROB_STATES),
}

# Cases whose format-1 form this reader can evaluate as it is (no invariant to project onto).
V1_AS_IS = {"ds", "ds-identity", "ds-interpolate", "vdp"}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numpy_reader")


_runs: Dict[str, Path] = {}


def trained(name: str, work: Path) -> Path:
    """``checkpoint.json`` of case ``name``, trained once per module."""
    if name not in _runs:
        cfg = work / f"{name}.toml"
        cfg.write_text(CASES[name].config)
        out = work / f"run-{name}"
        cli("run", "--config", str(cfg), "--out", str(out), "--quiet", "--no-figures")
        _runs[name] = out / "checkpoint.json"
    return _runs[name]


def as_v2(ck: Path, work: Path) -> Path:
    """``ck`` in format 2: itself, or its ``stiffx export`` (skips when the binary has no export)."""
    if fmt_of(ck) == nr.FORMAT:
        return ck
    if not has_export():
        pytest.skip("this stiffx binary writes format 1 and has no `stiffx export` for format 2")
    out = work / f"export-{ck.parent.name}"
    if not (out / "checkpoint.json").exists():
        cli("export", str(ck), "--out", str(out))
    return out / "checkpoint.json"


def as_v1(ck: Path, work: Path, **kw) -> Path:
    """``ck`` in format 1: itself (with ``kw`` applied to ``config.model``), or rewritten from format 2."""
    out = work / f"v1-{ck.parent.name}-{'-'.join(f'{k}{v}' for k, v in kw.items())}" / "checkpoint.json"
    if fmt_of(ck) == nr.FORMAT_V1:
        return with_model_field(ck, out, **kw) if kw else ck
    return to_v1(ck, out, **kw)


def assert_matches_inspect(ck: Path, case: Case, tmp_path: Path) -> None:
    """The reader's RHS, Jacobian and eigenvalues at every (eps, state) of ``case`` against inspect's."""
    op = nr.load(ck)
    x = np.asarray(case.states, dtype=np.float64)
    for eps in case.eps:
        ref = inspect(ck, eps, x, tmp_path / "inspect.json")
        f, j, ev = op.rhs(x, eps), op.jacobian(x, eps), op.eigenvalues(x, eps)
        assert f.shape == x.shape and j.shape == (len(x), op.dim, op.dim) and ev.shape == x.shape
        assert f.dtype == np.float64 and j.dtype == np.float64 and ev.dtype == np.complex128
        for p, r in enumerate(ref):
            where = f"{ck} at eps = {eps}, x = {x[p].tolist()}"
            assert r["state"] == x[p].tolist()
            assert rel(f[p], r["rhs_learned"]) <= 1e-12, f"rhs {f[p]} vs {r['rhs_learned']} {where}"
            assert rel(j[p], r["jacobian_learned"]) <= 1e-12, f"jacobian {j[p]} vs {r['jacobian_learned']} {where}"
            lam = np.array([complex(a, b) for a, b in r["eigenvalues_learned"]])
            # Two eigensolvers (LAPACK here, nalgebra there): equal to round-off, in the same order.
            assert rel(ev[p], lam) <= 1e-10, f"eigenvalues {ev[p]} vs {lam} {where}"


# --------------------------------------------------------------------------------------------------
# Against stiffx inspect
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_format_2_matches_inspect(name, work, tmp_path):
    ck = as_v2(trained(name, work), work)
    assert fmt_of(ck) == "stiffx-checkpoint-2"
    assert_matches_inspect(ck, CASES[name], tmp_path)


@pytest.mark.parametrize("name", sorted(V1_AS_IS) + ["rob"])
def test_format_1_matches_inspect(name, work, tmp_path):
    # Robertson's format 1 without the projection (the reader cannot know the invariants from it).
    ck = trained(name, work)
    ck1 = as_v1(ck, work, project_invariants=False) if name == "rob" else as_v1(ck, work)
    assert fmt_of(ck1) == "stiffx-checkpoint-1"
    assert nr.load(ck1).projector is None
    assert_matches_inspect(ck1, CASES[name], tmp_path)


def test_format_1_rewrite_is_the_same_model(work, tmp_path):
    """The format-1 files the tests write evaluate, in stiffx, exactly as the originals: the rewrite is
    faithful, so the format-1 comparisons test the reader and not the rewrite."""
    ck = trained("ds-interpolate", work)
    if fmt_of(ck) != nr.FORMAT:
        pytest.skip("the binary writes format 1 itself: no rewrite to check")
    x = np.asarray(DS_STATES)
    a = inspect(ck, 0.07, x, tmp_path / "a.json")
    b = inspect(as_v1(ck, work), 0.07, x, tmp_path / "b.json")
    assert a == b


def test_committed_crnn_checkpoint_both_formats(work, tmp_path):
    """The committed CRNN (exp activation, log state input, mass action, oblique projector eliminating
    y1): format 1 is refused while it projects, read without the projection, and read with it after
    ``stiffx export``."""
    if not CRNN_V1.exists():
        pytest.skip(f"no committed format-1 checkpoint at {CRNN_V1}")
    case = Case("", [1.0, 0.3], ROB_STATES)
    with pytest.raises(NotImplementedError, match="stiffx export"):
        nr.load(CRNN_V1)
    plain = with_model_field(CRNN_V1, work / "crnn-plain" / "checkpoint.json", project_invariants=False)
    op1 = nr.load(plain)
    assert op1.activation == "exp" and op1.mass_action and op1.state_map == "log"
    assert_matches_inspect(plain, case, tmp_path)
    if not has_export():
        pytest.skip("no `stiffx export` in this binary: format 2 of the CRNN not checked")
    ck2 = work / "crnn-v2"
    cli("export", str(CRNN_V1), "--out", str(ck2))
    op2 = nr.load(ck2)  # the directory
    assert op2.projector is not None and op2.state_names == ["y1", "y2", "y3"]
    # Oblique projection eliminating y1: F1 = −(F2 + F3), the other rows as learned.
    x = np.asarray(ROB_STATES)
    f1, f2 = op1.rhs(x, 1.0), op2.rhs(x, 1.0)
    np.testing.assert_array_equal(f2[:, 1:], f1[:, 1:])
    assert np.allclose(f2.sum(axis=1), 0.0, atol=1e-15 * np.abs(f2).max())
    assert_matches_inspect(ck2 / "checkpoint.json", case, tmp_path)


# --------------------------------------------------------------------------------------------------
# Properties that hold without inspect
# --------------------------------------------------------------------------------------------------


def test_jacobian_is_the_derivative_of_the_rhs(work):
    """Central differences of ``rhs`` (error O(h²)) agree with ``jacobian`` (forward-mode tangents)."""
    for name in ["ds-interpolate", "vdp"]:
        op = nr.load(trained(name, work))
        for x in np.asarray(CASES[name].states):
            for eps in CASES[name].eps:
                j = op.jacobian(x, eps)
                fd = np.empty_like(j)
                for i in range(op.dim):
                    h = 1e-5 * max(1.0, abs(x[i]))
                    e = np.zeros(op.dim)
                    e[i] = h
                    fd[:, i] = (op.rhs(x + e, eps) - op.rhs(x - e, eps)) / (2 * h)
                assert rel(fd, j) < 1e-7, f"{name} at {x}, eps = {eps}: {fd} vs {j}"


def test_projector_conserves_the_invariant(work):
    """Robertson's orthogonal projector: F and every column of J sum to zero (y1 + y2 + y3 conserved)."""
    op = nr.load(as_v2(trained("rob", work), work))
    assert op.projector is not None
    np.testing.assert_allclose(op.projector @ np.ones(3), 0.0, atol=1e-15)
    x = np.asarray(ROB_STATES)
    f, j = op.rhs(x, 1.0), op.jacobian(x, 1.0)
    assert np.all(np.abs(f.sum(axis=1)) <= 1e-14 * np.abs(f).max(axis=1))
    assert np.all(np.abs(j.sum(axis=1)) <= 1e-14 * np.abs(j).max(axis=(1, 2))[:, None])


def test_shapes_single_states_and_per_point_eps(work):
    op = nr.load(trained("ds-interpolate", work).parent)  # the directory is enough
    x = np.asarray(DS_STATES)
    eps = np.array([0.03, 0.07, 0.1, 0.3])
    f, j, ev = op.rhs(x, eps), op.jacobian(x, eps), op.eigenvalues(x, eps)
    for p in range(len(x)):
        # One state at a time as in a batch (to round-off: BLAS kernels differ with the batch size).
        assert rel(op.rhs(x[p], eps[p]), f[p]) < 1e-14
        assert rel(op.jacobian(list(x[p]), float(eps[p])), j[p]) < 1e-14
        assert rel(op.eigenvalues(x[p], eps[p]), ev[p]) < 1e-13
        # Sorted by decreasing modulus, and the eigenvalues of J.
        assert np.all(np.diff(np.abs(ev[p])) <= 0)
        assert rel(np.sort_complex(ev[p]), np.sort_complex(np.linalg.eigvals(j[p]))) < 1e-14
    assert op.rhs(x[0], 0.1).shape == (2,) and op.jacobian(x[0], 0.1).shape == (2, 2)
    assert op.eigenvalues(x[0], 0.1).shape == (2,)
    assert op.state_names == ["y", "z"] and op.param_name == "eps" and op.dim == 2
    with pytest.raises(ValueError, match=r"expected \(2,\) or \(n, 2\)"):
        op.rhs(np.zeros((3, 3)), 0.1)
    with pytest.raises(ValueError, match="eps has shape"):
        op.rhs(x, [0.1, 0.2])
    with pytest.raises(ValueError, match="> 0"):
        op.jacobian(x, -0.1)


# --------------------------------------------------------------------------------------------------
# Refused checkpoints
# --------------------------------------------------------------------------------------------------


def _copy_v2(work: Path, dest: Path) -> Path:
    src = as_v2(trained("ds", work), work).parent
    shutil.copytree(src, dest)
    return dest


def test_weights_file_with_another_hash_is_refused(work, tmp_path):
    d = _copy_v2(work, tmp_path / "ck")
    weights = d / "checkpoint.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last parameter
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256") as e:
        nr.load(d)
    assert str(weights) in str(e.value)
    weights.unlink()
    with pytest.raises(ValueError, match="checkpoint.safetensors"):
        nr.load(d)


def _rewrite_weights(d: Path, tensors: Dict[str, np.ndarray]) -> None:
    """Replaces the weights of checkpoint directory ``d`` and updates the hash its metadata names."""
    from safetensors.numpy import save

    data = save(tensors)
    (d / "checkpoint.safetensors").write_bytes(data)
    meta = json.loads((d / "checkpoint.json").read_text())
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (d / "checkpoint.json").write_text(json.dumps(meta))


def test_wrong_shapes_and_tensors_are_refused(work, tmp_path):
    from safetensors.numpy import load as load_safetensors

    d = _copy_v2(work, tmp_path / "ck")
    good = load_safetensors((d / "checkpoint.safetensors").read_bytes())
    # A weight in the wrong layout (transposed: burn's instead of PyTorch's).
    _rewrite_weights(d, {**good, "layers.0.weight": np.ascontiguousarray(good["layers.0.weight"].T)})
    with pytest.raises(ValueError, match=r"'layers\.0\.weight' is float64 \[3, 16\], expected float64 \[16, 3\]"):
        nr.load(d)
    # f32 instead of f64.
    _rewrite_weights(d, {**good, "layers.1.bias": good["layers.1.bias"].astype(np.float32)})
    with pytest.raises(ValueError, match=r"layers\.1\.bias.*float32"):
        nr.load(d)
    # A missing tensor.
    _rewrite_weights(d, {k: v for k, v in good.items() if k != "layers.2.bias"})
    with pytest.raises(ValueError, match=r"layers\.2\.bias"):
        nr.load(d)
    # Metadata whose layer shapes do not chain or do not fit dim.
    _rewrite_weights(d, good)
    meta = json.loads((d / "checkpoint.json").read_text())
    bad_layers = [([[3, 16], [17, 16], [16, 2]], "layer 1 takes 17"), ([[3, 16], [16, 16], [16, 3]], "expected 3 → 2")]
    for layers, msg in bad_layers:
        (d / "checkpoint.json").write_text(json.dumps({**meta, "network": {**meta["network"], "layers": layers}}))
        with pytest.raises(ValueError, match=msg):
            nr.load(d)
    (d / "checkpoint.json").write_text(json.dumps({**meta, "normalizer": {**meta["normalizer"], "std": [1.0, 2.0]}}))
    with pytest.raises(ValueError, match="normalizer.std has 2 entries, expected 3"):
        nr.load(d)
    (d / "checkpoint.json").write_text(json.dumps({**meta, "format": "stiffx-checkpoint-9"}))
    with pytest.raises(ValueError, match="stiffx-checkpoint-9"):
        nr.load(d)
    (d / "checkpoint.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "weights_sha256"}))
    with pytest.raises(ValueError, match="weights_sha256"):
        nr.load(d)


def test_format_1_details(work):
    # val_loss written as a string (how stiffx writes a non-finite loss), weights inline.
    meta = json.loads(as_v1(trained("ds", work), work).read_text())
    meta["val_loss"] = "inf"
    ck1 = work / "v1-inf" / "checkpoint.json"
    ck1.parent.mkdir(parents=True, exist_ok=True)
    ck1.write_text(json.dumps(meta))
    op = nr.load(ck1)
    assert op.format == "stiffx-checkpoint-1" and op.dim == 2 and op.val_loss == float("inf")
    assert len(op.layers) == 3 and op.layers[0].weight.shape == (16, 3) and op.projector is None
    # Robertson projects by default: its format 1 is refused, naming the way out.
    rob = trained("rob", work)
    rob1 = as_v1(rob, work, project_invariants=True)
    with pytest.raises(NotImplementedError, match="stiffx export"):
        nr.load(rob1)
    # A missing project_invariants means true in stiffx: refused as well.
    meta = json.loads(rob1.read_text())
    del meta["config"]["model"]["project_invariants"]
    absent = work / "v1-rob-absent" / "checkpoint.json"
    absent.parent.mkdir(parents=True, exist_ok=True)
    absent.write_text(json.dumps(meta))
    with pytest.raises(NotImplementedError):
        nr.load(absent)


# --------------------------------------------------------------------------------------------------
# As a script
# --------------------------------------------------------------------------------------------------


def test_script_json_equals_inspect(work, tmp_path):
    ck = trained("vdp", work)
    states = np.asarray([[1.0, 0.0], [-0.5, 0.3]])
    ref = inspect(ck, 0.07, states, tmp_path / "inspect.json")
    out = tmp_path / "reader.json"
    args = [sys.executable, str(READER), str(ck.parent), "--eps", "0.07", "--json", str(out)]
    for s in states:
        args.append("--state=" + ",".join(repr(float(v)) for v in s))
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "dy1/dt" in res.stdout and "eigenvalues" in res.stdout
    bad = subprocess.run([sys.executable, str(READER), str(tmp_path / "nope"), "--eps", "0.1", "--state", "1,0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "error:" in bad.stderr and "nope" in bad.stderr
    got = json.loads(out.read_text())
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert set(g) <= set(r) and g["eps"] == r["eps"] and g["state"] == r["state"]
        for key, tol in [("rhs_learned", 1e-12), ("jacobian_learned", 1e-12), ("eigenvalues_learned", 1e-10)]:
            assert rel(g[key], r[key]) <= tol, key


def test_reader_needs_no_stiffx(work, tmp_path):
    """The reader imports NumPy and safetensors only: no stiffx module in the interpreter after a load."""
    ck = as_v2(trained("ds", work), work)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import numpy_reader; "
        "numpy_reader.load(sys.argv[2]).jacobian([1.0, 0.5], 0.1); "
        "assert not any(m == 'stiffx' or m.startswith('stiffx.') for m in sys.modules), sorted(sys.modules)"
    )
    args = [sys.executable, "-c", code, str(READER.parent), str(ck)]
    res = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
