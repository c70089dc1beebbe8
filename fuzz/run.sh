#!/usr/bin/env bash
# Runs one fuzz target for a while, the way the numbers in README.md were produced:
#   fuzz/run.sh <target> [seconds] [extra libFuzzer args...]
# Seeds from fuzz/seeds/<target>/ are copied into fuzz/corpus/<target>/ first (the
# corpus and artifacts dirs are gitignored). Low priority, one job.
set -euo pipefail
cd "$(dirname "$0")"
target="$1"; secs="${2:-600}"; shift $(( $# >= 2 ? 2 : 1 ))
case "$target" in
  log_file|reader) max_len=1048576 ;;
  record|json_record) max_len=65536 ;;
  strings) max_len=4096 ;;
  notification) max_len=65536 ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-fuzz}"
mkdir -p "corpus/$target" "artifacts/$target"
# `reader` reads the same objects as `log_file` (its byte 0 means other things).
seeds="seeds/$target"; [ "$target" = reader ] && seeds=seeds/log_file
cp -n "$seeds"/* "corpus/$target/" 2>/dev/null || true
exec nice -n 19 cargo fuzz run "$target" "corpus/$target" -- \
  -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$max_len" -timeout=60 \
  -dict=dict/cloudtrail.dict -print_final_stats=1 "$@"
