"""A Dagster code location that runs a floe-host pipeline through Dagster Pipes.

Every table of the pipeline is an asset (key `layer/table`, e.g.
`gold/customer_totals`), read from `floe-host plan --json`, so the asset graph
follows floe.yaml. One subsettable multi-asset launches
`floe-host run PROJECT` with `PipesSubprocessClient`; floe-host runs only the
steps of the selected assets and reports each committed table back as a
materialization (row count, snapshot id, table, files, bytes, duration).

    FLOE_HOST_BIN=/path/to/floe-host dagster dev -f examples/dagster/definitions.py

A pipeline whose steps use `mode: partition_overwrite` is materialized one
partition at a time: pass `partitions_def` (for example
`dg.DailyPartitionsDefinition(start_date="2024-01-01")`), and floe-host reads
the run's partition key from the Pipes context as its `--partition`.

Settings (environment variables): FLOE_HOST_BIN (default: `floe-host` on PATH),
FLOE_PROJECT (default: examples/customer-analytics), FLOE_STATE_DIR (passed on
to floe-host as is).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg

DEMO = Path(__file__).resolve().parents[1] / "customer-analytics"


def floe_plan(binary: str, project: str | os.PathLike, extra_args: list[str] | None = None) -> dict:
    """The resolved plan of a floe-host project (`floe-host plan --json`)."""
    out = subprocess.run(
        [binary, "plan", "--json", str(project), *(extra_args or [])],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def asset_key(table: str) -> dg.AssetKey:
    """`gold.customer_totals` -> AssetKey(["gold", "customer_totals"])."""
    return dg.AssetKey(table.split("."))


def floe_assets(
    binary: str,
    project: str | os.PathLike,
    *,
    state_dir: str | os.PathLike | None = None,
    name: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetsDefinition:
    """One multi-asset for every table of the floe-host project at `project`,
    partitioned by `partitions_def` when given (each run replaces the
    partition of its key in the `partition_overwrite` tables)."""
    plan = floe_plan(binary, project)
    produced = {step["target"] for step in plan["steps"]}
    specs = [
        dg.AssetSpec(
            asset_key(step["target"]),
            # Tables read from outside the pipeline are not assets here.
            deps=[asset_key(i["table"]) for i in step["inputs"] if i["table"] in produced],
            description=f"floe-host step `{step['name']}` ({step['action']['kind']})",
            group_name=re.sub(r"[^A-Za-z0-9_]", "_", plan["pipeline"]),
        )
        for step in plan["steps"]
    ]
    command = [binary, "run", str(project)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]

    @dg.multi_asset(
        specs=specs,
        name=name or re.sub(r"[^A-Za-z0-9_]", "_", plan["pipeline"]),
        can_subset=True,
        partitions_def=partitions_def,
    )
    def _floe(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        # floe-host reads the selected asset keys (and the partition key) from
        # the Pipes context and runs only their steps; their inputs must
        # already be committed.
        return pipes_subprocess_client.run(command=command, context=context).get_results()

    return _floe


def floe_definitions(binary: str, project: str | os.PathLike, *, state_dir=None) -> dg.Definitions:
    return dg.Definitions(
        assets=[floe_assets(binary, project, state_dir=state_dir)],
        resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
    )


def _binary() -> str:
    binary = os.environ.get("FLOE_HOST_BIN") or shutil.which("floe-host")
    if not binary:
        raise RuntimeError("floe-host not found: set FLOE_HOST_BIN or put floe-host on PATH")
    return binary


# Loaded lazily by `dagster dev -f` / a workspace, so that importing this
# module (as tests/py/dagster_demo.py does) needs no binary.
@dg.definitions
def defs() -> dg.Definitions:
    return floe_definitions(
        _binary(), os.environ.get("FLOE_PROJECT", DEMO), state_dir=os.environ.get("FLOE_STATE_DIR")
    )
