#!/usr/bin/env bash
# The cluster path against the local one: the benchmark's nights (scripts/bench_state.sh makes
# them) read into a new state by this process, then by a Spark local-cluster of two one-core
# executors; the two reports must be byte-identical. Prints wall time and peak RSS of each run
# and each task's wall time (--timings). Not a test.
# Usage: scripts/bench_cluster.sh [EVENTS_IN_MILLIONS] [TASKS]   (default 10, 16)
# Env: WORK (default /tmp/audithound-bench), MASTER (default local-cluster[2,1,1024]).
set -euo pipefail
cd "$(dirname "$0")/.."
m="${1:-10}"
tasks="${2:-16}"
work="${WORK:-/tmp/audithound-bench}"
master="${MASTER:-local-cluster[2,1,1024]}"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/audithound"
nights="$work/nights-${m}M-events"
[ -d "$nights/days" ] || { echo "run scripts/bench_state.sh $m first" >&2; exit 2; }
if [ ! -x "$work/spark-venv/bin/python" ] || ! "$work/spark-venv/bin/python" -c 'import pyspark' 2>/dev/null; then
  python3 -m venv "$work/spark-venv"
  "$work/spark-venv/bin/pip" install --quiet pyspark==4.0.1
fi
ctx=(--roster "$nights/roster.csv" --credentials "$nights/credentials.csv")
run() { # label, report folder, then the analyze arguments
  local label="$1" out="$2"; shift 2
  /usr/bin/time -f "$label: wall %e s, peak RSS %M KB (largest process)" "$bin" analyze "$nights/days" \
    "${ctx[@]}" --out "$out" --force --quiet --timings "$@" 2>&1 >/dev/null |
    grep -E "^timing: (cluster|ingest)|wall"
}
rm -rf "$work/cluster-state-here" "$work/cluster-state-there"
run "state built here" "$work/cluster-report-here" --state "$work/cluster-state-here"
run "state built by the cluster ($master, $tasks tasks)" "$work/cluster-report-there" \
  --state "$work/cluster-state-there" --cluster "$master" --cluster-tasks "$tasks" \
  --cluster-python "$work/spark-venv/bin/python"
diff -r "$work/cluster-report-here" "$work/cluster-report-there" >/dev/null &&
  echo "reports: byte-identical" || { echo "reports: DIFFER" >&2; exit 1; }
