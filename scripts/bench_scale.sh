#!/usr/bin/env bash
# Peak memory and time at sizes where an uncompressed export does not fit the disk: generates the
# benchmark export compressed as `generate` writes it (gateway and sign-in logs gzip, the issuer's
# log zstd), then runs `analyze --timings` once under /usr/bin/time -v and prints the stage laps,
# the wall time and the peak RSS. No DuckDB here (its runner reads the plain exports of bench.sh).
# Usage: scripts/bench_scale.sh [EVENTS_IN_MILLIONS...]   (default: 100)
# The size is in events: one customer per 57.5 events asked (100 -> 1,740,000 customers, which
# made 100.09M events). Until the forty-first session it asked one per 67 and the generator made
# about 0.86 of that (100 -> 85.9M events, 300 -> 257.5M), in folders named export-${m}M-gz: the
# docs' "85.9M" and "257.5M" figures are those exports. `--timings` prints the frame's rows:
# quote those.
# Env: WORK (default /tmp/audithound-bench). ~3.5 GB of disk and ~3.2 GB of RAM at 100M; not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100)
work="${WORK:-/tmp/audithound-bench}"
mkdir -p "$work"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/audithound"
for m in "${sizes[@]}"; do
  dir="$work/export-${m}M-events-gz"
  if [ ! -f "$dir/.truth.json" ]; then
    "$bin" generate --out "$dir" --customers $(( m * 17400 )) --days 120 \
      --event-format jsonl --seed 7 >/dev/null 2>&1
  fi
  log="$work/scale-${m}M.log"
  /usr/bin/time -v "$bin" analyze "$dir" --out "$work/scale-report" --force --quiet --timings \
    >/dev/null 2>"$log"
  echo "== ${m}M ($(du -sh "$dir" | cut -f1) compressed)"
  grep -E '^timing' "$log"
  grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$log"
done
