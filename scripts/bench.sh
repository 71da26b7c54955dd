#!/usr/bin/env bash
# End-to-end benchmark: audithound's whole analysis against DuckDB's three queries on the same
# generated exports. Usage: scripts/bench.sh [EVENTS_IN_MILLIONS...]   (default: 1 10 30)
# Env: RUNS (default 3), WORK (default /tmp/audithound-bench), FORMATS (default "jsonl csv").
# Prints, per size and format: wall time of both (median of RUNS, runs alternated), the ratio,
# peak RSS of both (/usr/bin/time -v) and events/s. Not a test: nothing here asserts.
# The size is in events: one customer per 57.5 events asked (10 -> 174,000 customers), as
# bench_scale.sh. Until the forty-third session it asked one per 67, which made 8.7M events for
# "10", in folders named export-${m}M-$fmt; the docs' "8.7M" figures are those exports.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-1 10 30}")
read -r -a sizes <<<"${sizes[*]}"
runs="${RUNS:-3}"
work="${WORK:-/tmp/audithound-bench}"
formats="${FORMATS:-jsonl csv}"
mkdir -p "$work"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/audithound"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet duckdb pytz
fi
measure() { # prints "seconds max_rss_kb" for the command
  local log="$work/time.log"
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  echo "$wall $rss"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %-6s %10s %10s %10s %7s %10s %12s %12s\n' size format events ah_s duck_s ratio ah_rss_MB duck_rss_MB ah_ev/s
for m in "${sizes[@]}"; do
  customers=$(( m * 17400 ))
  for fmt in $formats; do
    dir="$work/export-${m}M-events-$fmt"
    if [ ! -f "$dir/.truth.json" ]; then
      "$bin" generate --out "$dir" --customers "$customers" --days 120 --no-compress --event-format "$fmt" --seed 7 >/dev/null 2>&1
    fi
    events=$(python3 -c "import json;print(json.load(open('$dir/.truth.json'))['events'])")
    ah_t=(); ah_r=(); dk_t=(); dk_r=()
    for ((i = 0; i < runs; i++)); do
      read -r t r < <(measure "$bin" analyze "$dir" --out "$work/report" --force --quiet)
      ah_t+=("$t"); ah_r+=("$r")
      read -r t r < <(measure "$work/venv/bin/python" scripts/duckdb_run.py "$dir" "$fmt")
      dk_t+=("$t"); dk_r+=("$r")
    done
    at=$(printf '%s\n' "${ah_t[@]}" | median); dt=$(printf '%s\n' "${dk_t[@]}" | median)
    ar=$(printf '%s\n' "${ah_r[@]}" | sort -g | tail -1); dr=$(printf '%s\n' "${dk_r[@]}" | sort -g | tail -1)
    awk -v m="${m}M" -v f="$fmt" -v n="$events" -v at="$at" -v dt="$dt" -v ar="$ar" -v dr="$dr" \
      'BEGIN { printf "%-6s %-6s %10d %10.2f %10.2f %7.2f %10d %12d %12.0f\n", m, f, n, at, dt, at / dt, ar / 1024, dr / 1024, n / at }'
  done
done
