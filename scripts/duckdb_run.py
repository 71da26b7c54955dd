"""Runs scripts/duckdb_queries.sql on one generated export; prints row counts of the three answers."""
import pathlib
import sys

import duckdb

export, fmt = pathlib.Path(sys.argv[1]), sys.argv[2]
files = [str(p) for p in sorted(export.glob("*/*." + fmt))]
listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
cols = ("timestamp", "event_type", "principal", "credential_id", "token_id", "source_ip",
        "user_agent", "action", "target_account", "outcome", "records")
if fmt == "csv":
    reader = f"read_csv({listing}, all_varchar = true, union_by_name = true)"
elif fmt == "parquet":
    reader = f"read_parquet({listing}, union_by_name = true)"
else:
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    reader = f"read_json({listing}, format = 'newline_delimited', columns = {spec})"
sql = pathlib.Path(__file__).with_name("duckdb_queries.sql").read_text()
sql = sql.replace("{FILES}", reader).replace("{DIR}", str(export))
con = duckdb.connect()
for stmt in sql.split(";"):
    code = "\n".join(l for l in stmt.splitlines() if not l.strip().startswith("--")).strip()
    if not code:
        continue
    rows = con.execute(code).fetchall()
    if code.upper().startswith("SELECT"):
        print(len(rows), "rows")
