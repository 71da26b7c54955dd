#!/usr/bin/env bash
# Nightly runs with --state against one run without: the benchmark export split into one folder
# per event day, a state built from all nights but the last, then the last night added.
# Usage: scripts/bench_state.sh [EVENTS_IN_MILLIONS]   (default 10)
# Env: WORK (default /tmp/audithound-bench). Prints wall time and peak RSS of each run; not a test.
# The size is in events, as scripts/bench.sh (10 -> 10.0M); until the forty-third session it made
# 8.7M for "10", in nights-10M (the docs' 8.7M-event nights).
set -euo pipefail
cd "$(dirname "$0")/.."
m="${1:-10}"
work="${WORK:-/tmp/audithound-bench}"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/audithound"
export_dir="$work/export-${m}M-events-jsonl"
if [ ! -f "$export_dir/.truth.json" ]; then
  "$bin" generate --out "$export_dir" --customers $(( m * 17400 )) --days 120 \
    --no-compress --event-format jsonl --seed 7 >/dev/null 2>&1
fi
nights="$work/nights-${m}M-events"
if [ ! -d "$nights/days" ]; then
  mkdir -p "$nights/days"
  cp "$export_dir/roster.csv" "$export_dir/credentials.csv" "$nights/"
  find "$export_dir" -name '*.jsonl' | sort | xargs cat | python3 scripts/split_by_day.py "$nights/days"
fi
ctx=(--roster "$nights/roster.csv" --credentials "$nights/credentials.csv")
mapfile -t days < <(find "$nights/days" -mindepth 1 -maxdepth 1 -type d | sort)
last="${days[-1]}"
run() { # label, then the analyze arguments
  local label="$1"; shift
  /usr/bin/time -f "$label: wall %e s, peak RSS %M KB" "$bin" analyze "$@" "${ctx[@]}" \
    --out "$work/state-report" --force --quiet 2>&1 >/dev/null | tail -1
}
rm -rf "$work/state"
run "one run over ${#days[@]} nights, no state" "$nights/days"
run "state built from $(( ${#days[@]} - 1 )) nights" "${days[@]:0:${#days[@]}-1}" --state "$work/state"
run "the last night added to the state" "$last" --state "$work/state"
run "the same night again (nothing new)" "$last" --state "$work/state"
du -sh "$work/state"
# The issue's yardstick: one night added to a 30-night state, against the last night above (added
# to a 120-night one). Proportional to the night, the two would take the same time.
rm -rf "$work/state-30"
run "state built from 30 nights" "${days[@]:0:30}" --state "$work/state-30" >/dev/null
run "night 31 added to the 30-night state" "${days[30]}" --state "$work/state-30"
