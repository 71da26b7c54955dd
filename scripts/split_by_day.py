"""Splits canonical JSON lines on stdin into OUTDIR/YYYY-MM-DD/events.jsonl by the UTC day of
their timestamp (RFC 3339, or epoch seconds / milliseconds / microseconds): one folder a night,
for scripts/bench_state.sh."""
import datetime
import os
import sys

out_dir = sys.argv[1]
files = {}


def day_of(value: str) -> str:
    try:
        x = float(value)
    except ValueError:
        return value[:10]
    if x > 1e14:
        x /= 1e6
    elif x > 1e11:
        x /= 1e3
    return datetime.datetime.fromtimestamp(x, datetime.timezone.utc).strftime("%Y-%m-%d")


for line in sys.stdin.buffer:
    i = line.find(b'"timestamp":')
    if i < 0:
        continue
    j = i + len(b'"timestamp":')
    if line[j:j + 1] == b'"':
        value = line[j + 1:line.index(b'"', j + 1)].decode()
    else:
        k = j
        while line[k:k + 1] not in (b",", b"}", b""):
            k += 1
        value = line[j:k].decode()
    day = day_of(value)
    if len(day) != 10 or day[4] != "-":
        day = "undated"
    fh = files.get(day)
    if fh is None:
        os.makedirs(os.path.join(out_dir, day), exist_ok=True)
        fh = files[day] = open(os.path.join(out_dir, day, "events.jsonl"), "wb", buffering=1 << 20)
    fh.write(line)
for fh in files.values():
    fh.close()
