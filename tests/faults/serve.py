"""`gatekeeper serve` as an operator starts it, for fault tests that take away what it talks to."""

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

UP_SECONDS = 30


@dataclass
class Served:
    """The running process, where it listens, and its log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"gatekeeper serve exited with {self.process.returncode}; its log ends:\n"
                f"{self.output()}",
                pytrace=False,
            )


def gatekeeper(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI, run as an operator runs it (``db upgrade``, say)."""
    command = [str(Path(sys.executable).with_name("gatekeeper")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[Served]:
    """`gatekeeper serve` on a free loopback port, up once /healthz answers; stopped after."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("gatekeeper")), "serve", "--host", "127.0.0.1"]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            env={**env, "PORT": str(port), "PYTHONUNBUFFERED": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + UP_SECONDS
        while not _healthy(served.url):
            served.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"gatekeeper serve was not up within {UP_SECONDS} s:\n"
                            f"{served.output()}", pytrace=False)  # fmt: skip
            time.sleep(0.1)
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False
