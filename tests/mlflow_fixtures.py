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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an MLflow server (SQLite backend, proxied artifacts) shared by the session."""
    root = tmp_path_factory.mktemp("mlflow")
    log = root / "server.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    with log.open("wb") as output:
        # Its own process group: `mlflow server` starts uvicorn as a child, and both must go.
        server = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            # The registry needs no job runner: left on, it starts seven more processes.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + MLFLOW_START_SECONDS
        while not _healthy(url):
            if server.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {server.returncode} before answering "
                    f"{url}/health; its output ends:\n{_tail(log)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not answer {url}/health within {MLFLOW_START_SECONDS} s; "
                    f"its output ends:\n{_tail(log)}",
                    pytrace=False,
                )
            time.sleep(0.2)
        yield url
    finally:
        _stop(server)


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
