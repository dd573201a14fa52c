#!/usr/bin/env python3
"""pyiceberg as another engine writing to the catalogs floe-host uses.

  write --props JSON --table NS.NAME
      Creates NS (if missing) and the table NS.NAME (or overwrites the one
      that exists) with the columns order_id long, amount double, note string, and
      appends three rows. Prints {"snapshot_id": ..., "rows": 3,
      "sum_order_id": 6}.

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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--props", required=True)
    w.add_argument("--table", required=True)
    args = p.parse_args()
    print(json.dumps(write(json.loads(args.props), args.table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
