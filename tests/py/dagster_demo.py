"""Materializes a floe-host project's tables in-process with real Dagster
(`dagster.materialize`), through the Pipes code of examples/dagster, and
prints JSON:

    {"success": bool, "materialized": {"gold/customer_totals": {"row_count": 989,
      "snapshot_id": ..., "table": "gold.customer_totals", "partition": null, ...}, ...},
     "checks": {"silver/stg_orders:unique_order_id": {"passed": true, "severity": "ERROR", "failing_rows": 0}},
     "errors": [error messages of the failed run], "logs": ["LEVEL message", ...],
     "run_id": Dagster's run id}

`partition` is the partition Dagster recorded for the materialization; a
`partition` in the metadata is floe-host's (it is prefixed `meta_` here).

Usage: dagster_demo.py FLOE_HOST PROJECT --state-dir DIR [--select gold/customer_totals ...]
           [--partitions KEY,KEY,... --partition KEY] [--reexecute RUN_ID] [--lineage-file F]
       dagster_demo.py FLOE_HOST PROJECT --state-dir DIR --maintain

`--maintain` executes `floe_maintenance_job` instead and prints
{"success": bool, "observations": {"bronze/raw_orders": {metadata...}, ...}, "logs": [...]}.

`--reexecute` tags the run as Dagster tags a re-execution of RUN_ID
(`dagster/root_run_id`, `dagster/parent_run_id`).
"""

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "dagster"))
warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402
from definitions import floe_assets, floe_maintenance_job  # noqa: E402


def error_messages(error):
    """A SerializableErrorInfo and its causes, outermost first."""
    out = []
    while error is not None:
        out.append(f"{error.cls_name}: {error.message}")
        error = error.cause or error.context
    return out


def plain(value):
    """A metadata value as JSON: a TableSchema as its columns."""
    if isinstance(value, dg.TableSchema):
        return [
            {"name": c.name, "type": c.type, "nullable": c.constraints.nullable if c.constraints else None}
            for c in value.columns
        ]
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("floe_host")
    parser.add_argument("project")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--select", action="append", help="asset keys like gold/customer_totals")
    parser.add_argument("--partitions", help="static partition keys of the assets, comma-separated")
    parser.add_argument("--partition", help="the partition key to materialize")
    parser.add_argument("--reexecute", help="the run this one re-executes")
    parser.add_argument("--lineage-file", help="floe-host appends its OpenLineage events here")
    parser.add_argument("--maintain", action="store_true", help="run floe_maintenance_job instead")
    args = parser.parse_args()
    if args.maintain:
        return maintain(args)
    if args.lineage_file:
        # PipesSubprocessClient passes this process's environment on to floe-host.
        os.environ["FLOE_LINEAGE_FILE"] = args.lineage_file

    partitions_def = dg.StaticPartitionsDefinition(args.partitions.split(",")) if args.partitions else None
    assets = floe_assets(args.floe_host, args.project, state_dir=args.state_dir, partitions_def=partitions_def)
    selection = [dg.AssetKey.from_user_string(k) for k in args.select] if args.select else None
    # floe-host inherits stdout (its summary table): keep ours for the JSON.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [assets],
            selection=selection,
            resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
            instance=instance,
            raise_on_error=False,
            partition_key=args.partition,
            tags={"dagster/root_run_id": args.reexecute, "dagster/parent_run_id": args.reexecute}
            if args.reexecute
            else None,
        )
        materialized = {}
        for event in result.get_asset_materialization_events():
            mat = event.materialization
            materialized[mat.asset_key.to_user_string()] = {
                "row_count": mat.metadata["dagster/row_count"].value,
                **{
                    ("meta_" if k == "partition" else "") + k: plain(v.value)
                    for k, v in mat.metadata.items()
                    if k != "dagster/row_count"
                },
                "partition": mat.partition,
            }
        checks = {}
        for evaluation in result.get_asset_check_evaluations():
            key = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            checks[key] = {"passed": evaluation.passed, "severity": evaluation.severity.value,
                           "failing_rows": evaluation.metadata["failing_rows"].value}
        errors = []
        entries = instance.all_logs(result.run_id)
        for event in (entry.dagster_event for entry in entries if entry.dagster_event is not None):
            if event.is_step_failure:
                errors += error_messages(event.step_failure_data.error)
            elif event.event_type == dg.DagsterEventType.ENGINE_EVENT:
                data = event.engine_event_data
                if data is not None and data.error is not None:
                    errors += [f"{event.message}: {m}" for m in error_messages(data.error)]
        logs = [
            f"{logging.getLevelName(entry.level)} {entry.user_message}" for entry in entries if entry.dagster_event is None
        ]
        result_json = {
            "success": result.success,
            "materialized": materialized,
            "checks": checks,
            "errors": errors,
            "logs": logs,
            "run_id": result.run_id,
        }
    json_out.write(json.dumps(result_json) + "\n")
    json_out.flush()


def maintain(args):
    job = floe_maintenance_job(args.floe_host, args.project, state_dir=args.state_dir)
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            resources={"pipes_subprocess_client": dg.PipesSubprocessClient()}, instance=instance, raise_on_error=False
        )
        observations = {}
        for event in result.get_asset_observation_events():
            observation = event.asset_observation_data.asset_observation
            observations[observation.asset_key.to_user_string()] = {k: v.value for k, v in observation.metadata.items()}
        entries = instance.all_logs(result.run_id)
        logs = [
            f"{logging.getLevelName(entry.level)} {entry.user_message}" for entry in entries if entry.dagster_event is None
        ]
        json_out.write(json.dumps({"success": result.success, "observations": observations, "logs": logs}) + "\n")
    json_out.flush()


if __name__ == "__main__":
    main()
