"""csv-ingest in Python: the Rust plugin's rules (plugins/csv-ingest), on the
Python SDK.

- The first line is the header (a UTF-8 byte-order mark before it is
  dropped). A record is one `\\n`-terminated line; one `\\r` before the `\\n`
  is stripped. Quoted fields (RFC 4180, `""` for a quote) may not span lines.
- Empty lines are skipped; they count for line numbers in errors only.
- Every column is a nullable Utf8; an empty field (`a,,b`, `a,"",b`) is NULL.
- The last column (`row_number_column`, default `_row`) is the Int64 1-based
  record number. Batches hold `batch_rows` rows (default 65,536).
"""

import re

from floe_plugin import Batch, Field, Int64, Schema, Utf8, encode_column, ingest_plugin, invalid_config, invalid_input, log

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "csv-ingest config",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "batch_rows": {"description": "Maximum number of rows per output batch.", "type": ["integer", "string"],
                       "minimum": 1, "pattern": "^[1-9][0-9]*$", "default": 65536},
        "row_number_column": {"description": "Name of the Int64 column that holds the 1-based record number.",
                              "type": "string", "minLength": 1, "default": "_row"},
    },
}

MAX_HEADER_BYTES = 1 << 20
MAX_COLUMNS = 4096
MAX_NAME_BYTES = 1024


def split(line, where):
    """The fields of one line (without its line end)."""
    fields = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            i += 1
            value = []
            while True:
                if i >= n:
                    raise invalid_input(f"{where}: a quoted field is not closed before the end of the line")
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        value.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                value.append(line[i])
                i += 1
            if i < n and line[i] != ",":
                raise invalid_input(f"{where}: text after a closing quote")
            fields.append("".join(value))
        else:
            end = line.find(",", i)
            end = n if end < 0 else end
            fields.append(line[i:end])
            i = end
        if i >= n:
            return fields
        i += 1  # the comma
        if i == n:
            fields.append("")
            return fields


class CsvParser:
    def __init__(self, config, source):
        for key in config:
            if key not in ("batch_rows", "row_number_column"):
                raise invalid_config(f"unknown config key `{key}` (known keys: batch_rows, row_number_column)")
        rows = config.get("batch_rows", "65536")
        if not re.fullmatch(r"[1-9][0-9]*", rows):
            raise invalid_config(f"`batch_rows` must be a positive integer, not `{rows}`")
        self.batch_rows = int(rows)
        self.row_column = config.get("row_number_column", "_row")
        if not self.row_column:
            raise invalid_config("`row_number_column` must not be empty")
        self.source = source
        self.rest = b""
        self.line = 0
        self.records = 0
        self.columns = None
        self.schema_value = None
        self.rows = []

    def push(self, chunk):
        out = []
        data = self.rest + chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self.take(data[start:end], out)
            start = end + 1
        self.rest = data[start:]
        if self.columns is None and len(self.rest) > MAX_HEADER_BYTES:
            raise invalid_input(f"`{self.source}`: the header line is longer than {MAX_HEADER_BYTES} bytes")
        return out

    def finish(self):
        out = []
        if self.rest:
            self.take(self.rest, out)
            self.rest = b""
        if self.columns is None:
            raise invalid_input(f"`{self.source}` is empty: it has no header line")
        self.flush(out)
        log("info", f"parsed {self.records} records from `{self.source}`")
        return out

    def schema(self):
        return self.schema_value

    def take(self, raw, out):
        self.line += 1
        where = f"`{self.source}` line {self.line}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_input(f"{where} is not valid UTF-8") from None
        if text.endswith("\r"):
            text = text[:-1]
        if self.columns is None:
            if text.startswith("\ufeff"):
                text = text[1:]
            self.header(text, where)
            return
        if not text:
            return
        fields = split(text, where)
        if len(fields) != len(self.columns):
            raise invalid_input(f"{where} has {len(fields)} fields, but the header has {len(self.columns)}")
        self.records += 1
        self.rows.append(fields)
        if len(self.rows) >= self.batch_rows:
            self.flush(out)

    def header(self, text, where):
        names = split(text, where)
        if len(names) > MAX_COLUMNS:
            raise invalid_input(f"{where}: the header has more than {MAX_COLUMNS} columns")
        for i, name in enumerate(names):
            if not name:
                raise invalid_input(f"{where}: column {i + 1} of the header has no name")
            if len(name.encode("utf-8")) > MAX_NAME_BYTES:
                raise invalid_input(f"{where}: a column name is longer than {MAX_NAME_BYTES} bytes")
            if name == self.row_column or names.index(name) != i:
                raise invalid_input(f"{where}: column `{name}` appears twice (or is the row number column)")
        self.columns = names
        fields = [Field(name, Utf8, True) for name in names] + [Field(self.row_column, Int64, False)]
        self.schema_value = Schema(fields)

    def flush(self, out):
        if not self.rows:
            return
        first = self.records - len(self.rows) + 1
        columns = [
            encode_column(Utf8, [row[c] if row[c] != "" else None for row in self.rows]) for c in range(len(self.columns))
        ]
        columns.append(encode_column(Int64, list(range(first, first + len(self.rows)))))
        out.append(Batch(self.schema_value, columns, len(self.rows)))
        self.rows = []


Meta, Ingest = ingest_plugin(
    name="csv-ingest-py",
    version="0.1.0",
    config_schema=CONFIG_SCHEMA,
    open=lambda config, source: CsvParser(config, source),
)
