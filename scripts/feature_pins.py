#!/usr/bin/env python3
"""Checks that `maturin develop` reuses what `cargo test` built.

Cargo resolves features per invocation: `cargo test` at the root turns on features through the
dev-dependencies (criterion, insta), the Python crate through numpy and pyo3. A crate shared by both
builds but resolved with different features is compiled twice, and so is everything that depends on
it; for burn that is about 25 minutes of CI on 2 cores. The feature pins in `Cargo.toml` and
`python/Cargo.toml` make the two resolutions agree. This script compares cargo's unit graphs of the
two builds (`--unit-graph`, read through RUSTC_BOOTSTRAP=1: it only reads the plan, it builds
nothing) and fails, naming the crates and their differing features, when the extension would
recompile a crate that `cargo test` already compiled.

    python3 scripts/feature_pins.py        # exit 0: shared; exit 1: lists what to pin
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unit_graph(args):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    cmd = ["cargo", *args, "--locked", "--unit-graph", "-Z", "unstable-options"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"feature_pins: `{' '.join(cmd)}` failed:\n{done.stderr}")
    return json.loads(done.stdout)["units"]


def identities(units):
    """A hashable identity per unit: what cargo's artifact hash depends on (the profile's name and
    incremental flag excluded: `test` and `dev` share dependency artifacts)."""
    memo = {}

    def ident(i):
        if i not in memo:
            u = units[i]
            profile = {k: v for k, v in u["profile"].items() if k not in ("name", "incremental")}
            deps = tuple(sorted(ident(d["index"]) for d in u["dependencies"]))
            memo[i] = hash((u["pkg_id"], u["target"]["name"], tuple(u["target"]["kind"]),
                            tuple(sorted(u["features"])), json.dumps(profile, sort_keys=True),
                            u["mode"], u["platform"] or "", deps))
        return memo[i]

    return [ident(i) for i in range(len(units))]


def main():
    test = unit_graph(["test", "--no-run"])
    py = unit_graph(["rustc", "--manifest-path", "python/Cargo.toml", "--lib", "--crate-type", "cdylib"])
    test_ids, py_ids = identities(test), identities(py)
    built = set(test_ids)
    by_key = {}
    for u in test:
        by_key.setdefault((u["pkg_id"], u["target"]["name"], u["mode"]), []).append(u)
    rebuilt, causes = [], []
    for u, h in zip(py, py_ids):
        key = (u["pkg_id"], u["target"]["name"], u["mode"])
        if h in built or key not in by_key:
            continue  # shared, or a crate only the extension uses (pyo3, numpy, ...)
        name = u["pkg_id"].rsplit("#", 1)[-1]
        rebuilt.append(name)
        if all(py_ids[d["index"]] in built for d in u["dependencies"]):
            for other in by_key[key]:
                a, b = set(other["features"]), set(u["features"])
                causes.append(f"  {name} ({u['target']['name']}): only `cargo test` has {sorted(a - b)}, "
                              f"only the extension has {sorted(b - a)}")
    n_py_only = sum(1 for u in py if (u["pkg_id"], u["target"]["name"], u["mode"]) not in by_key)
    if rebuilt:
        print(f"feature_pins: the extension would recompile {len(rebuilt)} units `cargo test` built:")
        print("\n".join(sorted(set(causes))) or "  (profile differences)")
        print("pin the missing features: `cargo test`-only ones in python/Cargo.toml, extension-only "
              "ones in the root Cargo.toml's [dev-dependencies] (host crates: [build-dependencies])")
        return 1
    print(f"feature_pins: ok; the extension shares every unit with `cargo test` "
          f"and adds {n_py_only} of its own (pyo3, numpy, the extension)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
