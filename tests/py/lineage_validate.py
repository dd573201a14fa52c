"""Validates OpenLineage events against the official 2-0-2 JSON schemas.

Every event (one JSON object per line of the input file) is checked against
`RunEvent` of the core schema, and every facet in it against the schema its
`_schemaURL` names: the spec's facet schemas from the shared 2-0-2 folder,
and floe-host's own facets from the repository's `schemas/lineage/`. A facet
whose schema is in neither is a violation. Formats are checked
(`date-time`, `uuid`, `uri`), and run ids must be UUIDv7. Nothing is fetched
from the network: every schema is preloaded into a `referencing.Registry`.

Usage: lineage_validate.py SCHEMAS_DIR EVENTS.jsonl
Prints {"events": N, "facets": N, "violations": ["event 3 (COMPLETE demo.x): /run/runId: ..."]}.
"""

import json
import sys
import uuid
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def registry(schemas_dir: Path) -> Registry:
    files = [schemas_dir / "OpenLineage.json", *sorted((schemas_dir / "facets").glob("*.json"))]
    files += sorted((REPO / "schemas" / "lineage").glob("*.json"))
    resources = []
    for path in files:
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def validator(reg: Registry, ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=reg, format_checker=Draft202012Validator.FORMAT_CHECKER)


def facets_of(event: dict):
    """(JSON pointer, facet) for every facet of the event."""
    for kind in ("facets",):
        for name, facet in (event.get("run", {}).get(kind) or {}).items():
            yield f"/run/facets/{name}", facet
        for name, facet in (event.get("job", {}).get(kind) or {}).items():
            yield f"/job/facets/{name}", facet
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, dataset in enumerate(event.get(side) or []):
            for key in ("facets", extra):
                for name, facet in (dataset.get(key) or {}).items():
                    yield f"/{side}/{i}/{key}/{name}", facet


def main() -> None:
    schemas_dir, events_file = Path(sys.argv[1]), Path(sys.argv[2])
    reg = registry(schemas_dir)
    core = validator(reg, RUN_EVENT)
    validators = {}
    violations, facets, events = [], 0, 0
    for line in events_file.read_text().splitlines():
        if not line.strip():
            continue
        events += 1
        event = json.loads(line)
        label = f"event {events} ({event.get('eventType')} {event.get('job', {}).get('name')})"
        for error in core.iter_errors(event):
            violations.append(f"{label}: /{'/'.join(map(str, error.absolute_path))}: {error.message}")
        run_id = event.get("run", {}).get("runId", "")
        try:
            if uuid.UUID(run_id).version != 7:
                violations.append(f"{label}: /run/runId: {run_id} is not a UUIDv7")
        except ValueError:
            pass  # the schema's `uuid` format reports it
        for pointer, facet in facets_of(event):
            facets += 1
            url = facet.get("_schemaURL") if isinstance(facet, dict) else None
            if not url:
                violations.append(f"{label}: {pointer}: no _schemaURL")
                continue
            if url not in validators:
                try:
                    reg.resolver().lookup(url)
                    validators[url] = validator(reg, url)
                except Exception as error:  # noqa: BLE001 - any lookup failure is a violation
                    validators[url] = None
                    violations.append(f"{label}: {pointer}: schema {url} is not a known facet schema ({error})")
            if validators[url] is None:
                continue
            for error in validators[url].iter_errors(facet):
                path = "/".join(map(str, error.absolute_path))
                violations.append(f"{label}: {pointer}/{path}: {error.message}")
    print(json.dumps({"events": events, "facets": facets, "violations": violations}))


if __name__ == "__main__":
    main()
