"""The processes fault tests start, freeze and kill: `gatekeeper worker`, and an MLflow server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.oci_fixtures import free_port

MLFLOW_START_SECONDS = 60


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Worker:
    """One `gatekeeper worker`, in a process group of its own so a kill reaches all of it."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL, as a machine losing power: no handler, no finally, no flush runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it has not ended within 30 s."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"gatekeeper worker exited with {self.process.returncode}; its log ends:\n"
                f"{_tail(self.log)}",
                pytrace=False,
            )

    def output(self) -> str:
        return _tail(self.log)


@contextlib.contextmanager
def running_worker(env: dict[str, str], log: Path) -> Iterator[Worker]:
    """`gatekeeper worker` started as an operator starts it; stopped on the way out if alive."""
    command = [str(Path(sys.executable).with_name("gatekeeper")), "worker"]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process, log)
    try:
        yield worker
    finally:
        worker.stop()


@contextlib.contextmanager
def frozen(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGSTOP a server's group: it holds its connections and answers nothing until thawed."""
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGCONT)


@dataclass
class MlflowProcess:
    """An MLflow tracking and registry server (SQLite backend, proxied artifacts)."""

    url: str
    #: Its ``--artifacts-destination``: tests watch copies arrive here.
    artifacts: Path
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + MLFLOW_START_SECONDS
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"mlflow server at {self.url} did not become healthy; its output ends:\n"
                    f"{_tail(self.log)}",
                    pytrace=False,
                )
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        # Whatever of the group outlived a polite stop (uvicorn's worker, or the server itself).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False


def launch_mlflow(root: Path) -> MlflowProcess:
    """Start an MLflow server on a free loopback port; ``wait_ready`` before using it."""
    port = free_port()
    log = root / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            # The registry needs no job runner: left on, it starts seven more processes.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,
        )
    return MlflowProcess(f"http://127.0.0.1:{port}", root / "artifacts", process, log)
