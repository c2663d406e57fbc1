"""Shared fixtures: small trained checkpoints (trained once per session through ``stiffx.run``) and the
path of the ``stiffx`` command-line binary that the comparisons run against."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import stiffx

REPO = Path(__file__).resolve().parents[2]


def stiffx_bin() -> Path:
    """The CLI binary: ``$STIFFX_BIN``, else ``target/debug/stiffx`` or ``target/release/stiffx``."""
    env = os.environ.get("STIFFX_BIN")
    candidates = [Path(env)] if env else [REPO / "target/debug/stiffx", REPO / "target/release/stiffx"]
    for c in candidates:
        if c.is_file():
            return c
    pytest.fail(f"no stiffx binary at {[str(c) for c in candidates]}: run `cargo build` first or set STIFFX_BIN")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the CLI from the repository root."""
    return subprocess.run([str(stiffx_bin()), *args], cwd=REPO, capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def ds_run(tmp_path_factory) -> stiffx.RunResult:
    """Davis–Skodje, ``configs/tiny.toml``: trained once through the Python API."""
    out = tmp_path_factory.mktemp("ds") / "run"
    return stiffx.run(REPO / "configs/tiny.toml", out=out, progress=False)


@pytest.fixture(scope="session")
def rob_run(tmp_path_factory) -> stiffx.RunResult:
    """Robertson, ``configs/tiny_robertson.toml`` with more epochs (asinh state input, invariant
    projection, log eps input: every part of the format)."""
    out = tmp_path_factory.mktemp("rob") / "run"
    cfg = (REPO / "configs/tiny_robertson.toml").read_text().replace("epochs = 3", "epochs = 20")
    path = out.parent / "rob.toml"
    path.write_text(cfg)
    return stiffx.run(path, out=out, progress=False)
