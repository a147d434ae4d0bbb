"""Real services the tests run against: an MLflow tracking and registry server per session."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

MLFLOW_START_SECONDS = 60


def _free_port() -> int:
    # Free only until someone else binds it: good enough on a test machine.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    # No proxy: the server is on loopback, whatever the machine's proxy settings say.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Server:
    """One MLflow server: its URL, and the folder it keeps proxied artifacts in."""

    url: str
    store: Path  # its --artifacts-destination, reachable from the tests

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


@pytest.fixture(scope="session")
def mlflow_environments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Three MLflow servers (dev, staging, production; SQLite backends), started together."""
    started: list[tuple[str, subprocess.Popen[bytes], Server, Path]] = []
    try:
        for environment in ("dev", "staging", "production"):
            root = tmp_path_factory.mktemp(f"mlflow-{environment}")
            port = _free_port()
            server = Server(f"http://127.0.0.1:{port}", root / "artifacts")
            log = root / "server.log"
            command = [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(server.store),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ]  # fmt: skip
            with log.open("wb") as output:
                # Its own process group: `mlflow server` starts uvicorn as a child; both must go.
                process = subprocess.Popen(
                    command,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    # The registry needs no job runner: left on, it starts seven more processes.
                    # Webhooks may call the bot on loopback over http, and a webhook made during
                    # the session is seen at once rather than after MLflow's 60 s cache.
                    env={
                        **os.environ,
                        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
                    },
                    start_new_session=True,
                )
            started.append((environment, process, server, log))
        # All start at once: each takes seconds, mostly importing.
        deadline = time.monotonic() + MLFLOW_START_SECONDS
        for _, process, server, log in started:
            while not _healthy(server.url):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"mlflow server at {server.url} did not answer /health within "
                        f"{MLFLOW_START_SECONDS} s; its output ends:\n{_tail(log)}",
                        pytrace=False,
                    )
                time.sleep(0.2)
        yield {environment: server for environment, _, server, _ in started}
    finally:
        for _, process, _, _ in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for _, process, _, _ in started:
            _stop(process)


@pytest.fixture(scope="session")
def mlflow_server(mlflow_environments: dict[str, Server]) -> str:
    """The URL of one MLflow server shared by the session (dev's; names keep tests apart)."""
    return mlflow_environments["dev"].url


def _stop(server: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=10)
    # Whatever of the group outlived a polite stop (a worker, or the server itself).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


@pytest.fixture(scope="session")
def mlflow_client(mlflow_server: str) -> MlflowClient:
    """A client for arranging what the adapter under test then reads."""
    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return _free_port()
