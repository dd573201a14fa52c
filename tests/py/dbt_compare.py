#!/usr/bin/env python3
"""Runs a dbt project with real dbt-core + dbt-duckdb over the bronze tables
that floe-host wrote, and compares every model's table with the one floe-host
committed (tests/integration/dbt.rs).

  dbt_compare.py --project DBT_DIR --state-dir DIR --db FILE
                 --source bronze.raw_orders [--source ...]
                 --model silver.stg_orders [--model ...] [--vars YAML] [--with-tests]

DIR is floe-host's --state-dir (a SQLite catalog and warehouse). FILE is the
DuckDB database dbt builds in; keep it between two calls to run an incremental
model twice. The sources are copied from floe-host's catalog into FILE before
`dbt run`. dbt writes its target/ and logs/ next to FILE, never into the project.

Prints one JSON object:

  {"dbt_seconds": 3.2,
   "models": {"silver.stg_orders": {"dbt_rows": 4367, "floe_rows": 4367,
                                    "equal": true, "difference": null}, ...}}

With --with-tests, `dbt test` runs after and "dbt_tests" counts its results
by status ({"pass": 7} or {"pass": 6, "fail": 1}); "dbt_test_failures" gives the
failing rows of each test that found some ({"relationships_stg_orders_...": 39}).

Rows are compared as sorted lists of values (decimals and dates as text).
On failure: {"error": "..."} and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def catalog(state_dir: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "default",
        uri=f"sqlite:///{state_dir.resolve() / 'catalog.db'}",
        warehouse=f"file://{state_dir.resolve() / 'warehouse'}",
    )


def rows(table) -> list[tuple]:
    """Every row as a tuple of comparable values, sorted."""
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    as_text = [tuple("" if v is None else str(v) for v in row) for row in zip(*columns)]
    return sorted(as_text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", required=True, type=Path)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--source", action="append", default=[])
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--vars", default=None)
    parser.add_argument("--with-tests", action="store_true", help="then `dbt test`, and report its results")
    args = parser.parse_args()

    import duckdb

    iceberg = catalog(args.state_dir)
    work = args.db.parent
    connection = duckdb.connect(str(args.db))
    for name in args.source:
        schema, table = name.split(".")
        data = iceberg.load_table(name).scan().to_arrow()
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.register("incoming", data)
        connection.execute(f"CREATE OR REPLACE TABLE {schema}.{table} AS SELECT * FROM incoming")
        connection.unregister("incoming")
    connection.close()

    profiles = work / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "profiles.yml").write_text(
        "floe:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {json.dumps(str(args.db.resolve()))}\n      threads: 1\n      schema: main\n"
    )
    command = [
        str(Path(sys.executable).parent / "dbt"),
        "run",
        "--project-dir", str(args.project.resolve()),
        "--profiles-dir", str(profiles),
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--no-version-check",
        "--no-partial-parse",
    ]
    if args.vars:
        command += ["--vars", args.vars]
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        print(json.dumps({"error": f"dbt run failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-2000:]}"}))
        return 1

    connection = duckdb.connect(str(args.db), read_only=True)
    models = {}
    for name in args.model:
        theirs = rows(connection.execute(f"SELECT * FROM {name}").to_arrow_table())
        ours = rows(iceberg.load_table(name).scan().to_arrow())
        difference = None
        if theirs != ours:
            only_dbt = sorted(set(theirs) - set(ours))[:3]
            only_floe = sorted(set(ours) - set(theirs))[:3]
            difference = {"only_dbt": only_dbt, "only_floe": only_floe}
        models[name] = {"dbt_rows": len(theirs), "floe_rows": len(ours), "equal": theirs == ours, "difference": difference}
    connection.close()
    out = {"dbt_seconds": round(seconds, 2), "models": models}
    if args.with_tests:
        test = subprocess.run([command[0], "test", *command[2:]], capture_output=True, text=True, env=env, cwd=work)
        results = json.loads((work / "target" / "run_results.json").read_text())["results"]
        statuses = [r["status"] for r in results]
        out["dbt_tests"] = {status: statuses.count(status) for status in sorted(set(statuses))}
        # Failing rows of every test that found some, by dbt's test name.
        out["dbt_test_failures"] = {
            r["unique_id"].split(".")[2]: r["failures"] for r in results if r.get("failures")
        }
        out["dbt_test_exit_code"] = test.returncode
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # noqa: BLE001 - reported to the Rust test as JSON
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        sys.exit(1)
