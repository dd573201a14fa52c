"""A Dagster code location that runs a floe-host pipeline through Dagster Pipes.

Every table of the pipeline is an asset (key `layer/table`, e.g.
`gold/customer_totals`), read from `floe-host plan --json`, so the asset graph
follows floe.yaml. One subsettable multi-asset launches
`floe-host run PROJECT` in a Dagster Pipes session; floe-host runs only the
steps of the selected assets and reports each committed table back as a
materialization (row count, column schema, table name, snapshot id, files,
bytes, duration), the dbt data tests of its `schema.yml` as asset checks, and
its log lines to the event log at their levels.

A failed run still materializes the tables it committed before the failure,
then fails the step; only exit code 1 (a step failed at run time) lets a
`RetryPolicy` retry it, since 2, 3 and 4 (configuration, plugin, refused
data) fail the same way every time. floe-host's run id is Dagster's run id,
or the root run's for a re-execution, so a retry or a re-execution from
failure skips the steps that were committed and runs the rest.

    FLOE_HOST_BIN=/path/to/floe-host dagster dev -f examples/dagster/definitions.py

A pipeline whose steps use `mode: partition_overwrite` is materialized one
partition at a time: pass `partitions_def` (for example
`dg.DailyPartitionsDefinition(start_date="2024-01-01")`), and floe-host reads
the run's partition key from the Pipes context as its `--partition`.

`floe_maintenance_job` runs `floe-host maintain PROJECT` the same way (a daily
schedule is defined for it): floe-host compacts, merges manifests, expires
snapshots and deletes orphans per platform.yaml's `maintenance` policies, and
each table's figures become an `AssetObservation` (maintenance changes no row,
so it is no materialization).

Settings (environment variables): FLOE_HOST_BIN (default: `floe-host` on PATH),
FLOE_PROJECT (default: examples/customer-analytics), FLOE_STATE_DIR (passed on
to floe-host as is).
"""

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import dagster as dg

DEMO = Path(__file__).resolve().parents[1] / "customer-analytics"


# floe-host's exit codes (README, "Exit codes"); only 1 is worth a retry.
EXIT_CODES = {
    1: "a step failed at run time; a retry may help",
    2: "bad configuration or usage; fix floe.yaml or platform.yaml",
    3: "a plugin broke its sandbox or contract",
    4: "the data was refused (empty source, too much shrink, corrupt file)",
    130: "interrupted (SIGINT)",
    143: "terminated (SIGTERM)",
}


def floe_run_id(context: dg.AssetExecutionContext) -> str:
    """Dagster's run id, or the root run's when this run re-executes another:
    floe-host skips the steps that an earlier attempt of the same id committed."""
    run = context.run
    return run.root_run_id or run.tags.get("dagster/root_run_id") or run.run_id


def launch(client: dg.PipesSubprocessClient, session, command: list[str]) -> int:
    """Runs `command` with the session's bootstrap variables; its exit code.
    A Dagster interruption becomes SIGTERM: floe-host stops at its next safe
    point (no step is half-committed, every maintenance commit is atomic)."""
    process = subprocess.Popen(
        command,
        cwd=client.cwd,
        env={**os.environ, **client.env, **session.get_bootstrap_env_vars()},
    )
    try:
        return process.wait()
    except dg.DagsterExecutionInterruptedError:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        raise


def failure(code: int) -> dg.Failure:
    """The step failure for floe-host's exit `code`: retryable only for 1."""
    return dg.Failure(
        description=f"floe-host exited with code {code}: {EXIT_CODES.get(code, 'unexpected exit')}",
        metadata={"exit_code": code},
        allow_retries=code == 1,
    )


def run_floe(
    context: dg.AssetExecutionContext,
    client: dg.PipesSubprocessClient,
    command: list[str],
):
    """Runs floe-host in a Pipes session. Yields a MaterializeResult for every
    table it committed, also when it fails, and then raises `dg.Failure`
    (retryable only for exit code 1).

    `PipesSubprocessClient.run` raises on a non-zero exit before the results
    are read, which would drop the materializations of committed tables."""
    with dg.open_pipes_session(
        context=context,
        context_injector=client.context_injector,
        message_reader=client.message_reader,
        extras={"floe_run_id": floe_run_id(context)},
    ) as session:
        code = launch(client, session, command)
    # After a failure, only what floe-host reported: Dagster would otherwise
    # add an empty materialization for every selected asset it did not commit.
    yield from session.get_results(implicit_materializations=code == 0)
    if code != 0:
        raise failure(code)


def floe_plan(binary: str, project: str | os.PathLike, extra_args: list[str] | None = None) -> dict:
    """The resolved plan of a floe-host project (`floe-host plan --json`)."""
    out = subprocess.run(
        [binary, "plan", "--json", str(project), *(extra_args or [])],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def check_name(step: dict, test: dict) -> str:
    """A dbt data test of a step as a Dagster check name: `unique(order_id)`
    is `unique_order_id`, and a singular test keeps its file's name, as
    floe-host reports it."""
    kind = test["kind"] if isinstance(test["kind"], str) else next(iter(test["kind"]))
    name = test["kind"]["singular"]["name"] if kind == "singular" else f"{kind}({test['column']})"
    return re.sub(r"[^A-Za-z0-9]", "_", name).rstrip("_")


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
            # The step's `tags`, so that Dagster's `tag:finance` selects what
            # `floe-host run --select tag:finance` does.
            tags={tag: "" for tag in step.get("tags", [])},
        )
        for step in plan["steps"]
    ]
    # The dbt data tests of each step (schema.yml), as asset checks: floe-host
    # reports each one's result, and a failed `error` test commits nothing.
    check_specs = [
        dg.AssetCheckSpec(
            name=check_name(step, test),
            asset=asset_key(step["target"]),
            description=f"dbt data test {test['kind'] if isinstance(test['kind'], str) else 'accepted_values'} "
            f"on `{test['column']}` ({test['severity']})",
        )
        for step in plan["steps"]
        for test in step.get("data_tests", [])
    ]
    command = [binary, "run", str(project)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]

    @dg.multi_asset(
        specs=specs,
        check_specs=check_specs,
        name=name or re.sub(r"[^A-Za-z0-9_]", "_", plan["pipeline"]),
        can_subset=True,
        partitions_def=partitions_def,
    )
    def _floe(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        # floe-host reads the selected asset keys (and the partition key) from
        # the Pipes context and runs only their steps; their inputs must
        # already be committed.
        yield from run_floe(context, pipes_subprocess_client, command)

    return _floe


def floe_maintenance_job(
    binary: str, project: str | os.PathLike, *, state_dir: str | os.PathLike | None = None, name: str = "floe_maintenance"
) -> dg.JobDefinition:
    """A job that runs `floe-host maintain PROJECT` in a Pipes session and logs
    one `AssetObservation` per table with what was done (snapshots expired,
    files deleted, small files compacted, manifests, orphans)."""
    command = [binary, "maintain", str(project)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]

    @dg.op(name=f"{name}_op")
    def _maintain(context: dg.OpExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
        client = pipes_subprocess_client
        with dg.open_pipes_session(
            context=context, context_injector=client.context_injector, message_reader=client.message_reader
        ) as session:
            code = launch(client, session, command)
        for message in session.get_custom_messages():
            figures = message.get("floe_maintenance") if isinstance(message, dict) else None
            if figures is None:
                continue
            compaction = figures["compaction"]
            context.log_event(
                dg.AssetObservation(
                    asset_key=dg.AssetKey.from_user_string(message["asset_key"]),
                    metadata={
                        "floe_run_id": message["floe_run_id"],
                        "dry_run": figures["dry_run"],
                        "snapshots": figures["snapshots"],
                        "snapshots_expired": len(figures["expired"]),
                        "files_deleted": figures["files_deleted"],
                        "bytes_deleted": figures["bytes_deleted"],
                        "orphans_deleted": figures["orphans_deleted"],
                        "files_compacted": compaction["files_replaced"],
                        "files_written": compaction["files_written"],
                        "manifests": figures["manifests_after"],
                    },
                )
            )
        if code != 0:
            raise failure(code)

    @dg.job(name=name)
    def _job():
        _maintain()

    return _job


def floe_definitions(binary: str, project: str | os.PathLike, *, state_dir=None) -> dg.Definitions:
    maintenance = floe_maintenance_job(binary, project, state_dir=state_dir)
    return dg.Definitions(
        assets=[floe_assets(binary, project, state_dir=state_dir)],
        jobs=[maintenance],
        schedules=[dg.ScheduleDefinition(job=maintenance, cron_schedule="0 3 * * *")],
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
