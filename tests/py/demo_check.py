#!/usr/bin/env python3
"""Cross-engine check for the customer-analytics demo.

  expected --data DIR
      An independent reference computed from the raw CSVs (customers.csv,
      orders.csv) in pure Python (csv + decimal, no DuckDB), following the
      pipeline's documented semantics.
  actual --catalog-uri URI --warehouse W --catalog-name NAME
      The same figures read back through pyiceberg's SqlCatalog from the tables
      floe-host wrote, plus each table's current snapshot_id and its columns.
      URI is SQLAlchemy's form: sqlite:////abs/path/.floe/catalog.db (four
      slashes = absolute path). A plain file path, or sqlx's sqlite:/abs/path
      (one slash), is converted; sqlx's sqlite:///abs form is not accepted
      as such (SQLAlchemy reads it as a relative path). NAME and W must match
      what floe-host used, or the tables are not found.
  selftest --data DIR
      Writes the reference tables with pyiceberg into a temporary SQLite catalog,
      runs `actual` against it and compares with `expected` (checks this script).

Each subcommand prints exactly one JSON object on stdout:

  {"tables": {"bronze.raw_customers": {"rows": 1055, ...}, ...}}

Row counts and the order-count sums are JSON integers; money sums are strings
with exactly two decimals ("123456.78"). `actual` adds per table "snapshot_id"
(null when the table has no snapshot) and "columns" ([[name, iceberg type], ...]).
On failure the object has an "error" key and the exit code is non-zero (1: a
table is missing or unreadable; 2: usage).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

TABLES = [
    "bronze.raw_customers",
    "bronze.raw_orders",
    "silver.stg_customers",
    "silver.stg_orders",
    "gold.customer_totals",
    "gold.daily_revenue",
    # Steps that run the example transform plugins (kind: wasm).
    "silver.customer_contacts",
    "silver.first_orders",
    "gold.large_orders",
]

# The salt the demo's pii-mask step uses (examples/customer-analytics/floe.yaml).
DEMO_SALT = "customer-analytics-demo"

# Which column each figure sums, per table: (output key, column, kind).
SUMS = {
    "silver.stg_orders": [("sum_amount", "amount", "money")],
    "gold.customer_totals": [
        ("sum_total_amount", "total_amount", "money"),
        ("sum_order_count", "order_count", "count"),
    ],
    "gold.daily_revenue": [
        ("sum_revenue", "revenue", "money"),
        ("sum_orders", "orders", "count"),
    ],
    # dedup keeps the first record per order_id: the sum of their _row proves which.
    "silver.first_orders": [("sum__row", "_row", "count")],
    "gold.large_orders": [("sum_amount", "amount", "money")],
}

# customer_contacts: the names are salted SHA-256 hex digests; this figure sums
# the first 8 hex digits of each, so it checks the exact hashing.
HASH_FIGURE = ("sum_name_hash_prefix", "customer_name")


def hash_prefix_sum(names) -> int:
    return sum(int(n[:8], 16) for n in names if n is not None)


CENT = Decimal("0.01")
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
_INT_RE = re.compile(r"[+-]?[0-9]+")
_DEC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def money(d: Decimal) -> str:
    """Exactly two decimals, no exponent, e.g. "123456.78"."""
    return f"{d.quantize(CENT):f}"


# --------------------------------------------------------------------------
# expected: the reference implementation
# --------------------------------------------------------------------------


def read_bronze(path: Path) -> list[dict]:
    """CSV as-is: every column a nullable string, only an empty field is NULL,
    nothing trimmed, plus `_row` = 1-based record number after the header."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, strict=True)
        header = next(reader)
        for n, rec in enumerate(reader, start=1):
            if len(rec) != len(header):
                raise ValueError(f"{path}: record {n} has {len(rec)} fields, expected {len(header)}")
            row = {k: (v if v != "" else None) for k, v in zip(header, rec)}
            row["_row"] = n
            rows.append(row)
    return rows


def try_bigint(s: str | None) -> int | None:
    """TRY_CAST(s AS BIGINT) for the values the generator produces (plain integers)."""
    if s is None:
        return None
    t = s.strip()
    if not _INT_RE.fullmatch(t):
        return None
    v = int(t)
    return v if I64_MIN <= v <= I64_MAX else None


def try_decimal_12_2(s: str | None) -> Decimal | None:
    """TRY_CAST(s AS DECIMAL(12,2)): a plain decimal that fits 10 integer digits."""
    if s is None:
        return None
    t = s.strip()
    if not _DEC_RE.fullmatch(t):
        return None
    try:
        v = Decimal(t).quantize(CENT)
    except InvalidOperation:
        return None
    return v if abs(v) < Decimal(10) ** 10 else None


def try_date(s: str | None) -> date | None:
    if s is None:
        return None
    try:
        return date.fromisoformat(s.strip())
    except ValueError:
        return None


def reference(data: Path) -> dict:
    raw_c = read_bronze(data / "customers.csv")
    raw_o = read_bronze(data / "orders.csv")

    # silver.stg_customers: castable id, email = lower(trim(email)), first row per id.
    stg_c: dict[int, dict] = {}
    for r in sorted(raw_c, key=lambda r: r["_row"]):
        cid = try_bigint(r["customer_id"])
        if cid is None or cid in stg_c:
            continue
        email = r["email"]
        stg_c[cid] = {
            "customer_id": cid,
            "customer_name": r["customer_name"],
            # SQL trim() removes spaces only.
            "email": email.strip(" ").lower() if email is not None else None,
            "region": r["region"],
            "signup_date": try_date(r["signup_date"]),
        }

    # silver.stg_orders: FIRST keep the lowest _row per castable order_id, THEN keep
    # rows whose amount casts to decimal(12,2) and whose status <> 'cancelled'.
    first_o: dict[int, dict] = {}
    for r in sorted(raw_o, key=lambda r: r["_row"]):
        oid = try_bigint(r["order_id"])
        if oid is not None and oid not in first_o:
            first_o[oid] = r
    stg_o = []
    for oid, r in first_o.items():
        amount = try_decimal_12_2(r["amount"])
        # `status IS DISTINCT FROM 'cancelled'`: a missing status is not cancelled.
        if amount is None or r["status"] == "cancelled":
            continue
        stg_o.append(
            {
                "order_id": oid,
                "customer_id": try_bigint(r["customer_id"]),
                "order_date": try_date(r["order_date"]),
                "amount": amount,
                "status": r["status"],
            }
        )

    # gold: stg_orders INNER JOIN stg_customers USING (customer_id).
    joined = [
        (o, stg_c[o["customer_id"]]) for o in stg_o if o["customer_id"] is not None and o["customer_id"] in stg_c
    ]
    totals: dict[tuple, dict] = {}
    daily: dict[tuple, dict] = {}
    for o, c in joined:
        t = totals.setdefault(
            (o["customer_id"], c["region"]),
            {"order_count": 0, "total_amount": Decimal(0), "first": o["order_date"], "last": o["order_date"]},
        )
        t["order_count"] += 1
        t["total_amount"] += o["amount"]
        t["first"] = min(t["first"], o["order_date"])
        t["last"] = max(t["last"], o["order_date"])
        d = daily.setdefault((o["order_date"], c["region"]), {"revenue": Decimal(0), "orders": 0})
        d["revenue"] += o["amount"]
        d["orders"] += 1

    # silver.first_orders: dedup of the raw orders by the order_id text (NULL
    # equal to NULL), keeping the first record.
    first_by_text: dict = {}
    for r in sorted(raw_o, key=lambda r: r["_row"]):
        first_by_text.setdefault(r["order_id"], r)

    contacts = [
        dict(c, customer_name=hashlib.sha256((DEMO_SALT + c["customer_name"]).encode()).hexdigest()
             if c["customer_name"] is not None else None)
        for c in stg_c.values()
    ]

    return {
        "customer_contacts": contacts,
        "first_orders": list(first_by_text.values()),
        "large_orders": [o for o in stg_o if o["amount"] >= Decimal("500")],
        "raw_customers": raw_c,
        "raw_orders": raw_o,
        "stg_customers": list(stg_c.values()),
        "stg_orders": stg_o,
        "customer_totals": [
            {
                "customer_id": cid,
                "region": region,
                "order_count": t["order_count"],
                "total_amount": t["total_amount"],
                "first_order_date": t["first"],
                "last_order_date": t["last"],
            }
            for (cid, region), t in totals.items()
        ],
        "daily_revenue": [
            {"order_date": day, "region": region, "revenue": d["revenue"], "orders": d["orders"]}
            for (day, region), d in daily.items()
        ],
    }


def expected(data: Path) -> dict:
    ref = reference(data)
    tables = {}
    for name in TABLES:
        rows = ref[name.split(".", 1)[1]]
        out = {"rows": len(rows)}
        for key, col, kind in SUMS.get(name, []):
            total = sum((r[col] for r in rows if r[col] is not None), Decimal(0) if kind == "money" else 0)
            out[key] = money(total) if kind == "money" else int(total)
        if name == "silver.customer_contacts":
            out[HASH_FIGURE[0]] = hash_prefix_sum(r[HASH_FIGURE[1]] for r in rows)
        tables[name] = out
    return {"tables": tables}


# --------------------------------------------------------------------------
# actual: read through pyiceberg
# --------------------------------------------------------------------------


def sqlalchemy_uri(uri: str) -> str:
    """Accepts the SQLAlchemy URI (sqlite:////abs/path/catalog.db), a plain file
    path, or sqlx's unambiguous `sqlite:/abs/path` form; returns SQLAlchemy's."""
    if "://" not in uri:
        path = uri[len("sqlite:") :] if uri.startswith("sqlite:") else uri
        path = path.split("?", 1)[0]
        return "sqlite:///" + os.path.abspath(path)
    return uri


def open_catalog(name: str, uri: str, warehouse: str, props: dict | None = None):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(name, uri=sqlalchemy_uri(uri), warehouse=warehouse, **(props or {}))


def table_figures(table, name: str) -> dict:
    import pyarrow.compute as pc

    schema = table.schema()
    snap = table.current_snapshot()
    out: dict = {
        "rows": 0,
        "snapshot_id": snap.snapshot_id if snap is not None else None,
        "columns": [[f.name, str(f.field_type)] for f in schema.fields],
    }
    sums = SUMS.get(name, [])
    for key, _, kind in sums:
        out[key] = money(Decimal(0)) if kind == "money" else 0
    if snap is None:
        return out
    cols = [col for _, col, _ in sums] or [schema.fields[0].name]
    if name == "silver.customer_contacts":
        cols = [HASH_FIGURE[1]]
    arrow = table.scan(selected_fields=tuple(cols)).to_arrow()
    out["rows"] = arrow.num_rows
    if name == "silver.customer_contacts":
        out[HASH_FIGURE[0]] = hash_prefix_sum(arrow.column(HASH_FIGURE[1]).to_pylist())
    for key, col, kind in sums:
        v = pc.sum(arrow.column(col)).as_py()
        if kind == "money":
            out[key] = money(Decimal(v) if v is not None else Decimal(0))
        else:
            out[key] = int(v or 0)
    return out


def actual(
    catalog_uri: str | None, warehouse: str | None, catalog_name: str, props: dict, namespace_prefix: str = ""
) -> tuple[dict, int]:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchTableError

    if catalog_uri is None:
        catalog = load_catalog(catalog_name, **props)
    else:
        uri = sqlalchemy_uri(catalog_uri)
        if uri.startswith("sqlite:///"):
            # SQLite would silently create an empty catalog; a missing file is an error.
            db = uri[len("sqlite:///") :].split("?", 1)[0]
            if db not in ("", ":memory:") and not os.path.exists(db):
                return {"tables": {}, "error": f"catalog database not found: {db}"}, 1
        catalog = open_catalog(catalog_name, uri, warehouse, props)
    tables, missing, errors = {}, [], {}
    for name in TABLES:
        try:
            table = catalog.load_table(namespace_prefix + name)
        except NoSuchTableError:
            missing.append(name)
            continue
        try:
            tables[name] = table_figures(table, name)
        except Exception as e:  # report, keep going with the other tables
            errors[name] = f"{type(e).__name__}: {e}"
    result: dict = {"tables": tables}
    if missing or errors:
        parts = []
        if missing:
            parts.append("missing tables: " + ", ".join(missing))
            result["missing"] = missing
        if errors:
            parts.append("unreadable tables: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            result["table_errors"] = errors
        result["error"] = "; ".join(parts)
        return result, 1
    return result, 0


# --------------------------------------------------------------------------
# selftest: write the reference with pyiceberg, read it back with `actual`
# --------------------------------------------------------------------------


def compare(exp: dict, act: dict) -> list[str]:
    """Differences between the figures of `expected` and `actual` (empty when equal)."""
    diffs = []
    for name, figures in exp["tables"].items():
        got = act.get("tables", {}).get(name)
        if got is None:
            diffs.append(f"{name}: missing")
            continue
        for k, v in figures.items():
            if got.get(k) != v:
                diffs.append(f"{name}.{k}: expected {v!r}, got {got.get(k)!r}")
    return diffs


def selftest(data: Path) -> tuple[dict, int]:
    import tempfile

    import pyarrow as pa

    ref = reference(data)
    s, i64, d, dec = pa.string(), pa.int64(), pa.date32(), pa.decimal128
    schemas = {
        "bronze.raw_customers": [(c, s) for c in ("customer_id", "customer_name", "email", "region", "signup_date")]
        + [("_row", i64)],
        "bronze.raw_orders": [(c, s) for c in ("order_id", "customer_id", "order_date", "amount", "status")]
        + [("_row", i64)],
        "silver.stg_customers": [
            ("customer_id", i64), ("customer_name", s), ("email", s), ("region", s), ("signup_date", d)
        ],
        "silver.stg_orders": [
            ("order_id", i64), ("customer_id", i64), ("order_date", d), ("amount", dec(12, 2)), ("status", s)
        ],
        "gold.customer_totals": [
            ("customer_id", i64), ("region", s), ("order_count", i64), ("total_amount", dec(18, 2)),
            ("first_order_date", d), ("last_order_date", d),
        ],
        "gold.daily_revenue": [("order_date", d), ("region", s), ("revenue", dec(18, 2)), ("orders", i64)],
    }
    with tempfile.TemporaryDirectory(prefix="demo-check-") as tmp:
        uri = f"sqlite:///{tmp}/catalog.db"
        warehouse = f"file://{tmp}/warehouse"
        catalog = open_catalog("selftest", uri, warehouse)
        for ns in ("bronze", "silver", "gold"):
            catalog.create_namespace(ns)
        for name, cols in schemas.items():
            schema = pa.schema([pa.field(c, t) for c, t in cols])
            rows = ref[name.split(".", 1)[1]]
            arrow = pa.Table.from_pylist(rows, schema=schema)
            catalog.create_table(name, schema=schema).append(arrow)
        act, rc = actual(uri, warehouse, "selftest", {})
    exp = expected(data)
    diffs = compare(exp, act)
    ok = rc == 0 and not diffs and all(t["snapshot_id"] is not None for t in act["tables"].values())
    result = {"ok": ok, "expected": exp, "actual": act}
    if not ok:
        result["error"] = "; ".join(diffs) or act.get("error", "no snapshot")
    return result, 0 if ok else 1


# --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one JSON object too, exit 2
        self.print_usage(sys.stderr)
        print(json.dumps({"error": f"usage: {message}"}))
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    e = sub.add_parser("expected", help="reference figures from the raw CSVs")
    e.add_argument("--data", required=True, type=Path, help="directory with customers.csv and orders.csv")
    a = sub.add_parser("actual", help="figures read through pyiceberg's SqlCatalog")
    a.add_argument(
        "--catalog-uri",
        default=None,
        help="SQLAlchemy URI of the SQLite catalog, e.g. sqlite:////abs/path/.floe/catalog.db "
        "(four slashes for an absolute path). A plain file path or sqlx's sqlite:/abs/path "
        "form is converted; sqlx's sqlite:// forms are NOT (they mean something else there).",
    )
    a.add_argument(
        "--warehouse", default=None, help="warehouse location as floe-host has it, e.g. file:///abs/path/warehouse"
    )
    a.add_argument(
        "--props",
        default=None,
        help="JSON object of pyiceberg catalog properties (type, uri, credential, s3.*); with --catalog-uri "
        "they are added to the SQL catalog's, without it they open any catalog pyiceberg knows (e.g. rest)",
    )
    a.add_argument("--catalog-name", required=True, help="catalog name as floe-host registered the tables under")
    a.add_argument(
        "--namespace-prefix",
        default="",
        help="prefix of the tables' namespaces (a test's layers `t1_bronze`, … give `t1_`)",
    )
    a.add_argument(
        "--allow-missing",
        action="store_true",
        help="tables not in the catalog are listed under `missing` but are not an error",
    )
    t = sub.add_parser("selftest", help="write the reference with pyiceberg and read it back")
    t.add_argument("--data", required=True, type=Path)
    args = p.parse_args(argv)

    try:
        if args.cmd == "expected":
            result, rc = expected(args.data), 0
        elif args.cmd == "actual":
            props = json.loads(args.props) if args.props else {}
            if args.catalog_uri is None and not props:
                p.error("actual needs --catalog-uri and --warehouse, or --props")
            result, rc = actual(args.catalog_uri, args.warehouse, args.catalog_name, props, args.namespace_prefix)
            if args.allow_missing and rc == 1 and "table_errors" not in result:
                result.pop("error", None)
                rc = 0
        else:
            result, rc = selftest(args.data)
    except Exception as ex:
        result, rc = {"error": f"{type(ex).__name__}: {ex}"}, 1
    print(json.dumps(result, indent=2))
    return rc


if __name__ == "__main__":
    sys.exit(main())
