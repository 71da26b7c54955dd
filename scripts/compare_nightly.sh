#!/usr/bin/env bash
# Two audithound binaries on the issue's nightly yardstick: night N+1 added to a state of the first
# N day folders, alternated, each run on a fresh copy of a state built here, so that no run changes
# what the next one starts from (hand-kept states had taken their night by mistake: see
# docs/performance.md, thirtieth session). Each binary's state is built by that binary, so that
# two versions of the state's format compare (forty-fifth session: until then one state, built
# by NEW_BIN, served both).
# Usage: scripts/compare_nightly.sh OLD_BIN NEW_BIN [N ...]   (default N: 30 120)
# Env: RUNS (default 3), WORK (see scripts/nights.sh). Prints "nights binary seconds
# peak_rss_MB" per run, then whether the reports match.
set -euo pipefail
old=$1 new=$2
shift 2
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(30 120)
source "$(dirname "$0")/nights.sh"
for n in "${sizes[@]}"; do
  for p in "old $old" "new $new"; do
    read -r name bin <<<"$p"
    state_of "$bin" "$n" "$work/nightly-base-$n-$name"
  done
  for ((i = 0; i < ${RUNS:-3}; i++)); do
    for p in "old $old" "new $new"; do
      read -r name bin <<<"$p"
      rm -rf "$work/nightly-copy"
      cp -r "$work/nightly-base-$n-$name" "$work/nightly-copy"
      /usr/bin/time -f "%e %M" "$bin" analyze "${days[n]}" "${ctx[@]}" --state "$work/nightly-copy" \
        --out "$work/nightly-$name" --force --quiet 2>"$work/nightly.log" >/dev/null
      echo "$n $name $(tail -1 "$work/nightly.log" | awk '{printf "%s %d\n", $1, $2 / 1024}')"
    done
  done
  if diff -rq "$work/nightly-old" "$work/nightly-new" >/dev/null; then
    echo "$n reports identical"
  else
    echo "$n reports differ"
  fi
  rm -rf "$work/nightly-copy" "$work/nightly-base-$n-old" "$work/nightly-base-$n-new"
done
