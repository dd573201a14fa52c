#!/usr/bin/env python3
"""Validates YAML files against a JSON Schema, as an editor with
yaml-language-server would (tests/integration/examples.rs).

Usage: schema_check.py SCHEMA.json FILE.yaml [FILE.yaml ...]
Prints {"FILE.yaml": ["path: message", ...], ...}: every violation, by file.
"""

import json
import sys

import yaml
from jsonschema import Draft202012Validator


def main():
    schema_path, *files = sys.argv[1:]
    validator = Draft202012Validator(json.load(open(schema_path)))
    out = {}
    for path in files:
        document = yaml.safe_load(open(path))
        out[path] = [
            f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)
        ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
