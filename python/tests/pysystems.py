"""Stiff systems defined in Python for the tests (an importable module, so that checkpoints of runs
on them reload in another process)."""

from __future__ import annotations

import numpy as np

import stiffx


class DavisSkodje(stiffx.System):
    """Davis–Skodje (the paper's system), vectorised: ``y' = -y``, ``z' = -(z - y/(1+y))/eps``."""

    dim = 2
    state_names = ["y", "z"]
    train_grid = [0.05, 0.1, 0.2]
    unseen_grid = [0.15]
    test_initial_states = [[0.75, 0.75 / 1.75 + 0.5], [1.5, 1.5 / 2.5 + 1.0], [2.25, 2.25 / 3.25 + 0.35]]
    calls = {"rhs": 0, "jacobian": 0, "states": 0}

    def sample_initial(self, rng: np.random.Generator) -> np.ndarray:
        y0 = rng.uniform(0.5, 2.5)
        return np.array([y0, y0 / (1 + y0) + rng.uniform(0.25, 1.0)])

    def rhs(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        DavisSkodje.calls["rhs"] += 1
        DavisSkodje.calls["states"] += len(x)
        y, z = x[:, 0], x[:, 1]
        return np.stack([-y, -(z - y / (1 + y)) / eps], axis=1)

    def jacobian(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        DavisSkodje.calls["jacobian"] += 1
        y = x[:, 0]
        j = np.zeros((len(x), 2, 2))
        j[:, 0, 0] = -1.0
        j[:, 1, 0] = 1.0 / ((1 + y) ** 2 * eps)
        j[:, 1, 1] = -1.0 / eps
        return j


class Broken(DavisSkodje):
    """A system whose RHS raises: the exception must reach the caller unchanged."""

    def rhs(self, x, eps):
        raise ZeroDivisionError("broken on purpose")


class WrongShape(DavisSkodje):
    """A system whose RHS returns the wrong shape."""

    def rhs(self, x, eps):
        return np.zeros((len(x), 3))


class FailsAt(DavisSkodje):
    """Davis–Skodje whose ``fail_at``-th RHS call raises; counts the calls made after that one (a
    run must stop calling Python once a method has raised)."""

    def __init__(self, fail_at: int):
        self.fail_at = fail_at
        self.n = 0
        self.after = 0

    def rhs(self, x, eps):
        self.n += 1
        if self.n > self.fail_at:
            self.after += 1
        if self.n == self.fail_at:
            raise RuntimeError(f"failed at call {self.n}")
        return super().rhs(x, eps)
