#!/usr/bin/env python3
"""Reads one table that floe-host wrote, through pyiceberg, for the write-mode
and maintenance tests (tests/integration/write_modes.rs, maintain.rs).

  table_check.py (--state-dir DIR | --props JSON) --table NS.NAME [--catalog-name default]
                 [--order-by COL] [--time-travel [ID ...]] [--check-files] [--metrics]

DIR is floe-host's --state-dir: the catalog is DIR/catalog.db and the
warehouse DIR/warehouse (pyiceberg's SqlCatalog). JSON is an object of
pyiceberg catalog properties (`type`, `uri`, `token`, `s3.*`, ...), as for
`load_catalog`, for any other catalog. Prints one JSON object:

  {"rows": 3,
   "columns": [["order_id", "long", false], ...],    # name, type, required
   "records": [{"order_id": 1, ...}, ...],            # every row, ordered by --order-by
   "sums": {"amount": 60, ...},                       # every integer column (nulls skipped)
   "current_snapshot_id": 123, "current_schema_id": 0,
   "snapshots": [{"snapshot_id": 1, "parent_snapshot_id": null, "operation": "append",
                  "schema_id": 0, "summary": {"floe.run-id": "r1", ...}}, ...],
   "snapshot_rows": {"1": 3, ...},
   "files": [{"path": "file:///...", "size": 1234, "records": 3,     # live data files
              "partition": ["a"],                         # its partition values
              "exists": true,                             # with --check-files: through the table's FileIO
              "metrics": {"order_id": {"lower": 1, "upper": 9, "nulls": 0, "values": 3}, ...}},  # with --metrics
             ...],
   "refs": {"main": 123, ...}}                        # every branch and tag

`snapshots` is the history of `main`, oldest first: the current snapshot and its
ancestors. With --time-travel, `snapshot_rows` reads every snapshot the metadata
holds (or those IDs), each whole: its row count, or the error reading it raised
(an ID the metadata no longer holds reads as an error too). Values that JSON has
no type for (decimals, dates) are strings.
On failure: {"error": "..."} and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def catalog(state_dir: Path | None, props: str | None, name: str):
    """The SqlCatalog under floe-host's --state-dir, or the catalog `props` describe."""
    if props is not None:
        from pyiceberg.catalog import load_catalog

        return load_catalog(name, **json.loads(props))
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        name,
        uri=f"sqlite:///{state_dir.resolve() / 'catalog.db'}",
        warehouse=f"file://{state_dir.resolve() / 'warehouse'}",
    )


def column_metrics(schema, data_file) -> dict:
    """A data file's metrics by column name: bounds (decoded), null and value counts."""
    from pyiceberg.conversions import from_bytes

    out = {}
    for field in schema.fields:
        entry = {}
        for key, bounds in (("lower", data_file.lower_bounds), ("upper", data_file.upper_bounds)):
            if bounds and field.field_id in bounds:
                entry[key] = from_bytes(field.field_type, bounds[field.field_id])
        for key, counts in (("nulls", data_file.null_value_counts), ("values", data_file.value_counts)):
            if counts and field.field_id in counts:
                entry[key] = counts[field.field_id]
        out[field.name] = entry
    return out


def read(table, order_by: str | None, time_travel: list | None, check_files: bool, metrics: bool = False) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc

    data = table.scan().to_arrow()
    if order_by:
        data = data.sort_by(order_by)
    sums = {}
    for field in data.schema:
        if pa.types.is_integer(field.type):
            total = pc.sum(data[field.name]).as_py()
            sums[field.name] = total if total is not None else 0

    history = []
    snapshot = table.current_snapshot()
    while snapshot is not None:
        summary = snapshot.summary
        history.append(
            {
                "snapshot_id": snapshot.snapshot_id,
                "parent_snapshot_id": snapshot.parent_snapshot_id,
                "operation": summary.operation.value if summary is not None else None,
                "schema_id": snapshot.schema_id,
                "summary": dict(summary.additional_properties) if summary is not None else {},
            }
        )
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    history.reverse()

    snapshot_rows = {}
    travelled = time_travel or [s.snapshot_id for s in table.metadata.snapshots]
    for snapshot_id in travelled if time_travel is not None else []:
        try:
            if table.snapshot_by_id(snapshot_id) is None:
                raise LookupError(f"no snapshot {snapshot_id} in the table's metadata")
            snapshot_rows[str(snapshot_id)] = table.scan(snapshot_id=snapshot_id).to_arrow().num_rows
        except Exception as error:  # an expired snapshot, or one whose files are gone
            snapshot_rows[str(snapshot_id)] = f"{type(error).__name__}: {error}"

    files = [
        {
            "path": task.file.file_path,
            "size": task.file.file_size_in_bytes,
            "records": task.file.record_count,
            "partition": [task.file.partition[i] for i in range(len(task.file.partition))],
        }
        for task in table.scan().plan_files()
    ]
    if check_files:
        for file in files:
            file["exists"] = table.io.new_input(file["path"]).exists()
    if metrics:
        by_path = {task.file.file_path: task.file for task in table.scan().plan_files()}
        for file in files:
            file["metrics"] = column_metrics(table.schema(), by_path[file["path"]])
    current = table.current_snapshot()
    return {
        "files": sorted(files, key=lambda f: f["path"]),
        "refs": {name: ref.snapshot_id for name, ref in table.metadata.refs.items()},
        "rows": data.num_rows,
        "columns": [[f.name, str(f.field_type), f.required] for f in table.schema().fields],
        "records": data.to_pylist(),
        "sums": sums,
        "current_snapshot_id": current.snapshot_id if current is not None else None,
        "current_schema_id": table.schema().schema_id,
        "snapshots": history,
        "snapshot_rows": snapshot_rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--state-dir", type=Path)
    where.add_argument("--props")
    parser.add_argument("--table", required=True)
    parser.add_argument("--catalog-name", default="default")
    parser.add_argument("--order-by")
    parser.add_argument("--time-travel", nargs="*", type=int, help="read every snapshot, or these (slow on long histories)")
    parser.add_argument("--check-files", action="store_true", help="check that every live data file exists")
    parser.add_argument("--metrics", action="store_true", help="each live data file's column metrics")
    args = parser.parse_args()
    try:
        table = catalog(args.state_dir, args.props, args.catalog_name).load_table(args.table)
        result, code = read(table, args.order_by, args.time_travel, args.check_files, args.metrics), 0
    except Exception as error:  # one JSON object either way
        result, code = {"error": f"{type(error).__name__}: {error}"}, 1
    print(json.dumps(result, indent=2, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
