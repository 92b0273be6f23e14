#!/usr/bin/env python3
"""A diagnostic beside `bitshipper bench lake`: the same queries in plain DataFusion (its Python
bindings, `pip install datafusion`) over the Parquet files the lake's Delta logs list, laid out
as hive partitions through symbolic links, without BitShipper's views or delta-rs's scan. It
separates what BitShipper's warehouse costs over DataFusion from what DataFusion costs over
DuckDB. Prints the median seconds of each query as a JSON list.

usage: bench_datafusion.py LAKE_DIR QUERIES_JSON RUNS
"""
import json
import os
import statistics
import sys
import tempfile
import time

import pyarrow as pa
from datafusion import SessionConfig, SessionContext
from deltalake import DeltaTable

PARTITIONS = {"events": "event_date", "shipments": "created_date"}


def main():
    lake, queries_file, runs = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
    queries = json.load(open(queries_file))
    ctx = SessionContext(SessionConfig().with_target_partitions(os.cpu_count() or 2))
    with tempfile.TemporaryDirectory() as farm:
        for table, day in PARTITIONS.items():
            delta = DeltaTable(f"{lake}/{table}")
            root = f"{lake}/{table}/"
            for uri in delta.file_uris():
                path = uri.removeprefix("file://")
                link = os.path.join(farm, table, os.path.relpath(path, root))
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(path, link)
            # Files written at different times disagree on string vs string-view types: read
            # them all under the table's own schema.
            schema = pa.schema(
                [f for f in pa.schema(delta.schema().to_arrow()) if f.name not in ("tenant_id", day)]
            )
            ctx.register_listing_table(
                table,
                os.path.join(farm, table) + "/",
                table_partition_cols=[("tenant_id", "string"), (day, "string")],
                file_extension=".parquet",
                schema=schema,
            )
        out = []
        for q in queries:
            # Hive partition values are strings here.
            sql = q["sql"].replace("DATE '", "'")
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                ctx.sql(sql).collect()
                times.append(time.perf_counter() - started)
            out.append(statistics.median(times))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
