"""Holds deploy/compose.yaml to what `docker-compose config` accepts and to the stack's shape.

Debian's docker-compose (1.29, `make system`) resolves and validates the file without a Docker
daemon; nothing is started here, so the images themselves are not pulled or run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
REQUIRED = {
    "SLACK_BOT_TOKEN": "xoxb-compose-test",
    "SLACK_SIGNING_SECRET": "compose-signing-secret",
    "MLFLOW_WEBHOOK_SECRET": "compose-webhook-secret",
    "POSTGRES_PASSWORD": "composepassword",
}


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("no docker-compose in CI: `make system` installs Debian's package")
    pytest.skip("no docker-compose: `make system` installs Debian's docker-compose package")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A clean environment: only what the test names, so the operator's shell cannot leak in.
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [_compose(), "--project-directory", str(DEPLOY), "-f", str(COMPOSE), "config"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    done = compose_config(REQUIRED)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_the_stack_has_its_services(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {
        "migrate", "web", "worker", "postgres", "mlflow", "registry",
    }  # fmt: skip


def test_one_image_runs_every_gatekeeper_process(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    commands = {name: services[name]["command"] for name in ("migrate", "web", "worker")}
    assert commands == {
        "migrate": ["db", "upgrade"],
        "web": ["serve", "--no-worker"],
        "worker": ["worker"],
    }
    for name in commands:
        assert services[name]["image"] == "gatekeeper:local"
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert Path(services[name]["build"]["context"]) == REPO


def test_web_and_worker_wait_for_migrations_which_wait_for_postgres(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # The worker serves no HTTP, so the image's /healthz HEALTHCHECK is off for it.
    assert services["worker"]["healthcheck"]["test"] == ["NONE"]


def test_secrets_come_from_the_environment_and_reach_every_process(
    resolved: dict[str, Any],
) -> None:
    for name in ("migrate", "web", "worker"):
        environment = resolved["services"][name]["environment"]
        assert environment["SLACK_BOT_TOKEN"] == REQUIRED["SLACK_BOT_TOKEN"]
        assert environment["MLFLOW_WEBHOOK_SECRET"] == REQUIRED["MLFLOW_WEBHOOK_SECRET"]
        assert environment["DATABASE_URL"] == (
            "postgresql://gatekeeper:composepassword@postgres:5432/gatekeeper"
        )
        assert environment["GATEKEEPER_CONFIG"] == "/etc/gatekeeper/gatekeeper.yaml"
        assert environment["SLACK_APP_TOKEN"] == "", "empty means unset to Settings"
    postgres = resolved["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_refuses_to_resolve_without_a_required_secret(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    done = compose_config(env)
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr, done.stderr
    assert done.stdout == ""


def test_registry_is_on_gatekeeper_s_loopback_and_mlflow_may_call_web(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    # Gatekeeper speaks plain HTTP only to loopback registries (as Docker does): the registry
    # and the worker share web's network namespace, as containers of one pod would.
    assert services["registry"]["network_mode"] == "service:web"
    assert services["worker"]["network_mode"] == "service:web"
    assert services["registry"]["image"] == "registry:2"
    mlflow = services["mlflow"]["environment"]
    assert "http" in mlflow["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"].split(",")
    assert mlflow["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    assert "mlflow:5000" in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")


def test_mounted_gatekeeper_yaml_passes_config_check(resolved: dict[str, Any]) -> None:
    mounts = resolved["services"]["web"]["volumes"]
    (config_mount,) = [m for m in mounts if ":/etc/gatekeeper/gatekeeper.yaml" in m]
    source = Path(config_mount.split(":")[0])
    text = source.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    # The services the file names are the ones this stack runs.
    for environment in config["environments"].values():
        assert environment["mlflow"] == "http://mlflow:5000"
        assert environment["images"].startswith("127.0.0.1:5000/")
    gatekeeper = Path(sys.executable).with_name("gatekeeper")
    done = subprocess.run(
        [str(gatekeeper), "config", "check", str(source)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_env_example_names_every_required_variable() -> None:
    example = (DEPLOY / "env.example").read_text(encoding="utf-8")
    names = {
        line.partition("=")[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert set(REQUIRED) <= names
