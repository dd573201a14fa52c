"""Renders the Helm chart in deploy/helm/floe-host with the Helm SDK (the
`helm-python-sdk` wheel embeds Helm's Go library: `helm template`, offline) and
validates every object against the Kubernetes OpenAPI schemas in strict mode
(`kubernetes-validate`, offline; unknown fields are errors).

Usage: helm_check.py VALUES_JSON [KUBERNETES_VERSION]
       helm_check.py --files KUBERNETES_VERSION FILE.yaml...   (plain manifests)
Prints {"objects": [...], "violations": ["Job/floe-x: spec...: message"]},
or {"error": "..."} when the chart refuses the values.
"""

import json
import sys
from pathlib import Path

import helm_python as hp
import kubernetes_validate
import yaml
from kubernetes_validate.utils import ValidationError

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "floe-host"


def main() -> None:
    if sys.argv[1] == "--files":
        version = sys.argv[2]
        rendered = {path: Path(path).read_text() for path in sys.argv[3:]}
    else:
        values = json.loads(sys.argv[1])
        version = sys.argv[2] if len(sys.argv) > 2 else "1.30"
        try:
            with hp.Chart.load(str(CHART)) as chart:
                rendered = chart.render(values=values, name="floe", namespace="pipelines")
        except Exception as error:  # noqa: BLE001 - the chart's `fail` arrives as an exception
            print(json.dumps({"error": str(error)}))
            return
    objects, violations = [], []
    for source, text in sorted(rendered.items()):
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            objects.append(doc)
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')} ({source})"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except ValidationError as error:
                path = ".".join(map(str, error.path))
                violations.append(f"{name}: {path}: {error.message}")
    print(json.dumps({"objects": objects, "violations": violations}))


if __name__ == "__main__":
    main()
