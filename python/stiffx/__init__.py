"""stiffx from Python: learned stiff operators as NumPy functions, runs from a notebook, and systems
defined in Python.

Everything numerical runs in the stiffx Rust crate (the same code as the ``stiffx`` command line), so
``Model.rhs`` and ``Model.jacobian`` equal ``stiffx inspect`` bit for bit.

A learned operator is

    F(x, eps) = P T⁻¹(a(h0)),    J(x, eps) = ∂F/∂x = P diag(dT⁻¹/da) ∂a/∂x

with ``h0`` the standardised inputs (state map, eps map), ``a`` the network, ``T`` the target
transform and ``P`` the projector onto the system's linear invariants (``docs/checkpoint-format.md``).

Quick start::

    import stiffx
    res = stiffx.run("configs/tiny.toml", out="runs/tiny")     # train and evaluate
    model = res.model()                                        # or stiffx.load("runs/tiny")
    J = model.jacobian([[1.0, 0.2]], eps=0.1)                  # (1, 2, 2)
    scipy.integrate.solve_ivp(lambda t, x: model.rhs(x, 0.1), (0, 5), [1, 0],
                              method="BDF", jac=lambda t, x: model.jacobian(x, 0.1))
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _stiffx
from ._stiffx import StiffxError

__all__ = ["StiffxError", "Model", "RunResult", "System", "ExactSystem", "load", "run", "system", "plugins", "__version__"]

__version__: str = _stiffx.version()

ArrayLike = Union[np.ndarray, Sequence[float], Sequence[Sequence[float]]]
PathLike = Union[str, "os.PathLike[str]"]


def _points(x: ArrayLike, eps: Union[float, ArrayLike], dim: int) -> Tuple[np.ndarray, np.ndarray, bool]:
    """``x`` as a C-contiguous ``(n, d)`` float64 array and ``eps`` as ``(n,)``; whether ``x`` was one state."""
    xa = np.asarray(x, dtype=np.float64)
    single = xa.ndim == 1
    if single:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[1] != dim:
        raise StiffxError(f"x has shape {np.shape(x)}: expected ({dim},) or (n, {dim})")
    ea = np.asarray(eps, dtype=np.float64)
    if ea.ndim == 0:
        ea = np.full(xa.shape[0], float(ea))
    if ea.shape != (xa.shape[0],):
        raise StiffxError(f"eps has shape {ea.shape}: expected a number or ({xa.shape[0]},)")
    return np.ascontiguousarray(xa), np.ascontiguousarray(ea), single


class Model:
    """A trained stiff operator loaded from a checkpoint (format 1 or 2), evaluated in f64.

    ``rhs``, ``jacobian`` and ``eigenvalues`` take one state ``(d,)`` or a batch ``(n, d)`` and a
    stiffness value (a number, or one per state) and return NumPy arrays.
    """

    def __init__(self, path: PathLike, backend: str = "flex") -> None:
        self._m = _stiffx.Model(os.fspath(path), backend)
        self._meta: Dict[str, Any] = json.loads(self._m.metadata_json())
        #: State dimension ``d``.
        self.dim: int = self._m.dim
        #: Names of the state components.
        self.state_names: List[str] = self._m.state_names
        #: Name of the stiffness parameter.
        self.param_name: str = self._m.param_name
        train, unseen = self._m.grids
        #: Stiffness values trained on, and held out.
        self.train_grid: np.ndarray = np.asarray(train)
        self.unseen_grid: np.ndarray = np.asarray(unseen)
        #: The system's test initial states, ``(m, d)``.
        self.test_initial_states: np.ndarray = np.asarray(self._m.test_initial_states, dtype=np.float64)

    @property
    def metadata(self) -> Dict[str, Any]:
        """Format, path, epoch, validation loss, system name, parameter count, the resolved config
        and (mass-action networks) the learned reactions."""
        return self._meta

    @property
    def config(self) -> Dict[str, Any]:
        """The resolved config of the run (the fitted transform included)."""
        return self._meta["config"]

    def rhs(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> np.ndarray:
        """The learned RHS ``F(x, eps)``: ``(d,)`` for one state, ``(n, d)`` for a batch."""
        xa, ea, single = _points(x, eps, self.dim)
        f = self._m.rhs(xa, ea).reshape(xa.shape)
        return f[0] if single else f

    def jacobian(self, x: ArrayLike, eps: Union[float, ArrayLike], mode: str = "forward") -> np.ndarray:
        """The learned Jacobian ``∂F_i/∂x_j`` (row ``i``): ``(d, d)`` or ``(n, d, d)``. ``mode``:
        ``"forward"`` (tangents) or ``"reverse"`` (autodiff, the paper's Alg. 1); they agree to rounding."""
        xa, ea, single = _points(x, eps, self.dim)
        j = self._m.jacobian(xa, ea, mode).reshape(xa.shape[0], self.dim, self.dim)
        return j[0] if single else j

    def eigenvalues(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> np.ndarray:
        """Eigenvalues of the learned Jacobian, sorted by decreasing modulus: complex ``(d,)`` or ``(n, d)``."""
        xa, ea, single = _points(x, eps, self.dim)
        re, im = self._m.eigenvalues(xa, ea)
        ev = (re + 1j * im).reshape(xa.shape)
        return ev[0] if single else ev

    def exact_rhs(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> np.ndarray:
        """The true RHS of the checkpoint's system (for comparison)."""
        xa, ea, single = _points(x, eps, self.dim)
        f = self._m.exact_rhs(xa, ea).reshape(xa.shape)
        return f[0] if single else f

    def exact_jacobian(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> np.ndarray:
        """The true Jacobian of the checkpoint's system."""
        xa, ea, single = _points(x, eps, self.dim)
        j = self._m.exact_jacobian(xa, ea).reshape(xa.shape[0], self.dim, self.dim)
        return j[0] if single else j

    def rollout(
        self, x0: ArrayLike, eps: Union[float, ArrayLike], times: ArrayLike, rtol: float = 1e-6, atol: float = 1e-10
    ) -> np.ndarray:
        """stiffx's own BDF on the learned RHS (learned Jacobian in Newton), from each initial state,
        sampled at ``times`` (increasing, starting at the initial time): ``(T, d)`` or ``(m, T, d)``;
        NaN where the solver fails."""
        xa, ea, single = _points(x0, eps, self.dim)
        t = [float(v) for v in np.asarray(times, dtype=np.float64).ravel()]
        y = self._m.rollout(xa, ea, t, rtol, atol).reshape(xa.shape[0], len(t), self.dim)
        return y[0] if single else y

    def reference(
        self, x0: ArrayLike, eps: Union[float, ArrayLike], times: ArrayLike, rtol: float = 1e-10, atol: float = 1e-14
    ) -> np.ndarray:
        """stiffx's BDF on the true system (exact Jacobian): ``(T, d)`` or ``(m, T, d)``."""
        xa, ea, single = _points(x0, eps, self.dim)
        t = [float(v) for v in np.asarray(times, dtype=np.float64).ravel()]
        y = self._m.reference(xa, ea, t, rtol, atol).reshape(xa.shape[0], len(t), self.dim)
        return y[0] if single else y

    def __repr__(self) -> str:
        m = self._meta
        return (
            f"stiffx.Model(system={m['system']!r}, dim={self.dim}, params={m['num_params']}, "
            f"epoch={m['epoch']}, path={m['path']!r})"
        )


def load(path: PathLike, backend: str = "flex") -> Model:
    """Loads a checkpoint: a ``checkpoint.json`` (format 1 or 2) or the run directory holding it.

    A checkpoint of a system defined in Python needs that system importable (the module and class it
    records), or passed once to :func:`run` in this process; otherwise :class:`StiffxError` says which.
    """
    return Model(path, backend)


@dataclass
class RunResult:
    """What :func:`run` returns."""

    #: Every metric of ``metrics.json`` (nested dicts).
    metrics: Dict[str, Any]
    #: The run directory (``checkpoint.json``, ``per_eps.csv``, … ).
    out: Path
    #: The per-eps table as columns: ``per_eps["eps"]``, ``per_eps["rollout_rel"]``, … (NumPy arrays).
    per_eps: Dict[str, np.ndarray] = field(default_factory=dict)

    def model(self, backend: str = "flex") -> Model:
        """The trained operator (the best-validation checkpoint)."""
        return Model(self.out / "checkpoint.json", backend)

    def to_pandas(self):  # pragma: no cover - pandas is optional
        """The per-eps table as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.per_eps)


class _Progress:
    """Progress the Python way: ``tqdm`` when it is installed, else one line per tenth on stderr."""

    def __init__(self) -> None:
        self._bar = None
        self._last = -1
        try:
            from tqdm.auto import tqdm  # type: ignore

            self._tqdm = tqdm
        except ImportError:
            self._tqdm = None

    def __call__(self, stage: str, done: int, total: int, info: Optional[Tuple[Tuple[str, float], ...]]) -> None:
        if stage != "train":
            if stage == "evaluate" and done == 0:
                self.close()
                print("stiffx: evaluating …", file=sys.stderr, flush=True)
            elif stage == "data":
                print("stiffx: data sampled and labelled", file=sys.stderr, flush=True)
            return
        losses = dict(info) if info else {}
        if self._tqdm is not None:
            if self._bar is None:
                self._bar = self._tqdm(total=total, desc="stiffx train", unit="epoch")
            self._bar.n = done
            if losses:
                self._bar.set_postfix({k: f"{v:.3e}" for k, v in losses.items()}, refresh=False)
            self._bar.refresh()
            return
        tenth = (10 * done) // max(total, 1)
        if tenth != self._last:
            self._last = tenth
            loss = f", val loss {losses['val_loss']:.3e}" if "val_loss" in losses else ""
            print(f"stiffx: epoch {done}/{total}{loss}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


ProgressArg = Union[bool, Callable[[str, int, int, Optional[Tuple[Tuple[str, float], ...]]], None]]


def run(
    config: Union[PathLike, Mapping[str, Any]],
    out: Optional[PathLike] = None,
    *,
    system: Optional["System"] = None,
    seed: Optional[int] = None,
    progress: ProgressArg = True,
    backend: str = "flex",
    figures: bool = False,
) -> RunResult:
    """Samples, labels, trains and evaluates one config, like ``stiffx run``.

    ``config``: a TOML file's path, or a dict with the same structure (``{"system": {...}, "model":
    {...}, ...}``). ``system``: a :class:`System` (an object following its protocol) that replaces the
    config's ``[system]``. ``out``: the run directory (default: a new temporary directory). ``progress``:
    True (tqdm or stderr lines), False, or a callable ``(stage, done, total, info)``. The interpreter
    lock is released while stiffx trains; it is taken only to call ``system`` and ``progress``.
    """
    if isinstance(config, Mapping):
        text, is_path = json.dumps(config), False
    else:
        text, is_path = os.fspath(config), True
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="stiffx-run-"))
    bar = _Progress() if progress is True else None
    callback = bar if bar is not None else (progress if callable(progress) else None)
    try:
        metrics_json = _stiffx.run(text, is_path, os.fspath(out_dir), system, callback, backend, figures, seed)
    finally:
        if bar is not None:
            bar.close()
    metrics = json.loads(metrics_json)
    rows = metrics.get("eval", {}).get("per_eps", [])
    per_eps: Dict[str, np.ndarray] = {}
    for key in rows[0].keys() if rows else []:
        col = [r.get(key) for r in rows]
        if all(isinstance(v, (int, float)) or v is None for v in col):
            per_eps[key] = np.asarray([np.nan if v is None else v for v in col], dtype=np.float64)
    return RunResult(metrics=metrics, out=out_dir, per_eps=per_eps)


class ExactSystem:
    """A stiff system itself — built in, a mechanism file, or defined in Python — with its exact RHS
    and Jacobian, computed by the code that labels training data (see :func:`system`)."""

    def __init__(self, spec: Union[str, Mapping[str, Any], "System"]) -> None:
        if isinstance(spec, str):
            self._s = _stiffx.ExactSystem(json.dumps({"type": spec}))
        elif isinstance(spec, Mapping):
            self._s = _stiffx.ExactSystem(json.dumps(dict(spec)))
        else:
            self._s = _stiffx.ExactSystem(None, spec)
        #: State dimension ``d``.
        self.dim: int = self._s.dim
        #: Names of the state components.
        self.state_names: List[str] = self._s.state_names
        train, unseen = self._s.grids
        #: Stiffness values to train on, and held out.
        self.train_grid: np.ndarray = np.asarray(train)
        self.unseen_grid: np.ndarray = np.asarray(unseen)
        #: Test initial states ``(m, d)``.
        self.test_initial_states: np.ndarray = np.asarray(self._s.test_initial_states, dtype=np.float64)
        #: Conservation laws ``w`` (rows) with ``w·F = 0``.
        self.invariants: np.ndarray = np.asarray(self._s.invariants, dtype=np.float64)

    @property
    def spec(self) -> Dict[str, Any]:
        """The system as a config's ``[system]`` table."""
        return json.loads(self._s.spec_json())

    def rhs(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> np.ndarray:
        """The exact RHS: ``(d,)`` or ``(n, d)`` (batches of 1024 states over all cores)."""
        xa, ea, single = _points(x, eps, self.dim)
        f = self._s.rhs(xa, ea).reshape(xa.shape)
        return f[0] if single else f

    def jacobian(self, x: ArrayLike, eps: Union[float, ArrayLike]) -> np.ndarray:
        """The exact Jacobian: ``(d, d)`` or ``(n, d, d)``."""
        xa, ea, single = _points(x, eps, self.dim)
        j = self._s.jacobian(xa, ea).reshape(xa.shape[0], self.dim, self.dim)
        return j[0] if single else j


def system(spec: Union[str, Mapping[str, Any], "System"]) -> ExactSystem:
    """A system by registered name (``"robertson"``), as a ``[system]`` table
    (``{"type": "mechanism", "file": "mechanisms/pollu.yaml"}``), or a Python :class:`System`."""
    return ExactSystem(spec)


def plugins() -> List[Tuple[str, str, str]]:
    """Every registered plugin: ``(kind, name, description)``, as ``stiffx list`` prints them."""
    return list(_stiffx.plugins())


class System:
    """Base class (and protocol) of a stiff system defined in Python.

    Subclass it and set the attributes; stiffx calls the methods in batches:

    - ``dim`` (int), ``state_names`` (list of str, optional), ``param_name`` (optional, ``"eps"``);
    - ``train_grid``, ``unseen_grid``: stiffness values to train on and to hold out;
    - ``test_initial_states``: ``(m, d)`` initial states for rollouts and spectral evaluation;
    - ``initial_ranges``: ``d`` pairs ``(low, high)`` for uniform training initial states, or a method
      ``sample_initial(self, rng)`` returning one state ``(d,)`` drawn with the ``numpy.random.Generator``
      it is given (seeded from the run's seed, so runs reproduce);
    - ``rhs(self, x, eps)``: ``x`` is ``(n, d)``, ``eps`` is ``(n,)``; return ``(n, d)``;
    - ``jacobian(self, x, eps)`` (optional; else central finite differences): return ``(n, d, d)``;
    - ``invariants`` (optional): rows ``w`` with ``w·F = 0`` (conservation laws).

    A class that constructs without arguments can be reloaded from a checkpoint in another process
    (its module must be importable); its source hash is recorded, and a changed class is refused.
    """

    dim: int
    train_grid: Sequence[float]
    unseen_grid: Sequence[float] = ()
    test_initial_states: Sequence[Sequence[float]]

    def rhs(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
