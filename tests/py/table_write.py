#!/usr/bin/env python3
"""Writes to a table that floe-host made, through pyiceberg, as another engine
sharing the catalog would (tests/integration/maintain.rs).

  table_write.py (--state-dir DIR | --props JSON) --table NS.NAME append --commits K --rows N
      K appends of N rows each, one snapshot per append. In row i of append c,
      `id` and every integer column hold start + c * N + i (start: one more than
      the table's largest id, 0 when empty), text columns "a{c}-{i}", others null.
  table_write.py --state-dir DIR --table NS.NAME tag --name TAG --oldest
      Tags the oldest snapshot of the table's metadata.
  table_write.py --state-dir DIR --table NS.NAME set-property --key K --value V
      Sets a table property (one commit).

DIR is floe-host's --state-dir (DIR/catalog.db, DIR/warehouse); JSON is an
object of pyiceberg catalog properties, as table_check.py takes. Prints one
JSON object: {"snapshot_ids": [...]} for append (the snapshots committed),
{"tagged": id} for tag, {"metadata_log": N} (the length of the metadata log)
for set-property. On failure: {"error": "..."} and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from table_check import catalog


def append(table, commits: int, rows: int) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc

    current = table.scan(selected_fields=("id",)).to_arrow()
    largest = pc.max(pc.cast(current["id"], pa.int64())).as_py() if current.num_rows else None
    start = largest + 1 if largest is not None else 0
    schema = table.schema().as_arrow()
    ids = []
    for c in range(commits):
        first = start + c * rows
        numbers = pa.array(range(first, first + rows), pa.int64())
        # `id` and integer columns (floe's `_row`) count, text columns name the row.
        columns = {}
        for field in schema:
            if field.name == "id" or pa.types.is_integer(field.type):
                columns[field.name] = pc.cast(numbers, field.type)
            elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                columns[field.name] = pa.array([f"a{c}-{i}" for i in range(rows)], field.type)
            else:
                columns[field.name] = pa.nulls(rows, field.type)
        table.append(pa.Table.from_pydict(columns, schema=schema))
        ids.append(table.current_snapshot().snapshot_id)
    return {"snapshot_ids": ids}


def tag(table, name: str) -> dict:
    oldest = min(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number))
    table.manage_snapshots().create_tag(oldest.snapshot_id, name).commit()
    return {"tagged": oldest.snapshot_id}


def set_property(table, key: str, value: str) -> dict:
    with table.transaction() as transaction:
        transaction.set_properties(**{key: value})
    return {"metadata_log": len(table.metadata.metadata_log)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--state-dir", type=Path)
    where.add_argument("--props")
    parser.add_argument("--table", required=True)
    actions = parser.add_subparsers(dest="action", required=True)
    appending = actions.add_parser("append")
    appending.add_argument("--commits", type=int, required=True)
    appending.add_argument("--rows", type=int, required=True)
    tagging = actions.add_parser("tag")
    tagging.add_argument("--name", required=True)
    tagging.add_argument("--oldest", action="store_true", required=True)
    setting = actions.add_parser("set-property")
    setting.add_argument("--key", required=True)
    setting.add_argument("--value", required=True)
    args = parser.parse_args()
    try:
        table = catalog(args.state_dir, args.props, "default").load_table(args.table)
        if args.action == "append":
            result = append(table, args.commits, args.rows)
        elif args.action == "tag":
            result = tag(table, args.name)
        else:
            result = set_property(table, args.key, args.value)
        code = 0
    except Exception as error:  # one JSON object either way
        result, code = {"error": f"{type(error).__name__}: {error}"}, 1
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
