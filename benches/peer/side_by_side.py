"""stiffx against its PyTorch peer in one run, repetitions interleaved, ratios printed (issue 25).

Each repetition measures every variant once on each side, one after the other: `stiffx bench --reps 1`
(a process: its data, a warm-up epoch, one measured epoch) and the peer's same work in this process
(`torch_peer.py`, warm). The machines are shared and noisy, so the figures are medians of alternating
measurements, never two separate sessions. A ratio above 1 means stiffx is faster.

    python benches/peer/side_by_side.py --stiffx target/release/stiffx --reps 5 --out results/bench/peer.json
    python benches/peer/side_by_side.py --stiffx target/release/stiffx --parts models --models 1,3,12,48 --batch 1024
    python benches/peer/side_by_side.py --stiffx target/release/stiffx --parts main-job --main-epochs 20 --reps 3
    python benches/peer/side_by_side.py --stiffx target/release/stiffx --parts main-job-e2e --main-epochs 20 --reps 3
    python benches/peer/side_by_side.py --stiffx target/release/stiffx --parts models-jacobian --models 1,3,12,48

`main-job-e2e` runs the whole main job on both sides, `stiffx run` against its PyTorch + NumPy + SciPy
port (`main_job_torch.py`, in a process of its own like stiffx), and compares data, training, evaluation,
total time and the metrics.

Needs Python 3.11+ and `torch` (`pip install torch`; `scipy` and `numpy` for `main-job-e2e`); `--backend`
passes through to `stiffx bench` and `stiffx run` (flex, the default; tch), by its canonical name (the
rows are matched by it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

import torch_peer  # noqa: E402


def die(message: str) -> None:
    """Bad input: the message on stderr, exit 2 (as stiffx does)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def stiffx_once(exe: str, args: list[str]) -> list[dict]:
    """The rows of one `stiffx bench --reps 1` with `args`."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.json"
        subprocess.run([exe, "bench", "--reps", "1", "--out", str(out), *args], check=True, stdout=subprocess.DEVNULL)
        data = json.loads(out.read_text())
    return data["rows"] if isinstance(data, dict) else data


def variants(a) -> list[dict]:
    """What is measured: for each, the stiffx arguments, the row it reads, and the peer's callable."""
    v = []
    shards = str(a.shards)
    for part in a.parts:
        if part == "train":
            for b in a.batch:
                v.append(
                    dict(
                        name=f"train 4x128 batch {b}",
                        unit="samples/s",
                        args=["--only", "train", "--batch", str(b), "--shards", shards, "--backend", a.backend],
                        row=f"train 4x128 batch {b}, {shards} shard(s) ({a.backend})",
                        peer=("train", b, 1),
                    )
                )
        elif part == "models":
            for b in a.batch:
                for m in a.models:
                    v.append(
                        dict(
                            name=f"{m} models 4x128 batch {b} (aggregate)",
                            unit="samples/s",
                            args=["--only", "models", "--batch", str(b), "--shards", shards, "--models", str(m),
                                  "--backend", a.backend],
                            row=f"models {m} x 4x128 batch {b}, {shards} shard(s), together ({a.backend})",
                            peer=("models", b, m),
                        )
                    )
        elif part == "models-jacobian":
            for m in a.models:
                how = "stacked" if m > 1 else "one by one"
                v.append(
                    dict(
                        name=f"{m} models jacobian+eig {a.points} points f32 (aggregate; PyTorch vmap over stacked parameters)",
                        unit="points/s",
                        args=["--only", "models-jacobian", "--models", str(m), "--points", str(a.points),
                              "--backend", a.backend],
                        row=f"models {m} x 4x128 jacobian+eig {a.points} points Forward F32, {how} ({a.backend})",
                        peer=("models-jacobian", 0, m),
                    )
                )
        elif part == "jacobian":
            v.append(
                dict(
                    name=f"jacobian+eig {a.points} points f32 (stiffx forward, PyTorch vmap(jacrev))",
                    unit="ms",
                    args=["--only", "jacobian", "--points", str(a.points), "--backend", a.backend],
                    row=f"jacobian+eig {a.points} points Forward F32 ({a.backend})",
                    peer=("jacobian-reverse", 0, 1),
                )
            )
    return v


def main_job(a) -> None:
    """The main job's training (`configs/asinh_cloud.toml` at `--main-epochs`) against the same recipe in
    PyTorch at the same size: `stiffx run` (its `metrics.json` `seconds.train`: training with the
    validation after every epoch and the best checkpoint written) and the peer's `Recipe`, alternated
    `--reps` times. Data generation and evaluation are not in either figure."""
    import tomllib

    st, pt = [], []
    for r in range(a.reps):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "run"
            cmd = [a.stiffx, "run", "--config", a.main_config, "--epochs", str(a.main_epochs), "--out", str(out),
                   "--quiet", "--no-figures", "--backend", a.backend]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            m = json.loads((out / "metrics.json").read_text())
            train = tomllib.loads((out / "config.toml").read_text())["train"]
        st.append(m["seconds"]["train"])
        recipe = torch_peer.Recipe(m["n_train"], m["n_val"], a.main_epochs, train["batch"], train["lr"],
                                   train.get("lr_final", 1e-5), train.get("schedule", "constant") == "cosine")
        pt.append(recipe.run())
        print(f"repetition {r + 1}/{a.reps}: stiffx {st[-1]:.1f} s, PyTorch {pt[-1]:.1f} s", file=sys.stderr)
    s, p = statistics.median(st), statistics.median(pt)
    print(f"| main job training ({a.main_config}, {a.main_epochs} epochs, {m['n_train']} rows, batch "
          f"{train['batch']}) | {p:.1f} s | {s:.1f} s | **{p / s:.2f}×** |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(torch=torch.__version__, threads=a.threads, backend=a.backend, reps=a.reps, cores=os.cpu_count(),
                    config=a.main_config, epochs=a.main_epochs, n_train=m["n_train"], n_val=m["n_val"])
        a.out.write_text(json.dumps(dict(meta=meta, stiffx_seconds=st, pytorch_seconds=pt, ratio=p / s), indent=1) + "\n")


def main_job_e2e(a) -> None:
    """The main job end to end (`--main-config` at `--main-epochs`): `stiffx run` and the PyTorch port
    `main_job_torch.py` of the same config, each in its own process, alternated `--reps` times (the side
    that goes first alternates too). Per side and repetition: data (stiffx: `seconds.sample + label`;
    the port: its `seconds.data`), training (`seconds.train`), evaluation (`seconds.eval`) from each
    side's own `metrics.json`, and the total, the process's wall-clock time measured here (start-up,
    imports, the unclocked preparation and writing the outputs included); and the metrics."""
    import time

    port = Path(__file__).resolve().parent / "main_job_torch.py"
    phases = ("data", "train", "eval", "total")
    keys = {  # what is compared: metrics.json paths (the same on both sides)
        "grid-mean fast rel": ("eval", "grid_mean", "fast_rel"),
        "grid-mean slow rel": ("eval", "grid_mean", "slow_rel"),
        "grid-mean rollout L2": ("eval", "grid_mean", "rollout_l2"),
        "fast rel at the reference eps": ("eval", "reference", "fast_rel"),
        "rollout L2 at the reference eps": ("eval", "reference", "rollout_l2"),
        "best validation loss": ("best_val_loss",),
    }

    def run(side: str, out: Path) -> dict:
        if side == "stiffx":
            cmd = [a.stiffx, "run", "--config", a.main_config, "--epochs", str(a.main_epochs), "--out", str(out),
                   "--quiet", "--no-figures", "--backend", a.backend]
        else:
            cmd = [sys.executable, str(port), "--config", a.main_config, "--epochs", str(a.main_epochs), "--out",
                   str(out), "--threads", str(a.threads), "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        m = json.loads((out / "metrics.json").read_text())
        sec = m["seconds"]
        data = sec["data"] if "data" in sec else sec["sample"] + sec["label"]
        metrics = {}
        for name, path in keys.items():
            v = m
            for k in path:
                v = v[k]
            metrics[name] = float(v)
        return dict(seconds=dict(data=data, train=sec["train"], eval=sec["eval"], total=wall),
                    own_seconds=sec, n_train=m["n_train"], n_val=m["n_val"], metrics=metrics)

    samples, load = {"stiffx": [], "pytorch": []}, [os.getloadavg()]
    for r in range(a.reps):
        for side in ("stiffx", "pytorch") if r % 2 == 0 else ("pytorch", "stiffx"):
            with tempfile.TemporaryDirectory() as d:
                samples[side].append(run(side, Path(d) / "run"))
        s, p = samples["stiffx"][-1], samples["pytorch"][-1]
        print(f"repetition {r + 1}/{a.reps}: stiffx {s['seconds']['total']:.1f} s, PyTorch port "
              f"{p['seconds']['total']:.1f} s (wall)", file=sys.stderr)
    for side in samples:
        rows = {(x["n_train"], x["n_val"]) for x in samples[side]}
        if len(rows) != 1:
            die(f"error: {side} trained on different row counts across repetitions: {rows}")
    if samples["stiffx"][0]["n_train"] != samples["pytorch"][0]["n_train"]:
        print(f"warning: row counts differ: stiffx {samples['stiffx'][0]['n_train']}, PyTorch port "
              f"{samples['pytorch'][0]['n_train']}", file=sys.stderr)
    load.append(os.getloadavg())
    med = {side: {ph: statistics.median(x["seconds"][ph] for x in v) for ph in phases} for side, v in samples.items()}
    ratio = {ph: med["pytorch"][ph] / med["stiffx"][ph] for ph in phases}
    # The fastest repetition of each side: on a shared machine, the one least disturbed by other work.
    best = {side: {ph: min(x["seconds"][ph] for x in v) for ph in phases} for side, v in samples.items()}
    n = samples["stiffx"][0]
    print(f"main job end to end: {a.main_config}, {a.main_epochs} epochs, {n['n_train']} + {n['n_val']} rows, "
          f"medians of {a.reps} alternated repetitions and the fastest of each side; ratio = PyTorch / stiffx "
          "(above 1: stiffx faster); "
          f"load average (1, 5, 15 min) {', '.join(f'{v:.2f}' for v in load[0])} at the start, "
          f"{', '.join(f'{v:.2f}' for v in load[1])} at the end\n")
    threads = f"{a.threads} thread{'s' if a.threads != 1 else ''}"
    print(f"| phase | PyTorch {torch.__version__} port ({threads}) | stiffx ({a.backend}) | ratio | fastest reps: "
          "PyTorch, stiffx, ratio |")
    print("|---|---|---|---|---|")
    names = dict(data="data (sampling + labels)", train="training", eval="evaluation",
                 total="total (process wall clock)")
    for ph in phases:
        bp, bs = best["pytorch"][ph], best["stiffx"][ph]
        print(f"| {names[ph]} | {med['pytorch'][ph]:.2f} s | {med['stiffx'][ph]:.2f} s | **{ratio[ph]:.2f}×** | "
              f"{bp:.2f} s, {bs:.2f} s, {bp / bs:.2f}× |")
    mm = {side: {k: statistics.median(x["metrics"][k] for x in v) for k in keys} for side, v in samples.items()}
    print("\n| metric (median over repetitions) | PyTorch port | stiffx |")
    print("|---|---|---|")
    for k in keys:
        print(f"| {k} | {mm['pytorch'][k]:.3e} | {mm['stiffx'][k]:.3e} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(torch=torch.__version__, threads=a.threads, backend=a.backend, reps=a.reps, cores=os.cpu_count(),
                    config=a.main_config, epochs=a.main_epochs, n_train=n["n_train"], n_val=n["n_val"],
                    load_average_start=load[0], load_average_end=load[1])
        a.out.write_text(json.dumps(dict(meta=meta, samples=samples, median_seconds=med, ratio=ratio,
                                         fastest_seconds=best, median_metrics=mm), indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stiffx", default="target/release/stiffx", help="the stiffx binary (a release build)")
    ap.add_argument("--backend", default="flex")
    ap.add_argument("--parts", default="train,jacobian", type=lambda s: s.split(","))
    ap.add_argument("--batch", default="8192,1024", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--models", default="1,3,12,48", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--shards", type=int, default=2, help="stiffx's data-parallel shards (2: flex's default)")
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads (default: every core)")
    ap.add_argument("--main-config", default="configs/asinh_cloud.toml", help="the main-job parts' config")
    ap.add_argument("--main-epochs", type=int, default=20, help="the main-job parts' epochs")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.reps < 1:
        die(f"error: --reps: {a.reps} (allowed: an integer >= 1)")
    for p in a.parts:
        if p not in ("train", "models", "models-jacobian", "jacobian", "main-job", "main-job-e2e"):
            die(f"error: --parts: unknown part {p!r} (allowed: train, models, models-jacobian, jacobian, main-job, "
                "main-job-e2e)")
    if not Path(a.stiffx).exists():
        die(f"error: --stiffx: {a.stiffx} does not exist (build it: cargo build --release)")
    torch.set_num_threads(a.threads)
    for part, run in (("main-job", main_job), ("main-job-e2e", main_job_e2e)):
        if part in a.parts:
            if len(a.parts) > 1:
                die(f"error: --parts: {part} runs alone (it takes minutes)")
            return run(a)
    vs = variants(a)
    peers = [torch_peer.make(*v["peer"], a.points) for v in vs]
    for v in vs:
        stiffx_once(a.stiffx, v["args"])  # warm-up (page cache, first-touch)
    samples = {v["name"]: {"stiffx": [], "pytorch": []} for v in vs}
    for r in range(a.reps):
        for v, peer in zip(vs, peers):
            rows = {row["what"]: row for row in stiffx_once(a.stiffx, v["args"])}
            if v["row"] not in rows:
                die(f"error: stiffx bench printed no row {v['row']!r} (rows: {sorted(rows)})")
            samples[v["name"]]["stiffx"].append(rows[v["row"]]["median"])
            samples[v["name"]]["pytorch"].append(peer())
        print(f"repetition {r + 1}/{a.reps} done", file=sys.stderr)
    result = []
    print(f"| work | PyTorch {torch.__version__} ({a.threads} threads) | stiffx ({a.backend}) | ratio |")
    print("|---|---|---|---|")
    for v in vs:
        s = samples[v["name"]]
        st, pt = statistics.median(s["stiffx"]), statistics.median(s["pytorch"])
        rate = v["unit"].endswith("/s")
        ratio = st / pt if rate else pt / st
        fmt = (lambda x: f"{x / 1e3:.1f}k") if rate else (lambda x: f"{x:.1f} ms")
        print(f"| {v['name']} | {fmt(pt)} | {fmt(st)} | **{ratio:.2f}×** |")
        result.append(dict(what=v["name"], unit=v["unit"], stiffx=s["stiffx"], pytorch=s["pytorch"], ratio=ratio))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(torch=torch.__version__, threads=a.threads, backend=a.backend, reps=a.reps, cores=os.cpu_count())
        a.out.write_text(json.dumps(dict(meta=meta, rows=result), indent=1) + "\n")


if __name__ == "__main__":
    main()
