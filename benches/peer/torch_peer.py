"""The PyTorch peer of `stiffx bench`: the same work written as a PyTorch user would write it, so that
every speed figure of stiffx is a ratio against it (issue 25).

Same as `stiffx bench` (src/commands/bench.rs):
- the network: 3 inputs (two states and eps) → 4 hidden layers of 128 SiLU units → 2 outputs, f32,
  PyTorch's default initialisation (the distribution of `Weights::init`);
- training: Adam (lr 1e-3, eps 1e-8), mean squared error, an epoch of 10 shuffled batches of the batch
  size, synthetic standard-normal data; samples/s = 10 × batch / the epoch's seconds (the batches only,
  as `Trained::samples_per_sec`);
- many models: M networks of that shape stacked along a leading axis (`torch.bmm`, one Adam over the
  stacked parameters: what `torch.func.stack_module_state` gives by hand), each with its own batch;
  aggregate samples/s = M × 10 × batch / seconds;
- Jacobian + eigenvalues at N points: `torch.func.vmap(jacrev)` (reverse, the PyTorch idiom) and
  `vmap(jacfwd)`, then `torch.linalg.eigvals` of the 2 × 2 state block, f32;
- many models' Jacobians: M different networks at the same N points, `stack_module_state` and `vmap`
  over the stacked parameters of `vmap(jacrev)`; aggregate points/s = M × N / seconds;
- a run's training recipe at its size (`Recipe`): its epochs, batch, cosine learning rate, validation
  after every epoch and best weights kept, on as many rows as the run trained on.

Used by `benches/peer/side_by_side.py`, which interleaves it with `stiffx bench` and prints ratios; it
can run alone:

    python benches/peer/torch_peer.py --part train --batch 8192 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

HIDDEN, WIDTH, D_IN, D_OUT = 4, 128, 3, 2


def mlp() -> torch.nn.Sequential:
    layers, d = [], D_IN
    for _ in range(HIDDEN):
        layers += [torch.nn.Linear(d, WIDTH), torch.nn.SiLU()]
        d = WIDTH
    layers.append(torch.nn.Linear(d, D_OUT))
    return torch.nn.Sequential(*layers)


class Trainer:
    """One network, an epoch of 10 shuffled batches of `batch` (the `train` part)."""

    def __init__(self, batch: int, seed: int = 7):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(10 * batch, D_IN, generator=g)
        self.y = torch.randn(10 * batch, D_OUT, generator=g)
        torch.manual_seed(1)
        self.net = mlp()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-8)
        self.batch = batch

    def epoch(self) -> float:
        """Samples/s of one epoch."""
        t0 = time.perf_counter()
        perm = torch.randperm(self.x.shape[0])
        for i in range(10):
            idx = perm[i * self.batch : (i + 1) * self.batch]
            loss = torch.nn.functional.mse_loss(self.net(self.x[idx]), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return 10 * self.batch / (time.perf_counter() - t0)


class StackedTrainer:
    """M networks stacked (`[M, d_in, d_out]` weights, `torch.baddbmm`), one Adam over all, each
    network with its own data and batch order (the `models` part)."""

    def __init__(self, models: int, batch: int, seed: int = 7):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(models, 10 * batch, D_IN, generator=g)
        self.y = torch.randn(models, 10 * batch, D_OUT, generator=g)
        torch.manual_seed(1)
        self.params = []
        dims = [D_IN] + [WIDTH] * HIDDEN + [D_OUT]
        for a, b in zip(dims[:-1], dims[1:]):
            k = 1.0 / a**0.5
            w = torch.empty(models, a, b).uniform_(-k, k).requires_grad_()
            bias = torch.empty(models, 1, b).uniform_(-k, k).requires_grad_()
            self.params += [w, bias]
        self.opt = torch.optim.Adam(self.params, lr=1e-3, eps=1e-8)
        self.models, self.batch = models, batch

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = len(self.params) // 2
        for i in range(n):
            h = torch.baddbmm(self.params[2 * i + 1], h, self.params[2 * i])
            if i < n - 1:
                h = torch.nn.functional.silu(h)
        return h

    def epoch(self) -> float:
        t0 = time.perf_counter()
        rows = self.x.shape[1]
        perm = torch.stack([torch.randperm(rows) for _ in range(self.models)])
        for i in range(10):
            idx = perm[:, i * self.batch : (i + 1) * self.batch]
            x = torch.gather(self.x, 1, idx.unsqueeze(-1).expand(-1, -1, D_IN))
            y = torch.gather(self.y, 1, idx.unsqueeze(-1).expand(-1, -1, D_OUT))
            # Σ_m mean_m: each network's gradient is its own loss's.
            loss = (self.forward(x) - y).pow(2).mean(dim=(1, 2)).sum()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return self.models * 10 * self.batch / (time.perf_counter() - t0)


class Recipe:
    """A run's training recipe at its size (the `main-job` part): `n_train` training and `n_val`
    validation rows (synthetic: the speed does not depend on the values), `epochs` epochs of shuffled
    batches with Adam and a cosine (or constant) learning rate from `lr` to `lr_final` (`TrainConfig::learning_rate`),
    the validation loss after every epoch and the best weights kept, as `stiffx run` trains."""

    def __init__(self, n_train: int, n_val: int, epochs: int, batch: int, lr: float, lr_final: float,
                 cosine: bool = True):
        g = torch.Generator().manual_seed(7)
        self.x, self.y = torch.randn(n_train, D_IN, generator=g), torch.randn(n_train, D_OUT, generator=g)
        self.xv, self.yv = torch.randn(n_val, D_IN, generator=g), torch.randn(n_val, D_OUT, generator=g)
        self.epochs, self.batch, self.lr, self.lr_final, self.cosine = epochs, batch, lr, lr_final, cosine

    def run(self) -> float:
        """Seconds of training: from the initial network to the last epoch's validation."""
        import copy
        import math

        torch.manual_seed(1)
        t0 = time.perf_counter()
        net = mlp()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, eps=1e-8)
        best, best_state = math.inf, None
        for epoch in range(self.epochs):
            p = epoch / max(self.epochs - 1, 1)
            for group in opt.param_groups:
                group["lr"] = (
                    self.lr_final + 0.5 * (self.lr - self.lr_final) * (1 + math.cos(math.pi * p)) if self.cosine else self.lr
                )
            perm = torch.randperm(self.x.shape[0])
            for i in range(0, self.x.shape[0], self.batch):
                idx = perm[i : i + self.batch]
                loss = torch.nn.functional.mse_loss(net(self.x[idx]), self.y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(net(self.xv), self.yv).item()
            if val < best:
                best, best_state = val, copy.deepcopy(net.state_dict())
        assert best_state is not None
        return time.perf_counter() - t0


class Jacobian:
    """Jacobian of the network's 2 outputs in its 2 state inputs at `points` points, and eigenvalues."""

    def __init__(self, points: int, mode: str):
        torch.manual_seed(1)
        self.net = mlp()
        i = torch.arange(points, dtype=torch.float32)
        eps = torch.tensor([0.01, 0.05, 0.1])[(i % 3).long()]
        self.x = torch.stack([0.5 + 2.0 * i / points, 0.3 + (i % 7) * 0.1, eps], 1)
        f = lambda s, e: self.net(torch.cat([s, e.reshape(1)]))  # noqa: E731
        jac = torch.func.jacrev if mode == "reverse" else torch.func.jacfwd
        self.jac = torch.func.vmap(jac(f, argnums=0))

    def run(self) -> float:
        """Milliseconds."""
        t0 = time.perf_counter()
        with torch.no_grad():
            j = self.jac(self.x[:, :2], self.x[:, 2])
            torch.linalg.eigvals(j)
        return (time.perf_counter() - t0) * 1e3


class StackedJacobian:
    """Jacobians + eigenvalues of M different networks at the same `points` points, the PyTorch idiom for
    many models: `torch.func.stack_module_state` and `vmap` over the stacked parameters of
    `vmap(jacrev)` over the points (the `models-jacobian` part). Returns aggregate points/s."""

    def __init__(self, models: int, points: int):
        torch.manual_seed(1)
        nets = [mlp() for _ in range(models)]
        self.params, self.buffers = torch.func.stack_module_state(nets)
        base = mlp().to("meta")
        i = torch.arange(points, dtype=torch.float32)
        eps = torch.tensor([0.01, 0.05, 0.1])[(i % 3).long()]
        self.x = torch.stack([0.5 + 2.0 * i / points, 0.3 + (i % 7) * 0.1, eps], 1)

        def f(p, b, s, e):
            return torch.func.functional_call(base, (p, b), (torch.cat([s, e.reshape(1)]),))

        per_point = torch.func.vmap(torch.func.jacrev(f, argnums=2), in_dims=(None, None, 0, 0))
        self.jac = torch.func.vmap(per_point, in_dims=(0, 0, None, None))
        self.models, self.points = models, points

    def run(self) -> float:
        """Aggregate points/s (models × points over the seconds)."""
        t0 = time.perf_counter()
        with torch.no_grad():
            j = self.jac(self.params, self.buffers, self.x[:, :2], self.x[:, 2])
            torch.linalg.eigvals(j)
        return self.models * self.points / (time.perf_counter() - t0)


def make(part: str, batch: int, models: int, points: int):
    """A callable returning one measurement (and a warm-up done)."""
    if part == "train":
        t = Trainer(batch)
        fn = t.epoch
    elif part == "models":
        t = StackedTrainer(models, batch)
        fn = t.epoch
    elif part == "models-jacobian":
        t = StackedJacobian(models, points)
        fn = t.run
    else:
        t = Jacobian(points, part.split("-")[1])
        fn = t.run
    fn()  # warm-up
    return fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--part", choices=["train", "models", "models-jacobian", "jacobian-reverse", "jacobian-forward"], default="train"
    )
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fn = make(a.part, a.batch, a.models, a.points)
    s = [fn() for _ in range(a.reps)]
    print(json.dumps({"part": a.part, "median": statistics.median(s), "samples": s, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
