#!/usr/bin/env python3
"""Reads BitShipper's lake with other engines: the `deltalake` package (delta-rs's Python
binding) and DuckDB over the Parquet files the Delta log lists. Prints, per engine and table,
the row count and a few sums for one tenant, as JSON; the Rust test compares them with
BitShipper's own queries.

usage: lake_interop.py LAKE_ROOT TENANT_ID   (a local directory or s3://bucket/prefix; S3
settings come from AWS_* variables, DuckDB is skipped on S3: its S3 support is an extension
downloaded at run time)
"""
import json
import os
import sys

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable

SUMS = {
    "events": ["log_seq"],
    "shipments": ["log_seq", "events_count"],
    "predictions": [],
}


def storage_options():
    keys = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ALLOW_HTTP"]
    opts = {k: os.environ[k] for k in keys if k in os.environ}
    if opts.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        opts.setdefault("AWS_ALLOW_HTTP", "true")
    return opts


def main():
    root, tenant = sys.argv[1].rstrip("/"), sys.argv[2]
    on_s3 = root.startswith("s3://")
    out = {"deltalake": {}, "duckdb": {}}
    for table, columns in SUMS.items():
        dt = DeltaTable(f"{root}/{table}", storage_options=storage_options() if on_s3 else None)
        data = dt.to_pyarrow_table(partitions=[("tenant_id", "=", tenant)])
        result = {"count": data.num_rows}
        for c in columns:
            result[f"sum_{c}"] = pc.sum(data[c]).as_py() or 0
        out["deltalake"][table] = result
        if on_s3:
            continue
        files = [u.removeprefix("file://") for u in dt.file_uris()]
        if not files:
            out["duckdb"][table] = {"count": 0, **{f"sum_{c}": 0 for c in columns}}
            continue
        select = ", ".join(["count(*)"] + [f"coalesce(sum({c}), 0)" for c in columns])
        row = duckdb.execute(
            f"SELECT {select} FROM read_parquet(?, hive_partitioning = true) WHERE tenant_id = ?",
            [files, tenant],
        ).fetchone()
        result = {"count": row[0]}
        for i, c in enumerate(columns):
            result[f"sum_{c}"] = int(row[i + 1])
        out["duckdb"][table] = result
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
