"""The main job of stiffx (`stiffx run --config configs/asinh_cloud.toml`) ported to PyTorch, NumPy and
SciPy end to end, timed phase by phase (issue 25): what a PyTorch user would write for the same recipe.

    python benches/peer/main_job_torch.py --config configs/asinh_cloud.toml --epochs 20 --out /tmp/port

Writes DIR/metrics.json (keys as in stiffx's `metrics.json` for what is ported: `n_train`, `n_val`,
`best_val_loss`, `best_epoch`, `epochs`, `train_samples_per_sec`, `label_bias`, `eval.per_eps`,
`eval.reference`, `eval.grid_mean`; `seconds` has `sample`, `label`, `train`, `eval` like stiffx's plus
`data` = sample + label, `prepare` (split, standardisation, transform fit: in no stiffx phase) and
`total`, from the script's first line, imports included, to the end of the evaluation), DIR/checkpoint.pt
(the best-validation weights, saved at each improvement as stiffx saves checkpoint.json) and
DIR/loss_curve.csv.

The same recipe as stiffx (the Rust file each step follows):
- data (`plugins/sampler.rs`, `plugins/cloud.rs`, `systems/davis_skodje.rs`): per training eps, `per_eps`
  Davis–Skodje trajectories (y' = -y, z' = -(z - y/(1+y))/eps) from y0 ~ U[y0_min, y0_max],
  z0 = h(y0) + U[dz_min, dz_max], sampled every dt to the horizon; the fuzzy cloud: `k` copies of every
  trajectory point, the last floor(r_off·k) of them pushed along the normal, t = F/(|F| + 1e-12),
  n = (-t2, t1), abs spreads sigma_t and sigma_n; the base points kept;
- labels (`plugins/labeller.rs`): burst central differences (x(tau) - x(-tau))/(2 tau) from adaptive
  5(4) integrations (rtol, atol of the config); `scaled`: tau halved until tau·rho(J) <= tau_scale
  (rho = 1/eps for Davis–Skodje, eps < 1), `fixed` and `richardson` as stiffx's; or `direct` labels;
- preparation (`engine/prepare.rs`, `plugins/transform.rs`, `model/normalizer.rs`): a seeded split with
  round(n·val_fraction) validation rows, inputs (y, z, eps) standardised by the training split's mean and
  population std, targets asinh(F/s_k(eps)) with s_k(eps) = exp(a_k + b_k ln eps), the least-squares
  power law through the per-eps scales Q_q(|F - median F|)/Phi^-1((1+q)/2) (nearest-rank quantile) of the
  training split (or one scale per component, `per_eps = false`; or no transform);
- training (`train/mod.rs`): the 3 -> hidden x width SiLU -> 2 MLP in f32 with PyTorch's default
  initialisation (stiffx's `Weights::init` draws the same distribution), Adam (eps 1e-8), the mean
  squared error, shuffled batches (the last one short), lr per epoch constant or cosine from lr to
  lr_final over the epochs, the validation loss after every epoch, the best weights kept (epoch 0 = the
  initial network);
- evaluation (`eval/evaluate.rs`, `eval/metrics/`): at every eval eps (the training grid) and
  reference_eps, reference trajectories from the three fixed test states (rtol 1e-11, atol 1e-13),
  RK4 rollouts of the learned field in f64 with step dt to the horizon, the learned physical Jacobian
  at every reference point (forward mode, `vmap(jacfwd)`, f64, through standardisation and transform),
  its eigenvalues sorted by decreasing modulus against the exact ones (-1/eps, -1); per eps the rollout
  L2 (eq. 17) and per-species relative error, fast/slow absolute and relative errors (eq. 18), their
  nearest-rank p50/p95/p99/max, all_rel, all_within, complex_fraction, the fast-eigenvector angle; the
  grid mean, the reference eps and the pooled pointwise quantiles.

Where it differs (none of it changes the recipe's counts or definitions):
- random numbers: NumPy's and torch's generators, not stiffx's StdRng: other trajectories, cloud
  offsets, split, initial weights and batch order (metrics agree to seed noise, not to the bit);
- ODE solvers: SciPy's DOP853 with dense output at the sample times for trajectories and references
  (stiffx: diffsol's Tsit5 stepping to each output time), SciPy's RK45 (Dormand–Prince 5(4)) for the
  bursts, one vectorised solve per (eps, tau) group with SciPy's RMS error norm over all its lanes
  (stiffx: Tsit5 over batches of 64 lanes, max over lanes of each lane's RMS norm);
- nothing else is written (no per_eps.csv, traces.csv, label_bias.csv, figures); `worst_*` fields, the
  worst point and the eps windows are left out; the network is trained in one thread pool (PyTorch's
  intra-op threads, `--threads`), not in stiffx's data-parallel shards (the same gradient); the RK4
  rollouts run on one thread (27 points per call: PyTorch's pool of 2 made them 5x slower);
- Phi^-1 of the transform's scale is SciPy's `norm.ppf` (stiffx: Acklam's approximation, 1e-9).
- only what the main job's configs use is implemented: Davis–Skodje, `trajectory`/`cloud` sampling,
  `burst`/`direct` labels, `asinh`/`identity` targets, a plain MLP with uniform MSE and Adam, RK4
  evaluation on linear times. Any other setting stops the port with exit 2 and the field named.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # `seconds.total` counts the imports below

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

TRAIN_EPS = [0.010, 0.020, 0.030, 0.040, 0.050, 0.075, 0.100, 0.200, 0.300]
UNSEEN_EPS = [0.015, 0.025, 0.035, 0.045, 0.060, 0.090, 0.150, 0.250]

# Every field the port knows, with stiffx's default (the serde defaults in src/; `configs/defaults.toml`
# spells them out). A table's `type` picks its defaults. A field missing here stops the port.
DEFAULTS = {
    "system:davis-skodje": dict(y0_min=0.5, y0_max=2.5, dz_min=0.25, dz_max=1.25, train_eps=TRAIN_EPS,
                                unseen_eps=UNSEEN_EPS),
    "sampler:trajectory": dict(per_eps=16, horizon=6.0, dt=0.01, spacing="linear", t_first=1e-6, points=200,
                               method="tsit45", rtol=1e-10, atol=1e-12),
    "sampler:cloud": dict(base=None, k=8, sigma_t=0.02, sigma_n=0.2, r_off=0.5, normal_mode="abs",
                          tangent_mode="abs", directions="velocity", keep_base=True, fast_dim=1, positivity=0.0,
                          boundary_quantile=0.0),
    "labeller:burst": dict(tau=1e-2, mode="fixed", tau_scale=0.02, rtol=1e-9, atol=1e-12, batch=64),
    "labeller:direct": dict(),
    "transform:asinh": dict(scales=[], per_eps=False, eps_fit="power-law", quantile=0.5),
    "transform:identity": dict(),
    "model": dict(hidden=4, width=128, eps_input="linear", state_input="linear", activation="silu",
                  state_quantile=0.05, project_invariants=True, eliminate=[], keep_orders=True),
    "train": dict(epochs=200, batch=8192, lr=1e-3, lr_final=1e-5, schedule="constant", val_fraction=0.1, shards=0,
                  weighting="uniform", weight_floor=1e-2, difference=0.0, difference_floor=1e-2, jacobian=0.0,
                  jacobian_floor=1e-2, order_l1=0.0, lbfgs=0, lbfgs_history=50, precision="f32"),
    "eval": dict(dt=0.01, horizon=6.0, spacing="linear", t_first=1e-5, points=200, eps=[], reference_eps=0.05,
                 reference_rtol=1e-11, integrator="rk4", rollout_rtol=1e-6, rollout_atol=1e-9,
                 reference_method="tsit45", reference_atol=1e-13),
}
# Fields whose other values the port does not implement: field -> the values it does.
ONLY = {
    "sampler.spacing": ["linear"], "sampler.base.spacing": ["linear"], "sampler.normal_mode": ["abs"],
    "sampler.tangent_mode": ["abs"], "sampler.directions": ["velocity"], "sampler.positivity": [0.0],
    "sampler.boundary_quantile": [0.0], "transform.scales": [[]], "transform.eps_fit": ["power-law"],
    "model.eps_input": ["linear", "log"], "model.state_input": ["linear"], "model.activation": ["silu"],
    "train.schedule": ["constant", "cosine"], "train.weighting": ["uniform"], "train.difference": [0.0],
    "train.jacobian": [0.0], "train.order_l1": [0.0], "train.lbfgs": [0], "train.precision": ["f32"],
    "eval.spacing": ["linear"], "eval.integrator": ["rk4"], "sampler.method": ["tsit45"],
    "sampler.base.method": ["tsit45"], "eval.reference_method": ["tsit45"],
}
# The plugin of a table that names none (stiffx's `Config::default`).
TYPES = {"system": "davis-skodje", "sampler": "trajectory", "labeller": "direct", "transform": "identity"}


def die(message: str) -> None:
    """Bad input: the message on stderr, exit 2 (as stiffx does)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def resolve(table: dict, name: str, kind: str) -> dict:
    """`table` ([name] of the config) over the defaults of `kind`, each field checked against `ONLY`."""
    if kind not in DEFAULTS:
        die(f"error: {name}.type: {kind.split(':')[1]!r} is not ported (supported: "
            f"{', '.join(k.split(':')[1] for k in DEFAULTS if k.startswith(name.split('.')[0] + ':'))})")
    out = dict(DEFAULTS[kind])
    for key, value in table.items():
        if key == "type":
            continue
        if key not in out:
            die(f"error: {name}.{key}: not supported by the PyTorch port (it implements: {', '.join(out)})")
        allowed = ONLY.get(f"{name}.{key}")
        if allowed is not None and value not in allowed:
            die(f"error: {name}.{key}: {value!r} is not ported (supported: {', '.join(map(repr, allowed))})")
        out[key] = value
    return out


def load_config(path: str) -> dict:
    """The config as stiffx resolves it, for the fields the port implements (exit 2 on any other)."""
    raw = tomllib.loads(Path(path).read_text())
    for key in raw:
        if key not in ("seed", "system", "sampler", "labeller", "transform", "model", "train", "eval"):
            die(f"error: {key}: not supported by the PyTorch port")
    cfg = {"seed": raw.get("seed", 1)}
    for name in ("system", "sampler", "labeller", "transform"):
        t = raw.get(name, {})
        cfg[name] = resolve(t, name, f"{name}:{t.get('type', TYPES[name])}")
        cfg[name]["type"] = t.get("type", TYPES[name])
    if cfg["sampler"]["type"] == "cloud":
        base = raw["sampler"].get("base", {"type": "trajectory"})
        if base.get("type", "trajectory") != "trajectory":
            die(f"error: sampler.base.type: {base['type']!r} is not ported (supported: 'trajectory')")
        cfg["sampler"]["base"] = resolve(base, "sampler.base", "sampler:trajectory")
    for name in ("model", "train", "eval"):
        cfg[name] = resolve(raw.get(name, {}), name, name)
    return cfg


# ---- Davis–Skodje (systems/davis_skodje.rs) ------------------------------------------------------


def h(y):
    return y / (1.0 + y)


def rhs(x: np.ndarray, eps) -> np.ndarray:
    """F(x, eps) at n points, x: n x 2, eps: scalar or n."""
    y, z = x[:, 0], x[:, 1]
    return np.stack([-y, -(z - h(y)) / eps], axis=1)


def exact_jacobian(x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    y = x[:, 0]
    j = np.zeros((len(x), 2, 2))
    j[:, 0, 0] = -1.0
    j[:, 1, 0] = 1.0 / ((1.0 + y) ** 2 * eps)
    j[:, 1, 1] = -1.0 / eps
    return j


def sorted_eigs(j: np.ndarray):
    """Eigenvalues (n x 2, complex) and eigenvectors (columns) of n 2x2 matrices, by decreasing modulus
    (ties: by real part, then imaginary part, as stiffx's `sort_by_magnitude`)."""
    w, v = np.linalg.eig(j)
    w, v = w.astype(complex), v.astype(complex)
    a, b = w[:, 0], w[:, 1]
    swap = (np.abs(b) > np.abs(a)) | (
        (np.abs(b) == np.abs(a)) & ((b.real < a.real) | ((b.real == a.real) & (b.imag < a.imag))))
    w[swap], v[swap] = w[swap][:, ::-1], v[swap][:, :, ::-1]
    return w, v


def solve(x0: np.ndarray, eps: float, t_end: float, times, rtol: float, atol: float, method: str) -> np.ndarray:
    """Integrates every row of x0 (m x 2) as one vectorised problem; returns m x len(times) x 2 (the state at
    t_end as m x 1 x 2 when `times` is None). A negative t_end integrates backward."""
    fun = lambda t, u: rhs(u.reshape(-1, 2), eps).ravel()  # noqa: E731
    sol = scipy.integrate.solve_ivp(fun, (0.0, t_end), x0.ravel(), method=method, t_eval=times, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"eps = {eps}: {sol.message}")
    y = sol.y if times is not None else sol.y[:, -1:]
    return y.reshape(len(x0), 2, -1).transpose(0, 2, 1)


def output_times(dt: float, horizon: float) -> np.ndarray:
    return np.arange(math.floor(horizon / dt + 1e-9) + 1) * dt


# ---- data: sampling and labelling ----------------------------------------------------------------


def sample(cfg: dict, rng: np.random.Generator):
    """States (n x 2) and their eps (n) of the sampler: trajectory points, then the cloud around them."""
    s, sysc = cfg["sampler"], cfg["system"]
    base = s["base"] if s["type"] == "cloud" else s
    times = output_times(base["dt"], base["horizon"])
    xs, es = [], []
    for eps in sysc["train_eps"]:
        y0 = rng.uniform(sysc["y0_min"], sysc["y0_max"], base["per_eps"])
        x0 = np.stack([y0, h(y0) + rng.uniform(sysc["dz_min"], sysc["dz_max"], base["per_eps"])], axis=1)
        traj = solve(x0, eps, times[-1], times, base["rtol"], base["atol"], "DOP853")
        xs.append(traj.reshape(-1, 2))
        es.append(np.full(traj.shape[0] * traj.shape[1], eps))
    xb, eb = np.concatenate(xs), np.concatenate(es)
    if s["type"] != "cloud":
        return xb, eb
    k, k_off = s["k"], math.floor(s["r_off"] * s["k"])
    f = rhs(xb, eb)
    t = f / (np.hypot(f[:, 0], f[:, 1]) + 1e-12)[:, None]
    n = np.stack([-t[:, 1], t[:, 0]], axis=1) / (np.hypot(t[:, 0], t[:, 1]) + 1e-12)[:, None]
    xt = rng.standard_normal((len(xb), k))
    xn = rng.standard_normal((len(xb), k)) * (np.arange(k) >= k - k_off)
    cloud = xb[:, None, :] + s["sigma_t"] * xt[..., None] * t[:, None, :] + s["sigma_n"] * xn[..., None] * n[:, None, :]
    keep = [xb] if s["keep_base"] else []
    keep_e = [eb] if s["keep_base"] else []
    return np.concatenate(keep + [cloud.reshape(-1, 2)]), np.concatenate(keep_e + [np.repeat(eb, k)])


def label(cfg: dict, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Labels (n x 2): the exact RHS, or burst central differences over each sample's tau."""
    lab = cfg["labeller"]
    if lab["type"] == "direct":
        return rhs(x, eps)
    rho = np.maximum(1.0, 1.0 / eps)  # spectral radius of the exact Jacobian (eigenvalues -1, -1/eps)
    tau = np.full(len(x), float(lab["tau"]))
    if lab["mode"] == "scaled":
        while np.any(big := (tau * rho > lab["tau_scale"]) & (tau > 1e-300)):
            tau[big] *= 0.5

    def central(x0, e, t):
        plus = solve(x0, e, t, None, lab["rtol"], lab["atol"], "RK45")[:, 0]
        minus = solve(x0, e, -t, None, lab["rtol"], lab["atol"], "RK45")[:, 0]
        return (plus - minus) / (2 * t)

    out = np.empty_like(x)
    for e in np.unique(eps):
        for ta in np.unique(tau[eps == e]):
            idx = np.flatnonzero((eps == e) & (tau == ta))
            if lab["mode"] == "richardson":
                out[idx] = (4 * central(x[idx], e, 0.5 * ta) - central(x[idx], e, ta)) / 3
            else:
                out[idx] = central(x[idx], e, ta)
    return out


def label_bias(x, eps, labels) -> list[dict]:
    """Per eps and component: median and max of |L - F|/|F| (|F| > 1e-8 max|F|) and the RMS of |L - F|."""
    exact, out = rhs(x, eps), []
    for e in np.unique(eps):
        m = eps == e
        for k, name in enumerate("yz"):
            f, lab = exact[m, k], labels[m, k]
            keep = np.abs(f) > 1e-8 * np.abs(f).max()
            rel = np.abs(lab[keep] - f[keep]) / np.abs(f[keep])
            out.append(dict(eps=float(e), component=name, median_rel=float(np.median(rel)) if rel.size else math.nan,
                            max_rel=float(rel.max(initial=0.0)), rms_abs=float(np.sqrt(np.mean((lab - f) ** 2)))))
    return out


# ---- preparation: split, standardisation, transform ----------------------------------------------


def nearest_rank(v: np.ndarray, q: float) -> float:
    s = np.sort(v)
    return float(s[int(math.floor((len(s) - 1) * q + 0.5))])


def robust_scale(v: np.ndarray, q: float) -> float:
    """Q_q(|v - median v|) / Phi^-1((1+q)/2); MAD/0.6745 at q = 0.5, and stiffx's fallbacks."""
    m = np.median(v)
    if abs(q - 0.5) > 1e-15:
        s = nearest_rank(np.abs(v - m), q) / scipy.stats.norm.ppf(0.5 * (1 + q))
        if s > 0 and math.isfinite(s):
            return s
    s = float(np.median(np.abs(v - m))) / 0.6744897501960817
    if s > 0 and math.isfinite(s):
        return s
    mean_abs = float(np.mean(np.abs(v)))
    return mean_abs if mean_abs > 0 and math.isfinite(mean_abs) else 1.0


class Transform:
    """`asinh(F_k / s_k(eps))` with a power law s_k(eps) = exp(a_k + b_k ln eps) through per-eps scales (or
    one scale per component), fitted on the training targets; or the identity."""

    def __init__(self, tc: dict, f: np.ndarray, eps: np.ndarray):
        self.asinh, self.a, self.b = tc["type"] == "asinh", np.zeros(2), np.zeros(2)
        if not self.asinh:
            return
        if tc["per_eps"]:
            grid = np.unique(eps)
            ls = np.log([[robust_scale(f[eps == e, k], tc["quantile"]) for k in range(2)] for e in grid])
            xs = np.log(grid)
            sxx = np.sum((xs - xs.mean()) ** 2)
            self.b = ((xs - xs.mean()) @ (ls - ls.mean(0))) / sxx if sxx > 0 else np.zeros(2)
            self.a = ls.mean(0) - self.b * xs.mean()
        else:
            self.a = np.log([robust_scale(f[:, k], tc["quantile"]) for k in range(2)])

    def scale(self, eps):
        """s(eps), n x 2 (NumPy or torch)."""
        lib = torch if torch.is_tensor(eps) else np
        a, b = (torch.as_tensor(v, dtype=eps.dtype) for v in (self.a, self.b)) if lib is torch else (self.a, self.b)
        return lib.exp(a + b * lib.log(eps)[..., None])

    def forward(self, f, eps):
        return np.arcsinh(f / self.scale(eps)) if self.asinh else f

    def describe(self) -> str:
        if not self.asinh:
            return "identity"
        s = ", ".join(f"{math.exp(a):.3e}·eps^{b:.3f}" for a, b in zip(self.a, self.b))
        return f"asinh(F/s(eps)), power law s = [{s}]"


# ---- the network and its training ----------------------------------------------------------------


def mlp(hidden: int, width: int) -> torch.nn.Sequential:
    layers, d = [], 3
    for _ in range(hidden):
        layers += [torch.nn.Linear(d, width), torch.nn.SiLU()]
        d = width
    layers.append(torch.nn.Linear(d, 2))
    return torch.nn.Sequential(*layers)


def train(tc: dict, mc: dict, xt, yt, xv, yv, out: Path, seed: int):
    """Adam on shuffled batches, validation after every epoch, best weights kept (and saved)."""
    torch.manual_seed(seed)
    net = mlp(mc["hidden"], mc["width"])
    opt = torch.optim.Adam(net.parameters(), lr=tc["lr"], eps=1e-8)
    mse = torch.nn.functional.mse_loss

    def validate() -> float:
        with torch.no_grad():
            return mse(net(xv), yv).item()

    best, best_epoch, best_state = validate(), 0, copy.deepcopy(net.state_dict())
    torch.save(best_state, out / "checkpoint.pt")
    curve, seen, batch_secs = [], 0, 0.0
    epochs, batch = tc["epochs"], tc["batch"]
    for epoch in range(epochs):
        p = epoch / (max(epochs, 2) - 1)
        lr = tc["lr"] if tc["schedule"] == "constant" else (
            tc["lr_final"] + 0.5 * (tc["lr"] - tc["lr_final"]) * (1 + math.cos(math.pi * p)))
        for g in opt.param_groups:
            g["lr"] = lr
        t0, loss_sum, batches = time.perf_counter(), 0.0, 0
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            loss = mse(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum, batches = loss_sum + loss.item(), batches + 1
        batch_secs += time.perf_counter() - t0
        seen += len(xt)
        val = validate()
        if not math.isfinite(val):
            raise RuntimeError(f"the validation loss is {val} at epoch {epoch + 1}")
        if val < best:
            best, best_epoch, best_state = val, epoch + 1, copy.deepcopy(net.state_dict())
            torch.save(best_state, out / "checkpoint.pt")
        curve.append((epoch + 1, loss_sum / batches, val, lr))
        (out / "loss_curve.csv").write_text(
            "epoch,train_loss,val_loss,lr\n" + "".join(f"{e},{t!r},{v!r},{r!r}\n" for e, t, v, r in curve))
    net.load_state_dict(best_state)
    return net, dict(best_val_loss=best, best_epoch=best_epoch, epochs=epochs,
                     train_samples_per_sec=seen / max(batch_secs, 1e-9))


# ---- evaluation (eval/evaluate.rs, eval/metrics/) ------------------------------------------------


class Field:
    """The learned physical field F_θ(x, eps) = T⁻¹(net((x, eps) standardised)), in f64."""

    def __init__(self, net, mean, std, transform: Transform, eps_log: bool):
        self.net = copy.deepcopy(net).double().requires_grad_(False)
        self.mean, self.std = torch.as_tensor(mean), torch.as_tensor(std)
        self.transform, self.eps_log = transform, eps_log

    def at(self, eps: torch.Tensor):
        """F_θ(·, eps) with what depends on eps alone (its input column, the transform's scale) computed
        once: x (... x 2) -> F (... x 2)."""
        e = ((torch.log(eps) if self.eps_log else eps)[..., None] - self.mean[2]) / self.std[2]
        s = self.transform.scale(eps) if self.transform.asinh else None
        mean, std = self.mean[:2], self.std[:2]

        def f(x):
            a = self.net(torch.cat([(x - mean) / std, e], dim=-1))
            return s * torch.sinh(a) if s is not None else a

        return f

    def __call__(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.at(eps)(x)


def rollout_rk4(field: Field, x0: np.ndarray, eps: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """RK4 from every row of x0, all trajectories together: m x (steps + 1) x 2. On one thread: with a few
    dozen points per call, PyTorch's thread pool costs more than it gives (2 threads: 5x slower here)."""
    x, f = torch.as_tensor(x0), field.at(torch.as_tensor(eps))
    out, threads = [x], torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for _ in range(steps):
                k1 = f(x)
                k2 = f(x + 0.5 * dt * k1)
                k3 = f(x + 0.5 * dt * k2)
                k4 = f(x + dt * k3)
                x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
                out.append(x)
    finally:
        torch.set_num_threads(threads)
    return torch.stack(out, dim=1).numpy()


def pointwise(v: np.ndarray) -> list[float]:
    """Nearest-rank p50, p95, p99 and max, NaN counted as infinite."""
    v = np.sort(np.where(np.isnan(v), np.inf, v))
    return [float(v[int(math.floor((len(v) - 1) * q + 0.5))]) for q in (0.5, 0.95, 0.99, 1.0)]


def eps_metrics(e, learned, reference, lam, lam_ref, angles) -> dict:
    """stiffx's per-eps record (`EpsMetrics`) for the fields ported: trajectories m x T x 2, eigenvalues
    P x 2 by decreasing modulus, fast-eigenvector angles P (radians, NaN where undefined)."""
    rolls, rels = [], []
    for a, b in zip(learned, reference):
        blown = bool(np.any(np.isnan(a) | (np.abs(a) > 1e3 * np.abs(b).max())))
        l2 = math.sqrt(np.sum((a - b) ** 2) / len(a))
        err = np.where(np.isnan(a - b), np.inf, np.abs(a - b)).max(0)
        rng = np.abs(b).max(0)
        rel = float(np.max(np.where(rng > 0, err / np.where(rng > 0, rng, 1), err)))
        rolls.append(math.inf if blown or not math.isfinite(l2) else l2)
        rels.append(math.inf if blown else rel)
    fast = np.abs(lam[:, 0] - lam_ref[:, 0]) / np.abs(lam_ref[:, 0])
    slow = np.abs(lam[:, 1] - lam_ref[:, 1]) / np.abs(lam_ref[:, 1])
    worst = lambda v: np.where(np.isnan(v), np.inf, v)  # noqa: E731
    all_points = np.maximum(worst(fast), worst(slow))
    m = dict(eps=float(e), rollout_l2=float(np.mean(rolls)),
             fast_abs=float(np.mean(np.abs(lam[:, 0] - lam_ref[:, 0]))),
             slow_abs=float(np.mean(np.abs(lam[:, 1] - lam_ref[:, 1]))), fast_rel=float(np.mean(fast)),
             slow_rel=float(np.mean(slow)), complex_fraction=float(np.mean(np.any(lam.imag != 0, axis=1))),
             points=len(lam), fast_angle_deg=float(np.degrees(np.nanmean(angles))) if np.any(~np.isnan(angles))
             else math.nan, all_rel=float(np.mean(np.maximum(fast, slow))),
             all_within=float(np.mean(np.maximum(fast, slow) <= 0.05)), zero_rel=0.0,
             rollout_rel=float(np.mean(rels)), period_rel=None)
    for name, v in (("fast_rel", fast), ("slow_rel", slow), ("all_rel", all_points)):
        p50, p95, p99, mx = pointwise(v)
        m.update({f"{name}_p50": p50, f"{name}_p95": p95, f"{name}_p99": p99, f"{name}_max": mx})
    return m, (worst(fast), worst(slow), all_points)


def fast_angles(jl: np.ndarray, wl, vl, je: np.ndarray) -> np.ndarray:
    """Angle between the learned and exact fast eigenvectors at each point (0 when the learned fastest
    eigenvalue is one of a complex pair: its real plane is all of R²; NaN for a non-finite Jacobian)."""
    _, ve = sorted_eigs(je)
    u, v = np.real(vl[:, :, 0]), np.real(ve[:, :, 0])
    cos = np.abs(np.sum(u * v, 1)) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    ang = np.arccos(np.clip(cos, 0.0, 1.0))
    ang[wl[:, 0].imag != 0] = 0.0
    ang[~np.all(np.isfinite(jl.reshape(len(jl), -1)), axis=1)] = np.nan
    return ang


def evaluate(cfg: dict, field: Field) -> dict:
    ec = cfg["eval"]
    eps_list = ec["eps"] or cfg["system"]["train_eps"]
    eps_all = eps_list + ([ec["reference_eps"]] if ec["reference_eps"] not in eps_list else [])
    times = output_times(ec["dt"], ec["horizon"])
    x0 = np.array([[y, h(y) + dz] for y, dz in ((0.75, 0.5), (1.5, 1.0), (2.25, 0.35))])
    m = len(x0)
    ref = np.concatenate([solve(x0, e, times[-1], times, ec["reference_rtol"], ec["reference_atol"], "DOP853")
                          for e in eps_all])  # (eps, trajectory) x T x 2
    traj_eps = np.repeat(eps_all, m)
    learned = rollout_rk4(field, ref[:, 0], traj_eps, ec["dt"], len(times) - 1)
    pts, pe = ref.reshape(-1, 2), np.repeat(traj_eps, len(times))
    one = lambda x, e: field(x, e)  # noqa: E731
    jac = torch.func.vmap(torch.func.jacfwd(one, argnums=0))(torch.as_tensor(pts), torch.as_tensor(pe)).numpy()
    lam, vec = sorted_eigs(np.nan_to_num(jac, nan=0.0, posinf=0.0, neginf=0.0))
    bad = ~np.all(np.isfinite(jac.reshape(len(jac), -1)), axis=1)
    lam[bad] = np.nan
    je = exact_jacobian(pts, pe)
    lam_ref, _ = sorted_eigs(je)
    angles = fast_angles(jac, lam, vec, je)
    per_eps, pooled = [], ([], [], [])
    for i, e in enumerate(eps_all):
        p = slice(i * m * len(times), (i + 1) * m * len(times))
        rec, points = eps_metrics(e, learned[i * m : (i + 1) * m], ref[i * m : (i + 1) * m], lam[p], lam_ref[p],
                                  angles[p])
        per_eps.append(rec)
        if e in eps_list:
            for acc, v in zip(pooled, points):
                acc.append(v)
    listed = [r for r in per_eps if r["eps"] in eps_list]
    mean = lambda k: float(np.mean([r[k] for r in listed]))  # noqa: E731
    grid = {k: mean(k) for k in ("rollout_l2", "fast_abs", "slow_abs", "fast_rel", "slow_rel", "all_rel",
                                 "rollout_rel", "all_within")}
    grid["fast_rel_worst_eps_mean"] = max(r["fast_rel"] for r in listed)
    grid["period_rel"] = None
    q = lambda v: dict(zip(("p50", "p95", "p99", "max"), pointwise(np.concatenate(v))))  # noqa: E731
    grid["pointwise"] = dict(points=int(sum(len(v) for v in pooled[0])), fast_rel=q(pooled[0]),
                             slow_rel=q(pooled[1]), all_rel=q(pooled[2]))
    reference = next(r for r in per_eps if r["eps"] == ec["reference_eps"])
    return dict(per_eps=listed, reference=reference, grid_mean=grid)


# ---- the job -------------------------------------------------------------------------------------


def finite(v):
    """Non-finite floats as stiffx writes them ("inf", "-inf", "NaN")."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/asinh_cloud.toml", help="a stiffx TOML config")
    ap.add_argument("--epochs", type=int, help="override train.epochs (as `stiffx run --epochs`)")
    ap.add_argument("--seed", type=int, help="override the config's seed")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads (default: every core)")
    ap.add_argument("--out", type=Path, required=True, help="directory for metrics.json, checkpoint.pt, loss_curve.csv")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if not Path(a.config).is_file():
        die(f"error: --config: {a.config} does not exist")
    cfg = load_config(a.config)
    if a.epochs is not None:
        if a.epochs < 1:
            die(f"error: --epochs: {a.epochs} (allowed: an integer >= 1)")
        cfg["train"]["epochs"] = a.epochs
    seed = cfg["seed"] if a.seed is None else a.seed
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    say = (lambda *s: None) if a.quiet else (lambda *s: print(*s, file=sys.stderr))
    secs = {}

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    x, eps = sample(cfg, rng)
    secs["sample"] = time.perf_counter() - t
    t = time.perf_counter()
    y = label(cfg, x, eps)
    secs["label"] = time.perf_counter() - t
    secs["data"] = secs["sample"] + secs["label"]
    if not np.all(np.isfinite(y)):
        raise RuntimeError("a non-finite label")
    bias = label_bias(x, eps, y)
    say(f"data: {len(x)} rows in {secs['data']:.1f} s")

    t = time.perf_counter()
    order = np.random.default_rng([seed, 0x57117000]).permutation(len(x))
    n_val = max(1, math.floor(len(x) * cfg["train"]["val_fraction"] + 0.5))
    vi, ti = order[:n_val], order[n_val:]
    feat = np.log(eps) if cfg["model"]["eps_input"] == "log" else eps
    inputs = np.column_stack([x, feat])
    mean, std = inputs[ti].mean(0), inputs[ti].std(0)
    std[std == 0] = 1.0
    transform = Transform(cfg["transform"], y[ti], eps[ti])
    g = transform.forward(y, eps)
    f32 = lambda v: torch.as_tensor(v, dtype=torch.float32)  # noqa: E731
    u = (inputs - mean) / std
    xt, yt, xv, yv = f32(u[ti]), f32(g[ti]), f32(u[vi]), f32(g[vi])
    secs["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    net, trained = train(cfg["train"], cfg["model"], xt, yt, xv, yv, a.out, seed)
    secs["train"] = time.perf_counter() - t
    say(f"training: {trained['epochs']} epochs in {secs['train']:.1f} s, best val {trained['best_val_loss']:.3e} "
        f"at epoch {trained['best_epoch']}")

    t = time.perf_counter()
    field = Field(net, mean, std, transform, cfg["model"]["eps_input"] == "log")
    ev = evaluate(cfg, field)
    secs["eval"] = ev["seconds"] = time.perf_counter() - t
    gm = ev["grid_mean"]
    say(f"evaluation in {secs['eval']:.1f} s: grid fast rel {gm['fast_rel']:.3e}, rollout L2 at eps = "
        f"{ev['reference']['eps']} {ev['reference']['rollout_l2']:.3e}")

    metrics = dict(peer="pytorch", torch=torch.__version__, threads=a.threads, config=a.config, seed=seed,
                   sampler=cfg["sampler"]["type"], labeller=cfg["labeller"]["type"], transform=transform.describe(),
                   jacobian="forward", n_train=len(ti), n_val=len(vi), **trained, seconds=secs, label_bias=bias,
                   eval=ev)
    secs["total"] = time.perf_counter() - T0
    (a.out / "metrics.json").write_text(json.dumps(finite(metrics), indent=1) + "\n")
    say(f"total {secs['total']:.1f} s (data {secs['data']:.1f}, prepare {secs['prepare']:.1f}, train "
        f"{secs['train']:.1f}, eval {secs['eval']:.1f})")


if __name__ == "__main__":
    main()
