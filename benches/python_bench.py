"""Benchmarks of the Python package, as ratios measured in one process with interleaved repetitions
(the machines are shared and noisy: medians of alternating runs, never two separate sessions).

1. ``model.jacobian`` on N states against PyTorch autograd on the same network in the same process:
   the physical Jacobian ``J = P diag(dT⁻¹/da) ∂a/∂x`` of the checkpoint, rebuilt in PyTorch from
   ``checkpoint.safetensors`` (``nn.Linear`` layout) and differentiated with ``torch.func.vmap`` of
   ``jacfwd`` and of ``jacrev``, f64, on the same number of threads. Needs ``torch``; skipped without it.
2. Labelling throughput (states/s): the exact RHS of Davis–Skodje as a vectorised Python system
   (``stiffx.System``) against the built-in Rust system, both through the labeller's code path
   (``stiffx.system(...).rhs``: batches of 1024 states over the rayon threads).
3. SciPy BDF on a learned Robertson with ``jac=model.jacobian`` against SciPy's finite-difference
   Jacobian: RHS evaluations, Jacobian evaluations and wall time.

    python benches/python_bench.py CKPT_DS [CKPT_ROBERTSON] [--n 10000] [--reps 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import stiffx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))


def interleaved(fns: dict, reps: int) -> dict:
    """Median seconds of each function, calling them in turn ``reps`` times (after one warm-up)."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def torch_operator(ckpt_dir: Path):
    """The checkpoint's physical RHS as a PyTorch function of one state (for ``torch.func``)."""
    import torch
    from safetensors.torch import load_file

    meta = json.loads((ckpt_dir / "checkpoint.json").read_text())
    tensors = load_file(str(ckpt_dir / meta["weights_file"]))
    layers = []
    for i, (d_in, d_out) in enumerate(meta["network"]["layers"]):
        lin = torch.nn.Linear(d_in, d_out, dtype=torch.float64)
        lin.load_state_dict({"weight": tensors[f"layers.{i}.weight"], "bias": tensors[f"layers.{i}.bias"]})
        layers.append(lin)
    act = {"silu": torch.nn.functional.silu, "exp": torch.exp}[meta["network"]["activation"]]
    norm = meta["normalizer"]
    mean, std = torch.tensor(norm["mean"], dtype=torch.float64), torch.tensor(norm["std"], dtype=torch.float64)
    scale = torch.tensor(norm["state_scale"], dtype=torch.float64) if norm["state_scale"] else None
    cfg = meta["config"]
    log_eps = cfg.get("model", {}).get("eps_input", "linear") == "log"
    tr = cfg["transform"]
    proj = torch.tensor(meta["projector"], dtype=torch.float64) if meta["projector"] else None

    def scales(eps: float):
        if tr["type"] != "asinh":
            return None
        if not tr.get("per_eps") or not tr.get("eps_scales"):
            return torch.tensor(tr["scales"], dtype=torch.float64)
        if tr.get("eps_fit", "power-law") == "power-law" and tr.get("power_law"):
            ab = torch.tensor(tr["power_law"], dtype=torch.float64)
            return torch.exp(ab[:, 0] + ab[:, 1] * np.log(eps))
        raise NotImplementedError("interpolated per-eps scales")

    def make(eps: float):
        s = scales(eps)
        feat = np.log(eps) if log_eps else eps

        def f(x):
            u = x
            if scale is not None:
                u = torch.asinh(x / scale) if norm["state_map"] == "asinh" else torch.log(torch.clamp(x, min=0) + scale)
            h = (torch.cat([u, torch.tensor([feat], dtype=x.dtype)]) - mean) / std
            for lin in layers[:-1]:
                h = act(lin(h))
            a = layers[-1](h)
            y = a if s is None else s * torch.sinh(a)
            return y if proj is None else proj @ y

        return f

    return make


def bench_jacobian(ckpt: Path, n: int, reps: int) -> None:
    model = stiffx.load(ckpt)
    rng = np.random.default_rng(0)
    x0 = model.test_initial_states
    x = x0[rng.integers(0, len(x0), n)] * rng.uniform(0.5, 1.5, (n, model.dim))
    eps = float(model.train_grid[0])
    print(f"## model.jacobian on {n} states ({ckpt}, d = {model.dim}, {model.metadata['num_params']} parameters)\n")
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: skipped (pip install torch).\n")
        return
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    f = torch_operator(Path(ckpt))(eps)
    xt = torch.tensor(x)
    jf, jr = torch.func.vmap(torch.func.jacfwd(f)), torch.func.vmap(torch.func.jacrev(f))
    ours = model.jacobian(x, eps)
    with torch.no_grad():
        diff = float(np.max(np.abs(jf(xt).numpy() - ours)) / np.max(np.abs(ours)))
    t = interleaved(
        {
            "stiffx forward": lambda: model.jacobian(x, eps),
            "stiffx reverse": lambda: model.jacobian(x, eps, mode="reverse"),
            "torch vmap(jacfwd)": lambda: jf(xt),
            "torch vmap(jacrev)": lambda: jr(xt),
        },
        reps,
    )
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; max |J_torch − J_stiffx| / max |J| = {diff:.1e}\n")
    print("| | median ms | states/s | PyTorch vmap(jacfwd) / this |")
    print("|---|---|---|---|")
    for k, v in t.items():
        print(f"| {k} | {v * 1e3:.2f} | {n / v:,.0f} | {t['torch vmap(jacfwd)'] / v:.2f} |")
    print()


def bench_labelling(n: int, reps: int) -> None:
    from pysystems import DavisSkodje

    rust, py = stiffx.system("davis-skodje"), stiffx.system(DavisSkodje())
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.uniform(0.5, 2.5, n), rng.uniform(0.0, 2.0, n)])
    eps = rng.choice([0.05, 0.1, 0.2], n)
    assert np.allclose(rust.rhs(x, eps), py.rhs(x, eps), rtol=1e-14, atol=0)
    t = interleaved({"Rust system": lambda: rust.rhs(x, eps), "Python system (NumPy)": lambda: py.rhs(x, eps)}, reps)
    print(f"## Labelling throughput, Davis–Skodje, {n} states (batches of 1024)\n")
    print("| system | median ms | states/s | Rust / this |")
    print("|---|---|---|---|")
    for k, v in t.items():
        print(f"| {k} | {v * 1e3:.2f} | {n / v:,.0f} | {t['Rust system'] / v:.2f} |")
    print()


def bench_scipy(ckpt: Path, reps: int) -> None:
    from scipy.integrate import solve_ivp

    model = stiffx.load(ckpt)
    x0, eps = model.test_initial_states[0], 1.0
    times = np.concatenate([[0.0], np.logspace(-5, 3, 17)])
    atol = [1e-10, 1e-16, 1e-10]

    calls = [0]

    def rhs(t, x):
        calls[0] += 1
        return model.rhs(x, eps)

    def solve(jac):
        calls[0] = 0
        r = solve_ivp(rhs, (0.0, times[-1]), x0, method="BDF", t_eval=times,
                      rtol=1e-6, atol=atol, jac=(lambda t, x: model.jacobian(x, eps)) if jac else None)
        r.calls = calls[0]
        return r

    a, b = solve(True), solve(False)
    t = interleaved({"learned Jacobian": lambda: solve(True), "finite differences": lambda: solve(False)}, reps)
    print(f"## SciPy BDF on the learned Robertson ({ckpt}), rtol 1e-6, t to 1e3\n")
    print("`nfev` is SciPy's count, which leaves out the evaluations its finite-difference Jacobian makes;")
    print("`RHS calls` counts every call of the RHS function, those included.\n")
    print("| Jacobian | nfev | RHS calls | njev | median ms |")
    print("|---|---|---|---|---|")
    print(f"| learned (`jac=model.jacobian`) | {a.nfev} | {a.calls} | {a.njev} | {t['learned Jacobian'] * 1e3:.1f} |")
    print(f"| SciPy finite differences | {b.nfev} | {b.calls} | {b.njev} | {t['finite differences'] * 1e3:.1f} |")
    err = np.max(np.abs(a.y - b.y) / (np.ptp(a.y, axis=1, keepdims=True) + 1e-300))
    print(f"\nlargest difference between the two solutions, per species relative to its range: {err:.1e}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ds", type=Path, help="a checkpoint for the Jacobian benchmark")
    p.add_argument("robertson", type=Path, nargs="?", help="a Robertson checkpoint for the SciPy benchmark")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=15)
    a = p.parse_args()
    bench_jacobian(a.ds, a.n, a.reps)
    bench_labelling(100 * a.n, a.reps)
    if a.robertson:
        bench_scipy(a.robertson, a.reps)


if __name__ == "__main__":
    main()
