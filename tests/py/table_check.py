#!/usr/bin/env python3
"""Reads one table that floe-host wrote, through pyiceberg's SqlCatalog, for the
write-mode tests (tests/integration/write_modes.rs).

  table_check.py --state-dir DIR --table NS.NAME [--catalog-name default] [--order-by COL] [--time-travel [ID ...]]

DIR is floe-host's --state-dir: the catalog is DIR/catalog.db and the
warehouse DIR/warehouse. Prints one JSON object:

  {"rows": 3,
   "columns": [["order_id", "long", false], ...],    # name, type, required
   "records": [{"order_id": 1, ...}, ...],            # every row, ordered by --order-by
   "sums": {"amount": 60, ...},                       # every integer column (nulls skipped)
   "current_snapshot_id": 123, "current_schema_id": 0,
   "snapshots": [{"snapshot_id": 1, "parent_snapshot_id": null, "operation": "append",
                  "schema_id": 0, "summary": {"floe.run-id": "r1", ...}}, ...],
   "snapshot_rows": {"1": 3, ...},
   "files": [{"path": "file:///...", "size": 1234, "records": 3,     # live data files
              "partition": ["a"]}, ...],                  # its partition values
   "refs": {"main": 123, ...}}                        # every branch and tag

`snapshots` is the history of `main`, oldest first: the current snapshot and its
ancestors. With --time-travel, `snapshot_rows` reads every snapshot the metadata
holds (or those IDs), each whole: its row count, or the error reading it raised. Values that JSON has no type for (decimals, dates) are strings.
On failure: {"error": "..."} and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read(state_dir: Path, table_name: str, catalog_name: str, order_by: str | None, time_travel: list | None) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        catalog_name,
        uri=f"sqlite:///{state_dir.resolve() / 'catalog.db'}",
        warehouse=f"file://{state_dir.resolve() / 'warehouse'}",
    )
    table = catalog.load_table(table_name)
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
    travelled = [s for s in table.metadata.snapshots if not time_travel or s.snapshot_id in time_travel]
    for snapshot in travelled if time_travel is not None else []:
        try:
            snapshot_rows[str(snapshot.snapshot_id)] = table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().num_rows
        except Exception as error:  # a snapshot whose files are gone
            snapshot_rows[str(snapshot.snapshot_id)] = f"{type(error).__name__}: {error}"

    files = [
        {
            "path": task.file.file_path,
            "size": task.file.file_size_in_bytes,
            "records": task.file.record_count,
            "partition": [task.file.partition[i] for i in range(len(task.file.partition))],
        }
        for task in table.scan().plan_files()
    ]
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
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--table", required=True)
    parser.add_argument("--catalog-name", default="default")
    parser.add_argument("--order-by")
    parser.add_argument("--time-travel", nargs="*", type=int, help="read every snapshot, or these (slow on long histories)")
    args = parser.parse_args()
    try:
        result, code = read(args.state_dir, args.table, args.catalog_name, args.order_by, args.time_travel), 0
    except Exception as error:  # one JSON object either way
        result, code = {"error": f"{type(error).__name__}: {error}"}, 1
    print(json.dumps(result, indent=2, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
