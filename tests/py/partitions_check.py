"""Reads partitioned floe-host tables back through pyiceberg and prints JSON:

    {"tables": {"silver.orders": {
        "spec": [["order_date", "identity", "order_date"]],      # name, transform, source column
        "rows": 19,
        "partitions": {"order_date=2024-01-01": {"rows": 3, "files": ["order_date=2024-01-01/x.parquet"]}},
        "rows_by_partition": {"order_date=2024-01-01": 3},     # from the rows, through pyiceberg's transforms
        "snapshots": [{"snapshot_id": 1, "parent_id": null, "operation": "overwrite",
                       "summary": {"floe.partition": "2024-01-01", ...}}],   # oldest first
    }}}

`partitions` comes from the data files the current snapshot lists (path
relative to the table's data folder); `rows_by_partition` from the rows a
scan returns, each put in its partition by pyiceberg itself.

Usage: partitions_check.py --catalog-uri URI --warehouse URI --table T [--table T ...]
       partitions_check.py --props JSON --table T [--table T ...]   (any catalog pyiceberg loads, e.g. rest)
"""

import argparse
import json
from collections import Counter

from pyiceberg.catalog.sql import SqlCatalog


def partition_text(spec, schema, values):
    """`name=human value` per field, as floe-host and Iceberg paths spell them."""
    parts = []
    for field, value in zip(spec.fields, values):
        source_type = schema.find_field(field.source_id).field_type
        result_type = field.transform.result_type(source_type)
        parts.append(f"{field.name}={field.transform.to_human_string(result_type, value)}")
    return "/".join(parts)


def describe(table):
    spec, schema = table.spec(), table.schema()
    files = {}
    for task in table.scan().plan_files():
        data_file = task.file
        key = partition_text(spec, schema, [data_file.partition[i] for i in range(len(spec.fields))])
        entry = files.setdefault(key, {"rows": 0, "files": []})
        entry["rows"] += data_file.record_count
        entry["files"].append(data_file.file_path.split("/data/", 1)[1])
    for entry in files.values():
        entry["files"].sort()

    rows = table.scan().to_arrow()
    by_partition = Counter()
    sources = [schema.find_field(field.source_id) for field in spec.fields]
    transforms = [field.transform.transform(source.field_type) for field, source in zip(spec.fields, sources)]
    columns = [rows[source.name].to_pylist() for source in sources]
    for i in range(rows.num_rows):
        # pyiceberg's transforms take the stored representation (days, microseconds).
        values = [
            apply(to_stored(column[i], source.field_type))
            for apply, column, source in zip(transforms, columns, sources)
        ]
        by_partition[partition_text(spec, schema, values)] += 1

    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number)
    return {
        "spec": [[f.name, str(f.transform), schema.find_field(f.source_id).name] for f in spec.fields],
        "rows": rows.num_rows,
        "partitions": files,
        "rows_by_partition": dict(by_partition),
        "snapshots": [
            {
                "snapshot_id": s.snapshot_id,
                "parent_id": s.parent_snapshot_id,
                "operation": s.summary.operation.value,
                "summary": dict(s.summary.additional_properties),
            }
            for s in snapshots
        ],
    }


def to_stored(value, field_type):
    """A Python value as Iceberg stores it: dates as days, timestamps as microseconds."""
    import datetime

    from pyiceberg.types import DateType, TimestampType, TimestamptzType

    if value is None:
        return None
    if isinstance(field_type, DateType):
        return (value - datetime.date(1970, 1, 1)).days
    if isinstance(field_type, (TimestampType, TimestamptzType)):
        epoch = datetime.datetime(1970, 1, 1, tzinfo=value.tzinfo)
        delta = value - epoch
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog-uri")
    parser.add_argument("--warehouse")
    parser.add_argument("--props", help="JSON object of pyiceberg catalog properties, instead of the SQL catalog")
    parser.add_argument("--catalog-name", default="default")
    parser.add_argument("--table", action="append", required=True)
    args = parser.parse_args()
    if args.props:
        from pyiceberg.catalog import load_catalog

        catalog = load_catalog(args.catalog_name, **json.loads(args.props))
    elif args.catalog_uri and args.warehouse:
        catalog = SqlCatalog(args.catalog_name, uri=args.catalog_uri, warehouse=args.warehouse)
    else:
        parser.error("give --catalog-uri and --warehouse, or --props")
    print(json.dumps({"tables": {name: describe(catalog.load_table(name)) for name in args.table}}))


if __name__ == "__main__":
    main()
