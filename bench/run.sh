#!/usr/bin/env bash
# Reproduces the README's benchmark table in one command: a release build, the Python
# venv (with DuckDB for the peer), then bench/e2e.py (arguments are passed on, e.g.
# --corpus DIR, --json FILE, --no-peer).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trailhouse/target}"
cargo build --release --locked -p trailhouse
VENV="$(.ci/python-env.sh | tail -1)"
exec "$VENV/bin/python" bench/e2e.py --bin "$CARGO_TARGET_DIR/release/trailhouse" "$@"
