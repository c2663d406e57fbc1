"""A stiffx checkpoint with NumPy alone: the learned RHS ``F(x, eps)``, its Jacobian and eigenvalues.

A reference reader of the checkpoint format (``docs/checkpoint-format.md``) that needs neither stiffx
nor its Python package: NumPy, plus the ``safetensors`` package for the weights of format 2. It reads

- format 2, ``stiffx-checkpoint-2`` (what runs and ``stiffx export`` write): a directory holding
  ``checkpoint.json`` (metadata) and ``checkpoint.safetensors`` (f64 weights, PyTorch layout), the
  weights file checked against the SHA-256 the metadata names;
- format 1, ``stiffx-checkpoint-1``: one JSON file with the weights inline, for checkpoints whose
  learned RHS is not projected onto invariants (``stiffx export`` converts the others to format 2,
  which carries the projector).

The maths (``x`` the physical state of length ``d``, ``e`` the stiffness value)::

    φ_e   = e                      (config.model.eps_input = "linear", the default)
          = ln e                   ("log")
    u_i   = x_i                    (normalizer.state_scale empty)        slope_i = 1
          = asinh(x_i / c_i)       (state_map "asinh", c = state_scale)  slope_i = 1 / hypot(c_i, x_i)
          = ln(max(x_i, 0) + c_i)  (state_map "log")                     slope_i = 1/(x_i + c_i) (x_i ≥ 0), 0 (x_i < 0)
    h_0   = ([u, φ_e] − mean) / std
    h_l   = σ(h_{l−1} W_lᵀ + b_l)  hidden layers, σ = SiLU (z·sigmoid z) or exp
    a     = h_L W_Lᵀ + b_L         linear output layer, length d
    ∂a/∂x_i = ∂a/∂h_{0,i} · slope_i / std_i
    F     = P T⁻¹(a),   J = ∂F/∂x = P diag(dT⁻¹/da) ∂a/∂x

with ``T⁻¹`` the target transform (``identity``: ``F = a``; ``asinh``: ``F_k = s_k(e) sinh a_k``,
``dF_k/da_k = s_k(e) cosh a_k``) and ``P`` the invariant projector (identity when there is none).
``∂a/∂h_0`` is computed by forward-mode tangents: the ``d`` input directions are pushed through the
layers with the primal (``ż = ḣ Wᵀ``, ``ḣ' = σ'(z) ⊙ ż``), as ``stiffx inspect`` does. Everything is
float64.

Use as a module::

    import numpy_reader
    op = numpy_reader.load("runs/tiny")                    # the directory or its checkpoint.json
    op.rhs([[1.0, 0.2]], 0.1)                              # (1, 2)
    op.jacobian([1.0, 0.2], 0.1)                           # (2, 2), row i = ∂F_i/∂x_j
    op.eigenvalues([1.0, 0.2], 0.1)                        # complex, by decreasing modulus

or as a script (``--json`` writes what ``stiffx inspect --out`` writes, learned fields only)::

    python examples/numpy_reader.py runs/tiny --eps 0.1 --state 1,0 --state 0.5,0.3 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FORMAT", "FORMAT_V1", "CheckpointError", "Operator", "Transform", "load", "main"]

FORMAT = "stiffx-checkpoint-2"
"""Format tag of JSON metadata + safetensors weights."""

FORMAT_V1 = "stiffx-checkpoint-1"
"""Format tag of one-file JSON checkpoints."""

SYSTEMS_WITHOUT_INVARIANTS = frozenset({"davis-skodje", "michaelis-menten", "oregonator", "van-der-pol"})
"""Built-in systems with no linear invariant: their format-1 checkpoints need no projector."""

Array = NDArray[np.float64]
PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: unknown format, missing field, wrong shape or hash."""


# --------------------------------------------------------------------------------------------------
# Pieces of the operator
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One dense layer, ``y = h Wᵀ + b`` (PyTorch's ``nn.Linear``)."""

    weight: Array
    """``(d_out, d_in)``."""
    bias: Array
    """``(d_out,)``."""


@dataclass(frozen=True)
class Transform:
    """The fitted target transform ``T`` (``config.transform``); only ``T⁻¹`` and its derivative are needed.

    ``kind`` is ``identity`` or ``asinh``. For ``asinh`` the scale ``s_k(e)`` is ``scales[k]`` unless
    ``per_eps`` (with ``eps_scales`` fitted): then ``exp(α_k + β_k ln e)`` for ``eps_fit = power-law`` with
    ``power_law[k] = (α_k, β_k)``, else ``ln s`` interpolated linearly in ``ln e`` between the fitted
    ``(e_j, s_j)`` of ``eps_scales`` (constant beyond the ends).
    """

    kind: str
    scales: Array = field(default_factory=lambda: np.zeros(0))
    per_eps: bool = False
    eps_grid: Array = field(default_factory=lambda: np.zeros(0))
    """Fitted stiffness values of ``eps_scales``, increasing: ``(m,)``."""
    eps_scales: Array = field(default_factory=lambda: np.zeros((0, 0)))
    """Fitted scales at ``eps_grid``: ``(m, d)``."""
    eps_fit: str = "power-law"
    power_law: Array = field(default_factory=lambda: np.zeros((0, 2)))
    """``(α_k, β_k)`` per component: ``(d, 2)`` (or fewer rows: interpolation for the rest)."""

    @classmethod
    def from_config(cls, t: Mapping[str, Any], d: int) -> "Transform":
        """The transform of ``config.transform`` for a ``d``-dimensional state, with its sizes checked."""
        kind = t.get("type")
        if kind == "identity":
            return cls("identity")
        if kind != "asinh":
            raise NotImplementedError(f"config.transform.type = {kind!r}: this reader knows 'identity' and 'asinh'")
        scales = _floats(t.get("scales", []), "config.transform.scales")
        per_eps = bool(t.get("per_eps", False))
        pairs = t.get("eps_scales", []) or []
        grid = np.array([_float(p[0], "config.transform.eps_scales") for p in pairs], dtype=np.float64)
        table = np.array([_floats(p[1], "config.transform.eps_scales", d) for p in pairs], dtype=np.float64).reshape(
            len(pairs), d
        )
        eps_fit = t.get("eps_fit", "power-law")
        if eps_fit not in ("power-law", "interpolate"):
            raise CheckpointError(f"config.transform.eps_fit = {eps_fit!r}: expected 'power-law' or 'interpolate'")
        law = np.array(
            [_floats(p, "config.transform.power_law", 2) for p in t.get("power_law", []) or []], dtype=np.float64
        ).reshape(-1, 2)
        if not per_eps or len(grid) == 0:
            if len(scales) != d:
                raise CheckpointError(
                    f"config.transform.scales has {len(scales)} entries, expected {d} (fitted scales)"
                )
        elif np.any(np.diff(grid) <= 0):
            raise CheckpointError("config.transform.eps_scales: stiffness values must be increasing")
        return cls("asinh", np.asarray(scales, dtype=np.float64), per_eps, grid, table, eps_fit, law)

    def scale(self, eps: Array) -> Array:
        """``s_k(e)`` for each stiffness value: ``(n, d)`` from ``(n,)``."""
        n = eps.shape[0]
        if not self.per_eps or len(self.eps_grid) == 0:
            return np.broadcast_to(self.scales, (n, len(self.scales)))
        d = self.eps_scales.shape[1]
        out = np.empty((n, d))
        ln_e = np.log(eps)
        k_law = min(len(self.power_law), d) if self.eps_fit == "power-law" else 0
        if k_law:
            alpha, beta = self.power_law[:k_law, 0], self.power_law[:k_law, 1]
            out[:, :k_law] = np.exp(alpha[None, :] + beta[None, :] * ln_e[:, None])
        if k_law < d:
            out[:, k_law:] = self._interpolate(eps)[:, k_law:]
        return out

    def _interpolate(self, eps: Array) -> Array:
        """Piecewise log-log interpolation of ``eps_scales``, constant beyond the ends: ``(n, d)``."""
        grid, table = self.eps_grid, self.eps_scales
        out = np.empty((eps.shape[0], table.shape[1]))
        for p, e in enumerate(eps):
            if e <= grid[0]:
                out[p] = table[0]
            elif e >= grid[-1]:
                out[p] = table[-1]
            else:
                i = int(np.searchsorted(grid, e, side="right"))  # first grid value > e
                w = (math.log(e) - math.log(grid[i - 1])) / (math.log(grid[i]) - math.log(grid[i - 1]))
                out[p] = np.exp(np.log(table[i - 1]) * (1.0 - w) + np.log(table[i]) * w)
        return out

    def inverse(self, a: Array, eps: Array) -> Tuple[Array, Array]:
        """``(F, dF/da)`` for network outputs ``a`` (``(n, d)``) at stiffness values ``eps`` (``(n,)``)."""
        if self.kind == "identity":
            return a.copy(), np.ones_like(a)
        s = self.scale(eps)
        return s * np.sinh(a), s * np.cosh(a)


# --------------------------------------------------------------------------------------------------
# The operator
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """The learned operator of a checkpoint: ``F(x, eps)``, ``J = ∂F/∂x`` and its eigenvalues.

    States ``x`` are ``(d,)`` (one state) or ``(n, d)``; ``eps`` is a number or one value per state,
    ``(n,)``. Results keep the leading shape of ``x``. All computation is float64.
    """

    path: Path
    """The ``checkpoint.json`` it was read from."""
    format: str
    dim: int
    state_names: List[str]
    param_name: str
    layers: List[Layer]
    activation: str
    """``silu`` or ``exp``, after every hidden layer."""
    mass_action: bool
    mean: Array
    """``(d + 1,)``: states then eps."""
    std: Array
    """``(d + 1,)``."""
    state_scale: Array
    """``(d,)``, or ``(0,)`` for linear state inputs."""
    state_map: str
    """``asinh`` or ``log`` (only used with a non-empty ``state_scale``)."""
    eps_input: str
    """``linear`` or ``log``."""
    transform: Transform
    projector: Optional[Array]
    """``P`` (``(d, d)``) applied as ``F ← P F``, ``J ← P J``; ``None``: none."""
    config: Dict[str, Any]
    epoch: int
    val_loss: float

    # -- inputs -------------------------------------------------------------------------------------

    def _points(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> Tuple[Array, Array, bool]:
        """``x`` as ``(n, d)`` and ``eps`` as ``(n,)`` float64 arrays; whether ``x`` was one state."""
        xa = np.asarray(x, dtype=np.float64)
        single = xa.ndim == 1
        if single:
            xa = xa[None, :]
        if xa.ndim != 2 or xa.shape[1] != self.dim:
            raise ValueError(f"x has shape {np.shape(x)}: expected ({self.dim},) or (n, {self.dim})")
        ea = np.asarray(eps, dtype=np.float64)
        if ea.ndim == 0:
            ea = np.full(xa.shape[0], float(ea))
        if ea.shape != (xa.shape[0],):
            raise ValueError(f"eps has shape {ea.shape}: expected a number or ({xa.shape[0]},)")
        if not np.all(np.isfinite(ea) & (ea > 0)):
            raise ValueError(f"{self.param_name} must be finite and > 0, got {ea}")
        return xa, ea, single

    def _features(self, x: Array, eps: Array) -> Tuple[Array, Array]:
        """Standardised network inputs ``h_0`` (``(n, d + 1)``) and the state maps' slopes (``(n, d)``)."""
        if len(self.state_scale) == 0:
            u, slope = x, np.ones_like(x)
        elif self.state_map == "asinh":
            c = self.state_scale[None, :]
            u, slope = np.arcsinh(x / c), 1.0 / np.hypot(c, x)
        else:  # "log"
            c = self.state_scale[None, :]
            u = np.log(np.maximum(x, 0.0) + c)
            with np.errstate(divide="ignore"):
                slope = np.where(x >= 0.0, 1.0 / (x + c), 0.0)
        phi = np.log(eps) if self.eps_input == "log" else eps
        h0 = (np.column_stack([u, phi]) - self.mean[None, :]) / self.std[None, :]
        return h0, slope

    def _activation(self, z: Array) -> Tuple[Array, Array]:
        """``(σ(z), σ'(z))``."""
        if self.activation == "exp":
            e = np.exp(z)
            return e, e
        s = _sigmoid(z)
        return z * s, s * (1.0 + z * (1.0 - s))

    # -- the network --------------------------------------------------------------------------------

    def network(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> Array:
        """The network's outputs ``a`` (transformed space, before ``T⁻¹`` and ``P``)."""
        xa, ea, single = self._points(x, eps)
        h, _ = self._features(xa, ea)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = h @ layer.weight.T + layer.bias
            if i < last:
                h = self._activation(h)[0]
        return h[0] if single else h

    def _network_and_tangents(self, x: Array, eps: Array) -> Tuple[Array, Array]:
        """``a`` (``(n, d)``) and ``∂a/∂x`` (``(n, d, d)``, row k = ``∂a_k/∂x``) by forward-mode tangents."""
        n, d = x.shape
        h, slope = self._features(x, eps)
        # Tangent i of point p: the direction e_i of x_i in h_0, i.e. (slope_i / std_i) e_i.
        t = np.zeros((n, d, d + 1))
        idx = np.arange(d)
        t[:, idx, idx] = slope / self.std[None, :d]
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            z = h @ layer.weight.T + layer.bias
            zt = t @ layer.weight.T
            if i < last:
                h, ds = self._activation(z)
                t = zt * ds[:, None, :]
            else:
                h, t = z, zt
        return h, np.transpose(t, (0, 2, 1))

    # -- the operator -------------------------------------------------------------------------------

    def rhs(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> Array:
        """The learned RHS ``F(x, eps) = P T⁻¹(a)``: ``(d,)`` or ``(n, d)`` like ``x``."""
        xa, ea, single = self._points(x, eps)
        f, _ = self.transform.inverse(self.network(xa, ea), ea)
        if self.projector is not None:
            f = f @ self.projector.T
        return f[0] if single else f

    def jacobian(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> Array:
        """``J = ∂F/∂x = P diag(dT⁻¹/da) ∂a/∂x``: ``(d, d)`` or ``(n, d, d)``, row i = ``∂F_i/∂x_j``."""
        xa, ea, single = self._points(x, eps)
        a, jnet = self._network_and_tangents(xa, ea)
        _, dfda = self.transform.inverse(a, ea)
        j = dfda[:, :, None] * jnet
        if self.projector is not None:
            j = np.einsum("rk,nkc->nrc", self.projector, j)
        return j[0] if single else j

    def eigenvalues(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> NDArray[np.complex128]:
        """Eigenvalues of ``J``, complex, by decreasing modulus (ties: increasing real, then imaginary part):
        ``(d,)`` or ``(n, d)``."""
        j = self.jacobian(x, eps)
        single = j.ndim == 2
        lam = np.linalg.eigvals(j[None] if single else j).astype(np.complex128)
        out = np.stack([v[np.lexsort((v.imag, v.real, -np.abs(v)))] for v in lam])
        return out[0] if single else out


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load(path: PathLike) -> Operator:
    """Reads a checkpoint: its ``checkpoint.json`` (format 1 or 2) or the directory holding it.

    Raises ``CheckpointError`` (a ``ValueError``) for a malformed checkpoint or a weights file whose
    SHA-256 or shapes do not match the metadata, and ``NotImplementedError`` for a format-1 checkpoint
    whose RHS is projected onto invariants this reader cannot know (export it to format 2).
    """
    p = Path(path)
    json_path = p / "checkpoint.json" if p.is_dir() else p
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{json_path}: not a JSON file ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path}: not a stiffx checkpoint (a JSON object expected)")
    fmt = meta.get("format")
    try:
        if fmt == FORMAT:
            return _load_v2(meta, json_path)
        if fmt == FORMAT_V1:
            return _load_v1(meta, json_path)
    except CheckpointError as e:
        if str(json_path) in str(e):
            raise
        raise CheckpointError(f"{json_path}: {e}") from e
    except KeyError as e:
        raise CheckpointError(f"{json_path}: field {e} is missing") from e
    except (TypeError, IndexError) as e:
        raise CheckpointError(f"{json_path}: malformed checkpoint ({e})") from e
    raise CheckpointError(f"{json_path}: format {fmt!r}, expected {FORMAT!r} or {FORMAT_V1!r}")


def _load_v2(meta: Dict[str, Any], json_path: Path) -> Operator:
    """Format 2: metadata in ``meta``, weights in the safetensors file it names (hash and shapes checked)."""
    d = int(meta["dim"])
    net = meta["network"]
    shapes = [(int(s[0]), int(s[1])) for s in net["layers"]]
    _check_chain(shapes, d, json_path)
    weights_path = json_path.parent / meta["weights_file"]
    try:
        data = weights_path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{json_path}: cannot read its weights file {weights_path}: {e}") from e
    sha = hashlib.sha256(data).hexdigest()
    expected = str(meta["weights_sha256"]).lower()
    if sha != expected:
        raise CheckpointError(
            f"weights file {weights_path} has SHA-256 {sha}, but {json_path} names {expected} "
            "(a different or partly written file)"
        )
    try:
        from safetensors.numpy import load as load_safetensors
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading format 2 needs the `safetensors` package (pip install safetensors)") from e
    try:
        tensors = load_safetensors(data)
    except Exception as e:  # the package raises its own error types for a malformed file
        raise CheckpointError(f"weights file {weights_path}: not a safetensors file ({e})") from e
    expected_names = {f"layers.{i}.{kind}" for i in range(len(shapes)) for kind in ("weight", "bias")}
    if set(tensors) != expected_names:
        raise CheckpointError(
            f"weights file {weights_path}: tensors {sorted(tensors)}, expected {sorted(expected_names)}"
        )
    layers = []
    for i, (d_in, d_out) in enumerate(shapes):
        w = _tensor(tensors, f"layers.{i}.weight", (d_out, d_in), weights_path)
        b = _tensor(tensors, f"layers.{i}.bias", (d_out,), weights_path)
        layers.append(Layer(w, b))
    projector = meta.get("projector")
    if projector is not None:
        projector = np.array(projector, dtype=np.float64)
        if projector.shape != (d, d) or not np.all(np.isfinite(projector)):
            raise CheckpointError(f"{json_path}: projector has shape {projector.shape}, expected ({d}, {d}) finite")
    names = [str(n) for n in meta.get("state_names", [])] or _default_names(d)
    if len(names) != d:
        raise CheckpointError(f"{json_path}: {len(names)} state_names for dim = {d}")
    return _operator(
        meta,
        json_path,
        d=d,
        layers=layers,
        activation=net.get("activation", "silu"),
        mass_action=bool(net.get("mass_action", False)),
        projector=projector,
        names=names,
        param_name=str(meta.get("param_name", "eps")),
    )


def _load_v1(meta: Dict[str, Any], json_path: Path) -> Operator:
    """Format 1: weights inline, ``w`` row-major ``d_in × d_out`` (``y = h W + b``)."""
    w = meta["weights"]
    layers, shapes = [], []
    for i, layer in enumerate(w["layers"]):
        d_in, d_out = int(layer["d_in"]), int(layer["d_out"])
        flat = np.asarray(layer["w"], dtype=np.float64)
        bias = np.asarray(layer["b"], dtype=np.float64)
        if flat.shape != (d_in * d_out,) or bias.shape != (d_out,):
            raise CheckpointError(
                f"{json_path}: layer {i}: w has {flat.size} and b {bias.size} values, "
                f"expected {d_in * d_out} and {d_out}"
            )
        layers.append(Layer(np.ascontiguousarray(flat.reshape(d_in, d_out).T), bias))
        shapes.append((d_in, d_out))
    if not shapes:
        raise CheckpointError(f"{json_path}: no layers")
    d = shapes[-1][1]
    _check_chain(shapes, d, json_path)
    config = meta["config"]
    model = config.get("model", {}) or {}
    system = (config.get("system", {}) or {}).get("type")
    # stiffx's default is to project (model.project_invariants = true when absent).
    if model.get("project_invariants", True) and system not in SYSTEMS_WITHOUT_INVARIANTS:
        raise NotImplementedError(
            f"{json_path}: a format-1 checkpoint of system {system!r} with model.project_invariants: its "
            "invariant projector is not in the file; run `stiffx export "
            f"{json_path} --out DIR` and read the format-2 checkpoint in DIR"
        )
    return _operator(
        meta,
        json_path,
        d=d,
        layers=layers,
        activation=w.get("activation", "silu"),
        mass_action=bool(w.get("mass_action", False)),
        projector=None,
        names=_default_names(d),
        param_name="eps",
    )


def _operator(
    meta: Dict[str, Any],
    json_path: Path,
    *,
    d: int,
    layers: List[Layer],
    activation: str,
    mass_action: bool,
    projector: Optional[Array],
    names: List[str],
    param_name: str,
) -> Operator:
    """The parts both formats share (normaliser, config, epoch), checked, with the format's own parts."""
    if activation not in ("silu", "exp"):
        raise CheckpointError(f"{json_path}: activation {activation!r}, expected 'silu' or 'exp'")
    norm = meta["normalizer"]
    mean = np.asarray(_floats(norm["mean"], "normalizer.mean", d + 1))
    std = np.asarray(_floats(norm["std"], "normalizer.std", d + 1))
    scale = np.asarray(_floats(norm.get("state_scale", []) or [], "normalizer.state_scale"))
    if len(scale) not in (0, d) or not np.all(np.isfinite(scale) & (scale > 0)):
        raise CheckpointError(f"{json_path}: normalizer.state_scale must be empty or {d} finite numbers > 0")
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std) & (std != 0)):
        raise CheckpointError(f"{json_path}: normalizer.mean/std must be finite, std nonzero")
    state_map = norm.get("state_map", "asinh")
    if state_map not in ("asinh", "log"):
        raise CheckpointError(f"{json_path}: normalizer.state_map {state_map!r}, expected 'asinh' or 'log'")
    config = meta["config"]
    eps_input = (config.get("model", {}) or {}).get("eps_input", "linear")
    if eps_input not in ("linear", "log"):
        raise CheckpointError(f"{json_path}: config.model.eps_input {eps_input!r}, expected 'linear' or 'log'")
    transform = Transform.from_config(config["transform"], d)
    return Operator(
        path=json_path,
        format=str(meta["format"]),
        dim=d,
        state_names=names,
        param_name=param_name,
        layers=layers,
        activation=activation,
        mass_action=mass_action,
        mean=mean,
        std=std,
        state_scale=scale,
        state_map=state_map,
        eps_input=eps_input,
        transform=transform,
        projector=projector,
        config=config,
        epoch=int(meta.get("epoch", 0)),
        val_loss=_float(meta.get("val_loss", "NaN"), "val_loss"),
    )


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _sigmoid(z: Array) -> Array:
    """``1/(1 + e^{−z})`` without overflow warnings."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _float(v: Any, what: str) -> float:
    """A JSON number, or a string ``"NaN"``/``"inf"``/``"-inf"`` (how stiffx writes non-finite values)."""
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{what}: {v!r} is not a number") from e


def _floats(v: Any, what: str, n: Optional[int] = None) -> List[float]:
    """A list of JSON numbers (see ``_float``), of length ``n`` if given."""
    if not isinstance(v, (list, tuple)):
        raise CheckpointError(f"{what}: {v!r} is not a list of numbers")
    out = [_float(x, what) for x in v]
    if n is not None and len(out) != n:
        raise CheckpointError(f"{what} has {len(out)} entries, expected {n}")
    return out


def _check_chain(shapes: Sequence[Tuple[int, int]], d: int, json_path: Path) -> None:
    """Layer shapes ``(d_in, d_out)`` that chain, from ``d + 1`` inputs to ``d`` outputs."""
    if not shapes:
        raise CheckpointError(f"{json_path}: no layers")
    if shapes[0][0] != d + 1 or shapes[-1][1] != d:
        raise CheckpointError(
            f"{json_path}: network maps {shapes[0][0]} inputs to {shapes[-1][1]} outputs, expected {d + 1} → {d}"
        )
    for i in range(1, len(shapes)):
        if shapes[i][0] != shapes[i - 1][1]:
            raise CheckpointError(
                f"{json_path}: layer {i} takes {shapes[i][0]} inputs but layer {i - 1} gives {shapes[i - 1][1]}"
            )


def _tensor(tensors: Mapping[str, np.ndarray], name: str, shape: Tuple[int, ...], file: Path) -> Array:
    """Tensor ``name``, checked to be float64 of ``shape`` and finite."""
    t = tensors[name]
    if t.dtype != np.float64 or t.shape != shape:
        raise CheckpointError(
            f"weights file {file}: tensor {name!r} is {t.dtype} {list(t.shape)}, expected float64 {list(shape)}"
        )
    if not np.all(np.isfinite(t)):
        raise CheckpointError(f"weights file {file}: tensor {name!r} has non-finite values")
    return np.ascontiguousarray(t)


def _default_names(d: int) -> List[str]:
    """Names for states a format-1 checkpoint does not name: ``x0``, ``x1``, …"""
    return [f"x{i}" for i in range(d)]


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _json_number(v: float) -> Optional[float]:
    """A float for JSON: ``None`` (``null``) for a non-finite value, as serde_json writes it."""
    return float(v) if math.isfinite(v) else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``numpy_reader.py CKPT --eps E --state x1,x2,… [--state …] [--json OUT]``; exit 2 on a bad
    checkpoint or bad arguments."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="checkpoint.json (format 1 or 2) or the directory holding it")
    ap.add_argument("--eps", type=float, required=True, help="stiffness value")
    ap.add_argument(
        "--state",
        action="append",
        required=True,
        help="a state, comma-separated (repeatable; --state=-1,0 for a leading minus)",
    )
    ap.add_argument("--json", metavar="OUT", help="write the results to OUT as JSON (like `stiffx inspect --out`)")
    a = ap.parse_args(argv)
    try:
        op = load(a.checkpoint)
    except (OSError, ValueError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        states = np.array([[float(v) for v in s.split(",")] for s in a.state], dtype=np.float64)
    except ValueError:
        ap.error(f"--state: {op.dim} comma-separated numbers each")
    if states.shape[1:] != (op.dim,) or not np.all(np.isfinite(states)):
        ap.error(f"--state: {op.dim} comma-separated finite numbers each (the checkpoint's dimension)")
    if not (math.isfinite(a.eps) and a.eps > 0):
        ap.error(f"--eps: a stiffness value > 0, got {a.eps}")
    f, j, ev = op.rhs(states, a.eps), op.jacobian(states, a.eps), op.eigenvalues(states, a.eps)
    out = []
    np.set_printoptions(linewidth=120)
    for p, x in enumerate(states):
        print(f"{op.param_name} = {a.eps}, x = {x.tolist()}")
        for i, name in enumerate(op.state_names):
            print(f"  d{name}/dt = {f[p, i]: .10e}")
        print("  Jacobian (row i: ∂F_i/∂x_j):")
        for row in j[p]:
            print("   " + " ".join(f"{v: .6e}" for v in row))
        print("  eigenvalues (by modulus): " + ", ".join(f"{v.real:.6e}{v.imag:+.3e}i" for v in ev[p]))
        out.append(
            {
                "eps": a.eps,
                "state": x.tolist(),
                "rhs_learned": [_json_number(v) for v in f[p]],
                "jacobian_learned": [_json_number(v) for v in j[p].ravel()],
                "eigenvalues_learned": [[_json_number(v.real), _json_number(v.imag)] for v in ev[p]],
            }
        )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2, allow_nan=False) + "\n")
        print(f"written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
