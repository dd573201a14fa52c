"""The floe plugin SDK for Python: Arrow IPC in pure Python (pyarrow has no
WASI build), the config map and the contract's errors, over the bindings
componentize-py generates from wit/floe-plugin.wit.

A transform plugin's `app.py`:

    from floe_plugin import transform_plugin, Utf8, invalid_config

    def output_schema(config, schema):          # a Schema
        return schema

    def transform(config, batch):               # a Batch -> a Batch (or None)
        names = batch.column("name")            # a list of str/None
        return batch.replace("name", [n.upper() if n else n for n in names], Utf8)

    Meta, Transform, Transformer = transform_plugin(
        name="shout", version="0.1.0", config_schema={"type": "object"},
        output_schema=output_schema, transform=transform)

Columns the plugin does not touch are carried as their Arrow buffers,
never decoded, whatever their type.
"""

import json
import struct

CONTINUATION = 0xFFFFFFFF
EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"

# ---- errors ---------------------------------------------------------------


class PluginError(Exception):
    """Raised by the SDK's helpers; becomes the contract's `plugin-error`."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid_config(message):
    return PluginError("invalid-config", str(message))


def invalid_input(message):
    return PluginError("invalid-input", str(message))


# ---- flatbuffers, read --------------------------------------------------------


class _Table:
    """A flatbuffer table at `pos` of `buf`."""

    __slots__ = ("buf", "pos", "vtable", "vlen")

    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vlen = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, i):
        at = 4 + 2 * i
        if at >= self.vlen:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + at)[0]

    def scalar(self, i, fmt, default=0):
        off = self._field(i)
        return struct.unpack_from(fmt, self.buf, self.pos + off)[0] if off else default

    def _indirect(self, i):
        off = self._field(i)
        if not off:
            return None
        at = self.pos + off
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, i):
        at = self._indirect(i)
        return None if at is None else _Table(self.buf, at)

    def string(self, i):
        at = self._indirect(i)
        if at is None:
            return None
        n = struct.unpack_from("<I", self.buf, at)[0]
        return bytes(self.buf[at + 4 : at + 4 + n]).decode("utf-8")

    def tables(self, i):
        at = self._indirect(i)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        out = []
        for k in range(n):
            p = at + 4 + 4 * k
            out.append(_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out

    def structs(self, i, fmt):
        at = self._indirect(i)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        size = struct.calcsize(fmt)
        return [struct.unpack_from(fmt, self.buf, at + 4 + size * k) for k in range(n)]


def _root(buf):
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0])


# ---- flatbuffers, write (back to front, as flatbuffers builders do) -------


class _Builder:
    """Objects are prepended; a position is the distance from the end, so
    an offset to an object written earlier points forward, as it must."""

    def __init__(self):
        self.buf = bytearray()
        self.minalign = 1
        self.fields = None

    def offset(self):
        return len(self.buf)

    def _prep(self, size, additional=0):
        self.minalign = max(self.minalign, size)
        pad = (-(len(self.buf) + additional)) % size
        self.buf[0:0] = bytes(pad)

    def _prepend(self, data):
        self.buf[0:0] = data

    def _uoffset(self, target):
        self._prep(4)
        self._prepend(struct.pack("<I", self.offset() + 4 - target))

    def string(self, text):
        data = text.encode("utf-8")
        self._prep(4, len(data) + 1)
        self._prepend(data + b"\x00")
        self._prep(4)
        self._prepend(struct.pack("<I", len(data)))
        return self.offset()

    def vector_offsets(self, targets):
        self._prep(4, 4 * len(targets))
        for target in reversed(targets):
            self._uoffset(target)
        self._prep(4)
        self._prepend(struct.pack("<I", len(targets)))
        return self.offset()

    def vector_structs(self, fmt, items):
        size = struct.calcsize(fmt)
        self._prep(8, size * len(items))
        for item in reversed(items):
            self._prepend(struct.pack(fmt, *item))
        self._prep(4)
        self._prepend(struct.pack("<I", len(items)))
        return self.offset()

    def start(self):
        self.fields = {}
        self.object_start = self.offset()

    def add(self, index, fmt, value):
        size = struct.calcsize(fmt)
        self._prep(size)
        self._prepend(struct.pack(fmt, value))
        self.fields[index] = self.offset()

    def add_offset(self, index, target):
        self._uoffset(target)
        self.fields[index] = self.offset()

    def end(self):
        self._prep(4)
        self._prepend(b"\x00\x00\x00\x00")
        table = self.offset()
        count = max(self.fields, default=-1) + 1
        entries = [table - self.fields[i] if i in self.fields else 0 for i in range(count)]
        vtable = struct.pack("<HH", 4 + 2 * count, table - self.object_start) + b"".join(
            struct.pack("<H", e) for e in entries
        )
        self._prepend(vtable)
        vpos = self.offset()
        at = len(self.buf) - table
        struct.pack_into("<i", self.buf, at, vpos - table)
        self.fields = None
        return table

    def finish(self, root):
        self._prep(max(self.minalign, 8), 4)
        self._uoffset(root)
        return bytes(self.buf)


# ---- Arrow types ---------------------------------------------------------------

# Type union tags (Schema.fbs).
_NULL, _INT, _FLOAT, _BINARY, _UTF8, _BOOL, _DECIMAL, _DATE, _TIME, _TIMESTAMP = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
_LARGE_BINARY, _LARGE_UTF8 = 19, 20


class DataType:
    """An Arrow type: its union tag and parameters, as the schema says."""

    def __init__(self, tag, params=()):
        self.tag = tag
        self.params = tuple(params)

    def __eq__(self, other):
        return isinstance(other, DataType) and (self.tag, self.params) == (other.tag, other.params)

    def __hash__(self):
        return hash((self.tag, self.params))

    def __repr__(self):
        names = {_NULL: "Null", _INT: "Int", _FLOAT: "Float", _BINARY: "Binary", _UTF8: "Utf8", _BOOL: "Bool",
                 _DECIMAL: "Decimal", _DATE: "Date", _TIME: "Time", _TIMESTAMP: "Timestamp",
                 _LARGE_BINARY: "LargeBinary", _LARGE_UTF8: "LargeUtf8"}
        name = names.get(self.tag, f"type{self.tag}")
        return f"{name}{list(self.params) if self.params else ''}"


Utf8 = DataType(_UTF8)
LargeUtf8 = DataType(_LARGE_UTF8)
Bool = DataType(_BOOL)
Int8, Int16, Int32, Int64 = (DataType(_INT, (w, True)) for w in (8, 16, 32, 64))
UInt8, UInt16, UInt32, UInt64 = (DataType(_INT, (w, False)) for w in (8, 16, 32, 64))
Float32 = DataType(_FLOAT, (1,))
Float64 = DataType(_FLOAT, (2,))
Date32 = DataType(_DATE, (0,))


class Field:
    def __init__(self, name, type, nullable=True):
        self.name = name
        self.type = type
        self.nullable = nullable

    def __eq__(self, other):
        return (self.name, self.type, self.nullable) == (other.name, other.type, other.nullable)

    def __repr__(self):
        return f"Field({self.name!r}, {self.type!r}, nullable={self.nullable})"


class Schema:
    """A flat schema. `encoded` keeps the schema message a stream carried,
    so a schema passed through is sent back byte for byte."""

    def __init__(self, fields, encoded=None):
        self.fields = list(fields)
        self.encoded = encoded

    def names(self):
        return [f.name for f in self.fields]

    def index(self, name):
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        return -1

    def __eq__(self, other):
        return isinstance(other, Schema) and self.fields == other.fields


def _read_type(tag, table):
    if table is None or tag in (_NULL, _BINARY, _UTF8, _BOOL, _LARGE_BINARY, _LARGE_UTF8):
        return DataType(tag)
    if tag == _INT:
        return DataType(tag, (table.scalar(0, "<i"), bool(table.scalar(1, "<B"))))
    if tag in (_FLOAT, _DATE):
        return DataType(tag, (table.scalar(0, "<h"),))
    if tag == _TIME:
        return DataType(tag, (table.scalar(0, "<h", 1), table.scalar(1, "<i", 32)))
    if tag == _TIMESTAMP:
        return DataType(tag, (table.scalar(0, "<h"), table.string(1)))
    if tag == _DECIMAL:
        return DataType(tag, (table.scalar(0, "<i"), table.scalar(1, "<i"), table.scalar(2, "<i", 128)))
    return DataType(tag)


def _write_type(b, t):
    p = t.params
    zone = b.string(p[1]) if t.tag == _TIMESTAMP and p[1] is not None else None
    b.start()
    if t.tag == _INT:
        b.add(0, "<i", p[0])
        b.add(1, "<B", 1 if p[1] else 0)
    elif t.tag in (_FLOAT, _DATE):
        b.add(0, "<h", p[0])
    elif t.tag == _TIME:
        b.add(0, "<h", p[0])
        b.add(1, "<i", p[1])
    elif t.tag == _TIMESTAMP:
        b.add(0, "<h", p[0])
        if zone is not None:
            b.add_offset(1, zone)
    elif t.tag == _DECIMAL:
        b.add(0, "<i", p[0])
        b.add(1, "<i", p[1])
        b.add(2, "<i", p[2])
    return b.end()


def _encode_schema(schema):
    b = _Builder()
    fields = []
    for f in schema.fields:
        type_table = _write_type(b, f.type)
        name = b.string(f.name)
        children = b.vector_offsets([])
        b.start()
        b.add_offset(0, name)
        b.add(1, "<B", 1 if f.nullable else 0)
        b.add(2, "<B", f.type.tag)
        b.add_offset(3, type_table)
        b.add_offset(5, children)
        fields.append(b.end())
    vector = b.vector_offsets(fields)
    b.start()
    b.add_offset(1, vector)
    schema_table = b.end()
    return _message(b, 1, schema_table, 0)


def _message(b, header_type, header, body_length):
    b.start()
    b.add(3, "<q", body_length)
    b.add_offset(2, header)
    b.add(0, "<h", 4)  # MetadataVersion V5
    b.add(1, "<B", header_type)
    return _frame(b.finish(b.end()))


def _frame(metadata):
    padded = metadata + bytes((-(len(metadata) + 8)) % 8)
    return struct.pack("<Ii", CONTINUATION, len(padded)) + padded


# ---- reading streams ------------------------------------------------------------


def _messages(buf):
    """(header type, header table, body) of each message of IPC stream bytes."""
    pos = 0
    view = memoryview(buf)
    while pos + 4 <= len(buf):
        length = struct.unpack_from("<I", buf, pos)[0]
        pos += 4
        if length == CONTINUATION:
            if pos + 4 > len(buf):
                break
            length = struct.unpack_from("<i", buf, pos)[0]
            pos += 4
        if length == 0:
            break
        meta = bytes(view[pos : pos + length])
        pos += length
        message = _root(meta)
        body_length = message.scalar(3, "<q")
        body = view[pos : pos + body_length]
        pos += body_length
        yield message.scalar(1, "<B"), message.table(2), body, bytes(view[pos - body_length - length - 8 : pos - body_length])


def _schema_of(table, encoded):
    fields = []
    for f in table.tables(1):
        fields.append(Field(f.string(0), _read_type(f.scalar(2, "<B"), f.table(3)), bool(f.scalar(1, "<B"))))
    return Schema(fields, encoded)


# Buffers per column, by type (validity first): flat types only, as the host sends.
def _buffer_count(t):
    if t.tag == _NULL:
        return 0
    if t.tag in (_UTF8, _BINARY, _LARGE_UTF8, _LARGE_BINARY):
        return 3
    return 2


class Column:
    """One column of a batch as its Arrow buffers; `values()` decodes it."""

    def __init__(self, type, length, null_count, buffers):
        self.type = type
        self.length = length
        self.null_count = null_count
        self.buffers = buffers  # bytes objects, validity first

    def valid(self, i):
        bitmap = self.buffers[0] if self.buffers else b""
        return self.null_count == 0 or not bitmap or (bitmap[i >> 3] >> (i & 7)) & 1

    def values(self):
        t, n = self.type, self.length
        if t.tag == _NULL:
            return [None] * n
        if t.tag in (_UTF8, _LARGE_UTF8, _BINARY, _LARGE_BINARY):
            width = "q" if t.tag in (_LARGE_UTF8, _LARGE_BINARY) else "i"
            offsets = struct.unpack_from(f"<{n + 1}{width}", self.buffers[1]) if n else (0,)
            data = self.buffers[2]
            text = t.tag in (_UTF8, _LARGE_UTF8)
            out = []
            for i in range(n):
                if not self.valid(i):
                    out.append(None)
                    continue
                raw = bytes(data[offsets[i] : offsets[i + 1]])
                out.append(raw.decode("utf-8") if text else raw)
            return out
        if t.tag == _BOOL:
            bits = self.buffers[1]
            return [bool((bits[i >> 3] >> (i & 7)) & 1) if self.valid(i) else None for i in range(n)]
        fmt = _fixed_format(t)
        if fmt is None:
            raise invalid_input(f"columns of type {t!r} cannot be decoded by the Python SDK yet")
        items = struct.unpack_from(f"<{n}{fmt}", self.buffers[1]) if n else ()
        return [v if self.valid(i) else None for i, v in enumerate(items)]


def _fixed_format(t):
    if t.tag == _INT:
        return {(8, True): "b", (16, True): "h", (32, True): "i", (64, True): "q",
                (8, False): "B", (16, False): "H", (32, False): "I", (64, False): "Q"}[t.params]
    if t.tag == _FLOAT:
        return {1: "f", 2: "d"}.get(t.params[0])
    if t.tag == _DATE:
        return "i" if t.params[0] == 0 else "q"
    if t.tag == _TIMESTAMP:
        return "q"
    return None


class Batch:
    """A record batch: a schema and one `Column` per field."""

    def __init__(self, schema, columns, length):
        self.schema = schema
        self.columns = columns
        self.length = length

    def column(self, name):
        """The values of column `name` (str/bytes/int/float/bool/None)."""
        i = self.schema.index(name)
        if i < 0:
            raise invalid_input(f"no column `{name}` (columns: {', '.join(self.schema.names())})")
        return self.columns[i].values()

    def replace(self, name, values, type=None):
        """This batch with column `name` replaced by `values` (a list of
        `length` values, None for NULL), of `type` (default: the column's)."""
        i = self.schema.index(name)
        field = self.schema.fields[i]
        type = type or field.type
        columns = list(self.columns)
        columns[i] = encode_column(type, values)
        fields = list(self.schema.fields)
        if type != field.type:
            fields[i] = Field(field.name, type, field.nullable)
            schema = Schema(fields)
        else:
            schema = self.schema
        return Batch(schema, columns, self.length)


def _decode_batch(schema, table, body):
    length = table.scalar(0, "<q")
    nodes = table.structs(1, "<qq")
    buffers = table.structs(2, "<qq")
    if table.table(3) is not None:
        raise invalid_input("compressed IPC batches are not supported")
    columns = []
    b = 0
    for field, (n, nulls) in zip(schema.fields, nodes):
        count = _buffer_count(field.type)
        parts = [bytes(body[off : off + size]) for off, size in buffers[b : b + count]]
        b += count
        columns.append(Column(field.type, n, nulls, parts))
    return Batch(schema, columns, length)


def decode(stream, schema=None):
    """The schema and batches of IPC stream bytes (a fragment). Without a
    schema message in them, `schema` is the stream's."""
    batches = []
    for header_type, header, body, encoded in _messages(stream):
        if header_type == 1:
            schema = _schema_of(header, encoded)
        elif header_type == 3:
            if schema is None:
                raise invalid_input("a record batch before the schema")
            batches.append(_decode_batch(schema, header, body))
        else:
            raise invalid_input(f"IPC message type {header_type} is not supported")
    return schema, batches


# ---- writing streams ------------------------------------------------------------


def _pad8(data):
    return data + bytes((-len(data)) % 8)


def encode_column(type, values):
    """A `Column` of `type` from Python values (None for NULL)."""
    n = len(values)
    nulls = sum(1 for v in values if v is None)
    validity = b""
    if nulls:
        bits = bytearray((n + 7) // 8)
        for i, v in enumerate(values):
            if v is not None:
                bits[i >> 3] |= 1 << (i & 7)
        validity = bytes(bits)
    if type.tag in (_UTF8, _LARGE_UTF8, _BINARY, _LARGE_BINARY):
        width = "q" if type.tag in (_LARGE_UTF8, _LARGE_BINARY) else "i"
        offsets = [0]
        data = bytearray()
        for v in values:
            if v is not None:
                data += v.encode("utf-8") if isinstance(v, str) else v
            offsets.append(len(data))
        return Column(type, n, nulls, [validity, struct.pack(f"<{n + 1}{width}", *offsets), bytes(data)])
    if type.tag == _BOOL:
        bits = bytearray((n + 7) // 8)
        for i, v in enumerate(values):
            if v:
                bits[i >> 3] |= 1 << (i & 7)
        return Column(type, n, nulls, [validity, bytes(bits)])
    if type.tag == _NULL:
        return Column(type, n, n, [])
    fmt = _fixed_format(type)
    return Column(type, n, nulls, [validity, struct.pack(f"<{n}{fmt}", *[0 if v is None else v for v in values])])


def _encode_batch(batch):
    nodes = []
    buffers = []
    body = bytearray()
    for column in batch.columns:
        nodes.append((column.length, column.null_count))
        for part in column.buffers:
            buffers.append((len(body), len(part)))
            body += _pad8(part)
    b = _Builder()
    buffer_vector = b.vector_structs("<qq", buffers)
    node_vector = b.vector_structs("<qq", nodes)
    b.start()
    b.add(0, "<q", batch.length)
    b.add_offset(1, node_vector)
    b.add_offset(2, buffer_vector)
    header = b.end()
    return _message(b, 3, header, len(body)) + bytes(body)


class Encoder:
    """Encodes batches of one schema as stream fragments: the schema
    message before the first batch, the end-of-stream marker at `end`."""

    def __init__(self):
        self.started = False

    def encode(self, schema, batches):
        out = bytearray()
        for batch in batches:
            if batch.length == 0:
                continue
            if not self.started:
                out += schema.encoded if schema.encoded is not None else _encode_schema(schema)
                self.started = True
            out += _encode_batch(batch)
        return bytes(out)

    def end(self, schema):
        head = b""
        if not self.started:
            head = schema.encoded if schema.encoded is not None else _encode_schema(schema)
            self.started = True
        return head + EOS


def schema_only(schema):
    """A schema-only stream: the schema message and the marker."""
    return (schema.encoded if schema.encoded is not None else _encode_schema(schema)) + EOS


# ---- the contract (componentize-py's bindings) --------------------------------


def _err(error):
    """`error` as the contract's `plugin-error`, raised as componentize-py wants."""
    from componentize_py_types import Err
    from wit_world.imports import types

    if isinstance(error, PluginError):
        variant = {"invalid-config": types.PluginError_InvalidConfig, "invalid-input": types.PluginError_InvalidInput}
        return Err(variant.get(error.kind, types.PluginError_Internal)(error.message))
    import traceback

    return Err(types.PluginError_Internal("".join(traceback.format_exception(error)).strip()))


def _guarded(f, *args):
    try:
        return f(*args)
    except Exception as error:  # every failure becomes a plugin-error
        raise _err(error) from None


def log(level, message):
    """The host's log, tagged with the step and plugin: `log("info", "...")`."""
    from wit_world.imports import log as host

    host.log(getattr(host.Level, level.upper()), str(message))


def _info(name, version, kind, config_schema):
    from wit_world.imports import types

    text = config_schema if isinstance(config_schema, str) else json.dumps(config_schema or {"type": "object"})
    return types.PluginInfo(name=name, version=version, kind=kind, config_schema=text)


def transform_plugin(name, transform, version="0.1.0", config_schema=None, output_schema=None, finish=None):
    """The `Meta` and `Transform` classes of a streaming transform plugin:
    `transform(config, batch)` returns a `Batch` (or None) per input batch;
    `output_schema(config, schema)` the schema it will produce (default: the
    input's); `finish(config)` the last batches (default: none). `config`
    is a dict of the step's config."""
    from wit_world import exports
    from wit_world.exports import transform as interface
    from wit_world.imports import types

    class Transformer(interface.Transformer):
        def __init__(self, config):
            self.config = config
            self.input = None
            self.output = None
            self.encoder = Encoder()

        def push(self, fragment):
            def run():
                schema, batches = decode(fragment, self.input)
                if self.input is None:
                    self.input = schema
                    self.output = output_schema(self.config, schema) if output_schema else schema
                results = [r for r in (transform(self.config, b) for b in batches) if r is not None]
                return self.encoder.encode(self.output, results)

            return _guarded(run)

        def finish(self):
            def run():
                tail = self.encoder.encode(self.output, list(finish(self.config) or [])) if finish else b""
                return tail + self.encoder.end(self.output)

            return _guarded(run)

    class Meta(exports.Meta):
        def info(self):
            return _info(name, version, types.PluginKind.TRANSFORM, config_schema)

    class Transform(exports.Transform):
        def output_schema(self, config, input_schema):
            def run():
                schema, _ = decode(input_schema)
                return schema_only(output_schema(dict(config), schema) if output_schema else schema)

            return _guarded(run)

        def open(self, config):
            return Transformer(dict(config))

        def sql(self, config, inputs):
            return None

    return Meta, Transform


def ingest_plugin(name, open, version="0.1.0", config_schema=None):
    """The `Meta` and `Ingest` classes of an ingest plugin: `open(config,
    source)` returns a parser with `push(chunk) -> [Batch]`,
    `finish() -> [Batch]` and `schema() -> Schema`."""
    from wit_world import exports
    from wit_world.exports import ingest as interface
    from wit_world.imports import types

    opener = open

    class Parser(interface.Parser):
        def __init__(self, inner):
            self.inner = inner
            self.encoder = Encoder()

        def push(self, chunk):
            def run():
                batches = self.inner.push(bytes(chunk)) or []
                return self.encoder.encode(batches[0].schema, batches) if batches else b""

            return _guarded(run)

        def finish(self):
            def run():
                batches = self.inner.finish() or []
                schema = batches[0].schema if batches else self.inner.schema()
                return self.encoder.encode(schema, batches) + self.encoder.end(schema)

            return _guarded(run)

    class Meta(exports.Meta):
        def info(self):
            return _info(name, version, types.PluginKind.INGEST, config_schema)

    class Ingest(exports.Ingest):
        def open(self, config, source_name):
            return _guarded(lambda: Parser(opener(dict(config), source_name)))

    return Meta, Ingest


def sql_plugin(name, sql, version="0.1.0", config_schema=None):
    """The `Meta` and `Transform` classes of a SQL-mode transform plugin:
    `sql(config, inputs)` returns a DuckDB query over `inputs` (their
    `layer.table` names); the host runs it."""
    from wit_world import exports
    from wit_world.imports import types

    class Meta(exports.Meta):
        def info(self):
            return _info(name, version, types.PluginKind.TRANSFORM, config_schema)

    class Transform(exports.Transform):
        def output_schema(self, config, input_schema):
            raise _err(PluginError("internal", "a SQL-mode plugin does not stream batches"))

        def open(self, config):
            raise _err(PluginError("internal", "a SQL-mode plugin does not stream batches"))

        def sql(self, config, inputs):
            return _guarded(lambda: sql(dict(config), list(inputs)))

    return Meta, Transform
