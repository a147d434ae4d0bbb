"""`gatekeeper demo` as a user runs it: one command, one URL, the candidate waiting, and Ctrl-C
leaving nothing behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from bot.demo.team import MODEL

#: Set-up measured at ~60 s on this 2-core machine; room for a machine shared with other work.
READY_SECONDS = 240
STOP_SECONDS = 40
STEP_LINE = re.compile(r"^\[\s*\d+\.\d s\] .+ \(\d+\.\d s\)$")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningDemo:
    """The demo's process, what it printed, and where it keeps its state."""

    process: subprocess.Popen[str]
    folder: Path
    url: str
    lines: list[str]
    seconds_to_url: float
    output: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, object]:
        loaded: dict[str, object] = yaml.safe_load((self.folder / "gatekeeper.yaml").read_text())
        return loaded

    def mlflow(self, environment: str) -> MlflowClient:
        environments = self.config["environments"]
        assert isinstance(environments, dict)
        uri = environments[environment]["mlflow"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with contextlib.closing(sqlite3.connect(self.folder / "gatekeeper.db")) as db:
            return list(db.execute(sql, args))

    def children(self) -> list[int]:
        """The demo's direct child processes (its servers and any pipeline step running)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(pid) for pid in (task / "children").read_text().split()]
        return found


def _pump(process: subprocess.Popen[str], into: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.append(line.rstrip("\n"))


@contextlib.contextmanager
def running_demo(folder: Path) -> Iterator[RunningDemo]:
    """`gatekeeper demo --dir folder`, up to its URL, with a real Slack app's settings in the
    environment that it must ignore; stopped with Ctrl-C if a test left it running."""
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-the-users-real-token",
        "SLACK_SIGNING_SECRET": "the-users-real-secret",
        "SLACK_CLIENT_ID": "1234.5678",
        "SLACK_CLIENT_SECRET": "the-users-oauth-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "PYTHONUNBUFFERED": "1",
    }
    command = [str(Path(sys.executable).with_name("gatekeeper")), "demo"]
    command += ["--dir", str(folder), "--port", str(_free_port())]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    threading.Thread(target=_pump, args=(process, output), daemon=True).start()
    try:
        while "Ctrl-C to stop" not in output:
            if process.poll() is not None or time.monotonic() - started > READY_SECONDS:
                pytest.fail(
                    f"gatekeeper demo did not print its URL (exit {process.poll()}):\n"
                    + "\n".join(output),
                    pytrace=False,
                )
            time.sleep(0.2)
        urls = [line for line in output if line.startswith("http://")]
        assert len(urls) == 1, output
        yield RunningDemo(
            process, folder, urls[0], list(output), time.monotonic() - started, output
        )
    finally:
        if process.poll() is None:
            # Ctrl-C, as a user stops it: its servers are process groups of their own, which
            # only the demo's own clean-up reaches.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    with running_demo(tmp_path_factory.mktemp("demo") / "gatekeeper-demo") as running:
        yield running


def test_prints_each_step_with_its_seconds_then_one_url(demo: RunningDemo) -> None:
    steps = [line for line in demo.lines if STEP_LINE.match(line)]
    assert len(steps) >= 6, demo.lines
    assert any("champion promoted to staging" in line for line in steps)
    assert any("through the webhook intake" in line for line in steps)
    assert demo.url.startswith("http://127.0.0.1:")
    assert demo.lines[-1] == "Ctrl-C to stop"
    print(f"gatekeeper demo: URL after {demo.seconds_to_url:.1f} s")


def test_the_page_answers_and_shows_the_candidate(demo: RunningDemo) -> None:
    page = httpx.get(demo.url, timeout=10, trust_env=False, follow_redirects=True)
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    state = httpx.get(f"{demo.url}api/state", timeout=10, trust_env=False).json()
    cards = [m["html"] for m in state["messages"] if f"{MODEL} v2" in m["html"]]
    assert cards, "the challenger's card is not on the page"
    assert "accuracy" in cards[0]
    assert 'data-action-id="' in cards[0]  # its buttons


def test_the_challenger_waits_for_approval_and_the_champion_serves_staging(
    demo: RunningDemo,
) -> None:
    rows = demo.query("SELECT version, state, target_env, metrics FROM candidates ORDER BY id")
    assert [(version, state, target) for version, state, target, _ in rows] == [
        ("1", "promoted", "staging"),
        ("2", "pending", "staging"),
    ]
    assert '"accuracy"' in str(rows[1][3])
    # The challenger came in through MLflow's webhook, not a direct request.
    deliveries = demo.query("SELECT environment, event FROM webhook_deliveries")
    assert ("dev", "model_version_tag.set") in deliveries
    staging = demo.mlflow("staging")
    assert staging.get_model_version_by_alias(MODEL, "champion").version == "1"
    dev = demo.mlflow("dev")
    tags = dev.get_model_version(MODEL, "2").tags
    assert tags["gatekeeper.promote"] == "staging"
    assert tags["gatekeeper.pipeline"] == "pipeline/pipeline.yaml"
    assert re.fullmatch(r"file://.+#sha256=[0-9a-f]{64}", tags["gatekeeper.snapshot.train"])


def test_ignores_the_users_slack_settings(demo: RunningDemo) -> None:
    config = (demo.folder / "gatekeeper.yaml").read_text()
    assert "xoxb-the-users-real-token" not in config
    calls = demo.query("SELECT count(*) FROM slack_messages")
    assert calls[0][0] >= 2  # both cards reached the stand-in, not the user's Slack


def test_ctrl_c_stops_everything_it_started(demo: RunningDemo) -> None:
    children = demo.children()
    groups = {os.getpgid(pid) for pid in children}
    assert len(children) >= 3, "the MLflow servers should be children of the demo"
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=STOP_SECONDS) == 0
    time.sleep(0.5)
    for group in groups | {demo.process.pid}:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
    assert demo.output[-1].startswith("stopped:"), demo.output
