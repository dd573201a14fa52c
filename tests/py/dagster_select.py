#!/usr/bin/env python3
"""Resolves Dagster asset selections over the assets examples/dagster makes
of a floe-host project (tests/integration/select.rs compares them with
`floe-host plan --select`).

Usage: dagster_select.py FLOE_HOST PROJECT SELECTION [SELECTION ...]
Prints {"SELECTION": ["gold/customer_totals", ...], ...}: the asset keys
Dagster's own selection syntax resolves to, sorted.
"""

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "dagster"))
warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402
from definitions import floe_assets  # noqa: E402


def main():
    binary, project, *selections = sys.argv[1:]
    assets = floe_assets(binary, project)
    out = {}
    for selection in selections:
        keys = dg.AssetSelection.from_string(selection).resolve([assets])
        out[selection] = sorted(key.to_user_string() for key in keys)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
