"""pii-mask in Python: the Rust plugin's rules (plugins/pii-mask), on the
Python SDK, with the same output byte for byte.

- Every column in `email` is normalised: lower(trim(value)), trimming
  Unicode White_Space (as Rust's `str::trim`) and lower-casing by Unicode.
- Every column in `hash` is replaced by hex(sha256(salt || value)).
- NULL stays NULL; other columns pass through. The output schema is the input's.
"""

import hashlib

from floe_plugin import Utf8, invalid_config, transform_plugin

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pii-mask config",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "email": {"description": "Comma-separated Utf8 columns to normalise with lower(trim()).", "type": "string"},
        "hash": {"description": "Comma-separated Utf8 columns to replace with hex(sha256(salt || value)).", "type": "string"},
        "salt": {"description": "The salt for `hash`.", "type": "string", "minLength": 1},
    },
}

# Unicode White_Space, the set Rust's `str::trim` removes.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u2028\u2029\u202f\u205f\u3000"


def names(config, key):
    return [n.strip() for n in config.get(key, "").split(",") if n.strip()]


def plan(config, schema):
    for key in config:
        if key not in ("email", "hash", "salt"):
            raise invalid_config(f"unknown config key `{key}` (known keys: email, hash, salt)")
    email, hashed = names(config, "email"), names(config, "hash")
    if not email and not hashed:
        raise invalid_config("set `email`, `hash` or both: there is nothing to mask")
    salt = config.get("salt", "")
    if hashed and not salt:
        raise invalid_config("`salt` is required")
    actions = {}
    for key, columns in (("email", email), ("hash", hashed)):
        for name in columns:
            i = schema.index(name)
            if i < 0:
                raise invalid_config(f"`{key}`: column `{name}` is not in the input (columns: {', '.join(schema.names())})")
            if schema.fields[i].type != Utf8:
                raise invalid_config(f"`{key}`: column `{name}` is {schema.fields[i].type!r}, not Utf8")
            if name in actions:
                raise invalid_config(f"column `{name}` is named twice in `email`/`hash`")
            actions[name] = key
    return actions, salt


def output_schema(config, schema):
    plan(config, schema)
    return schema


def transform(config, batch):
    actions, salt = plan(config, batch.schema)
    salted = salt.encode("utf-8")
    for name, action in actions.items():
        values = batch.column(name)
        if action == "email":
            masked = [None if v is None else v.strip(WHITE_SPACE).lower() for v in values]
        else:
            masked = [None if v is None else hashlib.sha256(salted + v.encode("utf-8")).hexdigest() for v in values]
        batch = batch.replace(name, masked)
    return batch


Meta, Transform = transform_plugin(
    name="pii-mask-py",
    version="0.1.0",
    config_schema=CONFIG_SCHEMA,
    output_schema=output_schema,
    transform=transform,
)
