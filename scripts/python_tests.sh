#!/usr/bin/env bash
# The Python package's tests: a virtual environment in .venv, the package built in the dev profile
# into the workspace's target directory (sharing what `cargo test` built), then pytest.
#   scripts/python_tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "maturin>=1.7,<2" numpy scipy safetensors pytest cantera
VIRTUAL_ENV="$PWD/.venv" .venv/bin/maturin develop -q --manifest-path python/Cargo.toml
# The CLI binary the tests compare against (built by `cargo test`; built here if missing).
[ -x target/debug/stiffx ] || cargo build -q --locked
.venv/bin/python -m pytest python/tests -q "$@"
