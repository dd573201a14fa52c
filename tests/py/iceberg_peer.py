#!/usr/bin/env python3
"""pyiceberg as another engine writing to the catalogs floe-host uses.

  write --props JSON --table NS.NAME
      Creates NS (if missing) and the table NS.NAME (or overwrites the one
      that exists) with the columns order_id long, amount double, note string, and
      appends three rows. Prints {"snapshot_id": ..., "rows": 3,
      "sum_order_id": 6}.

  plant --props JSON --table NS.NAME --file NAME
      Writes a small file at <table location>/data/NAME through the table's
      own FileIO, as a crashed writer leaves one. Prints {"path": ...}.
  exists --props JSON --table NS.NAME --path PATH
      Prints {"exists": true|false} for PATH, through the table's FileIO.

JSON is an object of pyiceberg catalog properties (`type`, `uri`,
`credential`, `token`, `s3.*`, ...), as for `load_catalog`.
"""

from __future__ import annotations

import argparse
import json
import sys


def write(props: dict, name: str) -> dict:
    import pyarrow as pa
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError

    catalog = load_catalog("peer", **props)
    namespace, _ = name.split(".", 1)
    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass
    data = pa.table(
        {
            "order_id": pa.array([1, 2, 3], pa.int64()),
            "amount": pa.array([10.5, 20.25, 30.0], pa.float64()),
            "note": pa.array(["a", None, "c"], pa.string()),
        }
    )
    try:
        catalog.load_table(name).overwrite(data)
    except NoSuchTableError:
        catalog.create_table(name, schema=data.schema).append(data)
    table = catalog.load_table(name)
    return {"snapshot_id": table.current_snapshot().snapshot_id, "rows": data.num_rows, "sum_order_id": 6}


def plant(props: dict, name: str, file: str) -> dict:
    from pyiceberg.catalog import load_catalog

    table = load_catalog("peer", **props).load_table(name)
    path = f"{table.location().rstrip('/')}/data/{file}"
    with table.io.new_output(path).create(overwrite=True) as out:
        out.write(b"PAR1 not really a data file")
    return {"path": path}


def exists(props: dict, name: str, path: str) -> dict:
    from pyiceberg.catalog import load_catalog

    table = load_catalog("peer", **props).load_table(name)
    return {"exists": table.io.new_input(path).exists()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--props", required=True)
    w.add_argument("--table", required=True)
    for name in ("plant", "exists"):
        c = sub.add_parser(name)
        c.add_argument("--props", required=True)
        c.add_argument("--table", required=True)
        c.add_argument("--file" if name == "plant" else "--path", required=True)
    args = p.parse_args()
    props = json.loads(args.props)
    if args.cmd == "write":
        print(json.dumps(write(props, args.table)))
    elif args.cmd == "plant":
        print(json.dumps(plant(props, args.table, args.file)))
    else:
        print(json.dumps(exists(props, args.table, args.path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
