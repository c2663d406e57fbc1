"""The learned operator in the user's own solver: SciPy's stiff integrators with ``jac=model.jacobian``
agree with stiffx's own BDF rollout of the same model, and use the Jacobian instead of finite
differences."""

from __future__ import annotations

import numpy as np
import pytest

scipy_integrate = pytest.importorskip("scipy.integrate")

import stiffx  # noqa: E402


def scipy_solve(model: stiffx.Model, x0, eps: float, times, method: str, rtol: float, atol, jac: bool = True):
    """``solve_ivp`` on the learned RHS; ``sol.rhs_calls`` counts every call of the RHS, including the
    ones SciPy makes for its finite-difference Jacobian (which its ``nfev`` leaves out)."""
    calls = [0]

    def f(t, x):
        calls[0] += 1
        return model.rhs(x, eps)

    sol = scipy_integrate.solve_ivp(
        f,
        (times[0], times[-1]),
        x0,
        method=method,
        t_eval=times,
        rtol=rtol,
        atol=atol,
        jac=(lambda t, x: model.jacobian(x, eps)) if jac else None,
    )
    sol.rhs_calls = calls[0]
    return sol


@pytest.mark.parametrize("method", ["BDF", "Radau"])
def test_davis_skodje_scipy_matches_stiffx_bdf(ds_run, method):
    model = ds_run.model()
    times = np.linspace(0.0, 1.0, 21)
    for x0 in model.test_initial_states:
        for eps in model.train_grid:
            sol = scipy_solve(model, x0, eps, times, method, rtol=1e-8, atol=1e-12)
            assert sol.success, sol.message
            ours = model.rollout(x0, eps, times, rtol=1e-8, atol=1e-12)
            diff = np.linalg.norm(sol.y.T - ours) / np.linalg.norm(ours)
            assert diff < 1e-6, (method, x0, eps, diff)
            assert sol.njev > 0
            # And the learned trajectory against the true one (a seconds-long training: loose).
            true = model.reference(x0, eps, times)
            assert np.linalg.norm(sol.y.T - true) / np.linalg.norm(true) < 0.2


def test_robertson_scipy_matches_stiffx_bdf(rob_run):
    model = rob_run.model()
    times = np.concatenate([[0.0], np.logspace(-5, 3, 17)])
    x0 = model.test_initial_states[0]
    atol = [1e-10, 1e-16, 1e-10]
    sol = scipy_solve(model, x0, 1.0, times, "BDF", rtol=1e-8, atol=atol)
    assert sol.success, sol.message
    ours = model.rollout(x0, 1.0, times, rtol=1e-8, atol=1e-16)
    assert np.all(np.isfinite(ours))
    # Per species relative to its range, as the rollout metrics measure it.
    scale = np.ptp(ours, axis=0) + 1e-300
    err = np.max(np.abs(sol.y.T - ours) / scale)
    assert err < 1e-4, err


def test_learned_jacobian_saves_rhs_evaluations(ds_run):
    model = ds_run.model()
    x0, eps, times = model.test_initial_states[1], 0.05, np.linspace(0.0, 1.0, 11)
    with_j = scipy_solve(model, x0, eps, times, "BDF", 1e-8, 1e-12, jac=True)
    fd = scipy_solve(model, x0, eps, times, "BDF", 1e-8, 1e-12, jac=False)
    assert with_j.success and fd.success
    assert with_j.rhs_calls < fd.rhs_calls, (with_j.rhs_calls, fd.rhs_calls)
    assert np.allclose(with_j.y, fd.y, rtol=1e-5, atol=1e-8)
