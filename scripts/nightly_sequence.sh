#!/usr/bin/env bash
# Two audithound binaries adding night after night to a state of their own: the first N day
# folders of the nightly benchmark analysed whole, then each later folder added in turn up to M,
# as a nightly job runs. Unlike scripts/compare_nightly.sh (one night, on fresh copies) this
# counts what a state carries from night to night: a night's records kept beside the window's
# and, every few nights, merged into them (forty-fifth session).
# Usage: scripts/nightly_sequence.sh OLD_BIN NEW_BIN [N M]   (default 60 120)
# Env: WORK (see scripts/nights.sh). Prints per binary the
# nights added, their total and slowest seconds and the highest peak RSS, then whether the last
# night's reports match.
set -euo pipefail
old=$1 new=$2 from=${3:-60} to=${4:-120}
source "$(dirname "$0")/nights.sh"
for p in "old $old" "new $new"; do
  read -r name bin <<<"$p"
  state="$work/sequence-$name"
  state_of "$bin" "$from" "$state"
  total=0 slowest=0 peak=0
  for ((n = from; n < to; n++)); do
    /usr/bin/time -f "%e %M" "$bin" analyze "${days[n]}" "${ctx[@]}" --state "$state" \
      --out "$work/sequence-$name-report" --force --quiet 2>"$work/sequence.log" >/dev/null
    read -r s kb < <(tail -1 "$work/sequence.log")
    total=$(echo "$total + $s" | bc)
    slowest=$(echo "if ($s > $slowest) $s else $slowest" | bc)
    [ "$kb" -gt "$peak" ] && peak=$kb
  done
  echo "$name $((to - from)) nights: total ${total} s, slowest ${slowest} s, peak $((peak / 1024)) MB"
done
if diff -rq "$work/sequence-old-report" "$work/sequence-new-report" >/dev/null; then
  echo "last reports identical"
else
  echo "last reports differ"
fi
rm -rf "$work/sequence-old" "$work/sequence-new"
