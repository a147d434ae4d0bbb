"""The demo's servers that run as processes of their own: MLflow per environment, the registry.

Each starts in its own process group (``mlflow server`` starts uvicorn as a child; both must
go), logs to a file in the demo's folder, and is stopped by group: SIGTERM, then SIGKILL for
whatever outlives a short wait. Nothing the demo starts outlives it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.domain.errors import GatekeeperError

REGISTRY_BINARY = "docker-registry"
#: What a loopback child must never send through a proxy the user's environment names.
_LOOPBACK = "127.0.0.1,localhost"


class ServiceFailed(GatekeeperError):
    """A server did not come up; the message names it and ends with its log."""


@dataclass
class Service:
    """One server process: what it is, where it answers, its process group and its log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    health_path: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def answers(self) -> bool:
        try:
            response = httpx.get(f"{self.url}{self.health_path}", timeout=2, trust_env=False)
        except httpx.TransportError:
            return False
        return response.status_code in (200, 401)

    def wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with {self.process.returncode}"
                    if self.process.poll() is not None
                    else f"did not answer within {timeout:.0f} s"
                )
                raise ServiceFailed(f"{self.name} at {self.url} {state}; its log ends:\n"
                                    f"{_tail(self.log)}")  # fmt: skip
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """Stop the whole process group, politely first."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        # Whatever of the group outlived a polite stop (a worker, or the server itself).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def free_port() -> int:
    # Free only until someone else binds it: good enough for a demo on loopback.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """This process's environment for a child, loopback kept off any proxy."""
    base = dict(os.environ)
    for key in ("NO_PROXY", "no_proxy"):
        base[key] = ",".join(filter(None, (base.get(key), _LOOPBACK)))
    return {**base, **extra}


def start_mlflow(environment: str, root: Path) -> Service:
    """Start an MLflow tracking and registry server for ``environment``; returns at once."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = child_environment(
        {
            # The registry needs no job runner: left on, it starts seven more processes.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # Webhooks call the bot on loopback over http, and one made now is seen at once.
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        }
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return Service(f"MLflow ({environment})", f"http://127.0.0.1:{port}", process, log, "/health")


def registry_missing() -> str | None:
    """Why the demo has no image registry, or None when Debian's docker-registry is here."""
    if shutil.which(REGISTRY_BINARY) is None:
        return (
            f"{REGISTRY_BINARY} is not installed (Debian: apt-get install docker-registry), "
            "so the image step is skipped"
        )
    return None


def start_registry(root: Path) -> Service:
    """Start Debian's docker-registry with filesystem storage under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
    )
    log = root / "registry.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=child_environment(),
            start_new_session=True,
        )
    return Service("OCI registry", f"http://127.0.0.1:{port}", process, log, "/v2/")


def _tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
