#!/usr/bin/env bash
# Create (or reuse) the Python venv used by trailhouse's Python tests and tools.
# Idempotent: rebuilds only when the venv is missing/broken or tests/python/requirements.txt
# changed (its sha256 is stamped inside the venv). Prints the venv path as the LAST stdout line:
#   VENV=$(.ci/python-env.sh | tail -1); "$VENV/bin/python" tests/python/ocsf_validate.py rows.jsonl
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/tests/python/requirements.txt"
VENV="${TRAILHOUSE_VENV:-$HOME/.cache/trailhouse/venv}"
STAMP="$VENV/.requirements.sha256"
PY="${TRAILHOUSE_PYTHON:-python3}"  # interpreter that creates the venv

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"

if [[ "$want" != "$have" || ! -x "$VENV/bin/python" ]]; then
  echo "python-env: (re)building $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
  echo "$want" >"$STAMP"   # written last: a failed install leaves no stamp and is retried
else
  echo "python-env: up to date ($VENV)" >&2
fi

echo "$VENV"
