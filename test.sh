#!/usr/bin/env bash
# The one command that runs every check and test of trailhouse on a fresh machine:
# formatting, clippy, the API docs, the Rust test suite, and the Python-side tests (official
# OCSF 1.1.0 schema validation of the lake, S3/SQS emulator tests, the dashboard page in
# headless Chromium). It installs what it needs itself (a Python venv with pinned packages,
# Debian's chromium and chromium-driver).
set -euo pipefail
cd "$(dirname "$0")"

# Build cache outside the clone, reused across runs (CI and developers alike).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trailhouse/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo doc (no broken or private links in the API docs)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

echo "== python venv"
VENV="$(.ci/python-env.sh | tail -1)"
.ci/browser-env.sh   # headless Chromium + chromedriver for tests/python/test_dashboard.py (apt, as root)

echo "== cargo test"
# Also builds target/debug/trailhouse, which the Python tests run.
cargo test --workspace --locked

echo "== python tests (OCSF schema validation, emulator tests, dashboard in a browser)"
export TRAILHOUSE_BIN="$CARGO_TARGET_DIR/debug/trailhouse"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -p no:cacheprovider -q tests/python
