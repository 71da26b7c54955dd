# Sourced by scripts/compare_nightly.sh and scripts/nightly_sequence.sh: the nightly benchmark's
# day folders and context, and a state built from the first of them.
# Env: WORK (default /tmp/audithound-bench, where scripts/bench_state.sh leaves
# nights-10M-events/, 10.0M events; nights-10M before the forty-third session, 8.7M).
work="${WORK:-/tmp/audithound-bench}"
nights="$work/nights-10M-events"
ctx=(--roster "$nights/roster.csv" --credentials "$nights/credentials.csv")
mapfile -t days < <(find "$nights/days" -mindepth 1 -maxdepth 1 -type d | sort)

# state_of BIN N STATE: STATE made anew by BIN from the first N day folders, checked to hold N.
state_of() {
  local bin=$1 n=$2 state=$3
  rm -rf "$state"
  "$bin" analyze "${days[@]:0:n}" "${ctx[@]}" --state "$state" --out "$work/nightly-report" \
    --force --quiet 2>/dev/null
  local held
  held=$(grep -c '"path"' "$state/state.json")
  [ "$held" = "$n" ] || { echo "the $n-night state holds $held files" >&2; exit 1; }
}
