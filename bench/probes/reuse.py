"""What in-run reuse (issue #17) could save: the demo's SQL steps reading their
inputs from Parquet, as floe-host's steps do, against reading them from
DuckDB's own tables, kept in memory or in a database file, and from Arrow.

DuckDB as floe-host links it (1.5.6, from the test venv), `threads: 2`,
`memory_limit: 2GB`, the Parquet settings floe-host and its baseline write.
The inputs are made from `floe-bench pipeline`'s generated CSV, each stage
as raw DuckDB (so the reuse question is asked of DuckDB alone, not of
floe-host's steps around it).

    $FLOE_CACHE/venv/bin/python bench/probes/reuse.py \
        --data $FLOE_CACHE/bench/pipeline/data/c1000000-o10000000-s42 [--reps 2]
"""

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

MODELS = Path(__file__).resolve().parents[2] / "examples/customer-analytics/models"
PARQUET = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"


def model(name):
    return (MODELS / f"{name}.sql").read_text()


def database(path=":memory:"):
    return duckdb.connect(path, config={"threads": 2, "memory_limit": "2GB"})


def timed(con, sql):
    started = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - started


def bronze(con, work):
    con.execute("CREATE SCHEMA IF NOT EXISTS bronze; CREATE SCHEMA IF NOT EXISTS silver")
    for table in ("raw_orders", "raw_customers"):
        con.execute(f"CREATE VIEW bronze.{table} AS SELECT * FROM '{work}/{table}.parquet'")


def prepare(data, work):
    """bronze as floe-host's ingest writes it: every column a string, `_row`,
    122,880-row groups."""
    con = database()
    for table, csv in (("raw_orders", "orders"), ("raw_customers", "customers")):
        con.execute(
            f"COPY (SELECT *, row_number() OVER () AS _row FROM read_csv('{data}/{csv}.csv', all_varchar = true)) "
            f"TO '{work}/{table}.parquet' {PARQUET[:-1]}, ROW_GROUP_SIZE 122880)"
        )


def silver_and_gold(work):
    """Each way of handing silver to gold; seconds per stage."""
    out = {}
    # As floe-host does: every stage writes Parquet, the next reads it.
    con = database()
    bronze(con, work)
    out["parquet"] = {
        "stg_orders": timed(con, f"COPY ({model('stg_orders')}) TO '{work}/so.parquet' {PARQUET}"),
        "stg_customers": timed(con, f"COPY ({model('stg_customers')}) TO '{work}/sc.parquet' {PARQUET}"),
    }
    con = database()
    con.execute(
        f"CREATE SCHEMA silver; CREATE VIEW silver.stg_orders AS SELECT * FROM '{work}/so.parquet';"
        f"CREATE VIEW silver.stg_customers AS SELECT * FROM '{work}/sc.parquet'"
    )
    for gold in ("customer_totals", "daily_revenue"):
        out["parquet"][gold] = timed(con, f"COPY ({model(gold)}) TO '{work}/{gold}.parquet' {PARQUET}")

    # Silver kept as a table of one database for the run (in memory), and
    # still written as Parquet for the commit.
    con = database()
    bronze(con, work)
    kept = {}
    for silver in ("stg_orders", "stg_customers"):
        kept[silver] = timed(con, f"CREATE TABLE silver.{silver} AS {model(silver)}") + timed(
            con, f"COPY silver.{silver} TO '{work}/{silver}-kept.parquet' {PARQUET}"
        )
    for gold in ("customer_totals", "daily_revenue"):
        kept[gold] = timed(con, f"COPY ({model(gold)}) TO '{work}/{gold}-kept.parquet' {PARQUET}")
    out["duckdb table, in memory"] = kept

    # Silver kept in a database file per table, which the gold steps attach
    # read-only (a database per step, as floe-host keeps them).
    con = database()
    bronze(con, work)
    filed = {}
    for silver in ("stg_orders", "stg_customers"):
        path = f"{work}/{silver}.duckdb"
        if os.path.exists(path):
            os.remove(path)
        con.execute(f"ATTACH '{path}' AS {silver}")
        filed[silver] = timed(con, f"CREATE TABLE {silver}.t AS {model(silver)}") + timed(
            con, f"COPY {silver}.t TO '{work}/{silver}-filed.parquet' {PARQUET}"
        )
    con.close()
    con = database()
    con.execute("CREATE SCHEMA silver")
    for silver in ("stg_orders", "stg_customers"):
        con.execute(f"ATTACH '{work}/{silver}.duckdb' AS {silver} (READ_ONLY)")
        con.execute(f"CREATE VIEW silver.{silver} AS SELECT * FROM {silver}.t")
    for gold in ("customer_totals", "daily_revenue"):
        filed[gold] = timed(con, f"COPY ({model(gold)}) TO '{work}/{gold}-filed.parquet' {PARQUET}")
    out["duckdb file per table"] = filed
    return out


def bronze_to_silver(work):
    """stg_orders over raw_orders read from Parquet, from a DuckDB table and
    from Arrow held by the process; seconds, and what holding it costs."""
    out = {}
    con = database()
    bronze(con, work)
    out["parquet"] = timed(con, f"COPY ({model('stg_orders')}) TO '{work}/x.parquet' {PARQUET}")
    con = database()
    con.execute("CREATE SCHEMA bronze")
    load = timed(con, f"CREATE TABLE bronze.raw_orders AS SELECT * FROM '{work}/raw_orders.parquet'")
    held = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
    out["duckdb table"] = timed(con, f"COPY ({model('stg_orders')}) TO '{work}/x.parquet' {PARQUET}")
    out["duckdb table: load"] = load
    out["duckdb table: MiB held"] = held >> 20
    started = time.perf_counter()
    arrow = pq.read_table(f"{work}/raw_orders.parquet")
    out["arrow: decode (pyarrow)"] = time.perf_counter() - started
    out["arrow: MiB held"] = arrow.nbytes >> 20
    con = database()
    con.execute("CREATE SCHEMA bronze")
    con.register("raw_orders_arrow", arrow)
    con.execute("CREATE VIEW bronze.raw_orders AS SELECT * FROM raw_orders_arrow")
    out["arrow"] = timed(con, f"COPY ({model('stg_orders')}) TO '{work}/x.parquet' {PARQUET}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="floe-bench pipeline's data folder (orders.csv, customers.csv)")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floe-reuse-") as work:
        prepare(args.data, work)
        for rep in range(args.reps):
            print(f"## rep {rep + 1}")
            for way, stages in silver_and_gold(work).items():
                total = sum(stages.values())
                cells = "  ".join(f"{k} {v:.2f}" for k, v in stages.items())
                print(f"silver → gold, {way:24} {cells}  Σ {total:.2f} s")
            cells = "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in bronze_to_silver(work).items())
            print(f"bronze → stg_orders: {cells}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB")


if __name__ == "__main__":
    main()
