"""Copies a generated CSV export as Parquet (one .parquet per CSV event file, zstd, every column
as text like the CSV), context files unchanged: the Parquet leg of the benchmark.
Usage: python scripts/to_parquet.py EXPORT_CSV_DIR OUT_DIR"""
import pathlib
import shutil
import sys

import duckdb

src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in sorted(src.rglob("*")):
    rel = path.relative_to(src)
    if path.is_dir():
        continue
    target = dst / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if rel.parent == pathlib.Path("."):
        shutil.copy(path, target)  # roster.csv, credentials.csv
        continue
    out = target.with_suffix(".parquet")
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{path}', all_varchar = true)) "
               f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
