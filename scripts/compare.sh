#!/usr/bin/env bash
# Two audithound binaries and DuckDB on the same 10M-event exports (scripts/bench.sh 10 makes
# them: 10.0M events; until the forty-third session export-10M-$fmt, 8.7M), alternated, so that a noisy
# machine's drift hits all three alike. Usage: scripts/compare.sh OLD_BIN NEW_BIN
# Env: RUNS (default 3), FORMATS (default "csv jsonl"), WORK (default /tmp/audithound-bench, where
# scripts/bench.sh leaves its exports and DuckDB venv), REVERSE=1 to run NEW before OLD.
# Prints "format binary seconds peak_rss_MB" per run; take medians over both orders.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
work="${WORK:-/tmp/audithound-bench}"
measure() {
  /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$work/cmp.log" || { tail -5 "$work/cmp.log"; return 1; }
  tail -1 "$work/cmp.log" | awk '{printf "%s %d\n", $1, $2 / 1024}'
}
for fmt in ${FORMATS:-csv jsonl}; do
  d="$work/export-10M-events-$fmt"
  for ((i = 0; i < ${RUNS:-3}; i++)); do
    pair=("old $old" "new $new")
    [ "${REVERSE:-0}" = 1 ] && pair=("new $new" "old $old")
    for p in "${pair[@]}"; do
      read -r name bin <<<"$p"
      echo "$fmt $name $(measure "$bin" analyze "$d" --out "$work/report-$name" --force --quiet)"
    done
    echo "$fmt duckdb $(measure "$work/venv/bin/python" scripts/duckdb_run.py "$d" "$fmt")"
  done
done
