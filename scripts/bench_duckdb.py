#!/usr/bin/env python3
"""DuckDB's side of `bitshipper bench lake`: runs the same queries over the Parquet files the
lake's Delta logs list (read with the `deltalake` package), with the same views, and prints the
median seconds of each query as a JSON list.

usage: bench_duckdb.py LAKE_DIR QUERIES_JSON RUNS
"""
import json
import statistics
import sys
import time

import duckdb
from deltalake import DeltaTable


def main():
    lake, queries_file, runs = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
    queries = json.load(open(queries_file))
    con = duckdb.connect()
    for table in ["events", "shipments"]:
        files = [u.removeprefix("file://") for u in DeltaTable(f"{lake}/{table}").file_uris()]
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)"
        )
    out = []
    for q in queries:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            con.execute(q["sql"]).fetchall()
            times.append(time.perf_counter() - started)
        out.append(statistics.median(times))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
