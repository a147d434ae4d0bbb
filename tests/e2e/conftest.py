"""`gatekeeper serve` started as an operator starts it, talking to the Slack stand-in."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.bootstrap import Gatekeeper, build
from bot.config import load_config, load_settings
from bot.emulator import InteractionClient, SlackEmulator
from bot.store.migrations import upgrade

TEAM = "T0GATEKPR"
BOT_TOKEN = "xoxb-e2e-token"
SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
WEBHOOK_SECRET = "e2e-mlflow-webhook-secret-0123456789"
APP_TOKEN = "xapp-e2e-app-token"
CHANNEL = "C0ML00001"
REQUESTER = "U0DS00001"
LEAD = "U0LEAD001"
SRE = "U0SRE0001"
OUTSIDER = "U0OUTSIDE"
LEADS = "S0MLLEADS"

CONFIG = f"""
environments:
  dev: {{mlflow: "http://127.0.0.1:1"}}
  staging: {{mlflow: "http://127.0.0.1:2"}}
  production: {{mlflow: "http://127.0.0.1:3"}}
promotion_path: [dev, staging, production]
models:
  churn-classifier: {{channel: {CHANNEL}}}
policies:
  staging: {{gates: ["accuracy >= 0.90"], approvals: 0}}
  production:
    gates: ["accuracy >= champion - 0.005"]
    approvals: 2
    approvers: [{LEADS}, {SRE}]
    rollback_by: [{SRE}]
slack: {{team_ids: [{TEAM}]}}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Bot:
    """`gatekeeper serve` as started by an operator, and the stand-in Slack it talks to."""

    url: str | None  # None in Socket Mode: people reach the bot over the socket it opened
    gatekeeper: Gatekeeper  # the same database and config, for the test's own reads and writes
    slack: SlackEmulator
    log: Path

    def person(self) -> InteractionClient:
        if self.url is None:
            return self.slack.socket_client()
        return self.slack.client(f"{self.url}/slack/events")


@contextlib.contextmanager
def serving(tmp_path: Path, gatekeeper_yaml: str, *, socket_mode: bool = False) -> Iterator[Bot]:
    """The stand-in with a small team, and `gatekeeper serve` (HTTP or Socket Mode) on it."""
    with SlackEmulator(
        team_id=TEAM, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, app_token=APP_TOKEN
    ) as slack:
        workspace = slack.workspace
        for user, name in [(REQUESTER, "dana"), (LEAD, "lea"), (SRE, "sam"), (OUTSIDER, "ovid")]:
            workspace.add_user(user, name)
        workspace.add_usergroup(LEADS, "ml-leads", [LEAD])
        workspace.add_channel(CHANNEL, "ml-models")

        config = tmp_path / "gatekeeper.yaml"
        config.write_text(gatekeeper_yaml, encoding="utf-8")
        database = f"sqlite:///{tmp_path / 'gatekeeper.db'}"
        upgrade(database)
        port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_URL": database,
            "GATEKEEPER_CONFIG": str(config),
            "PORT": str(port),
            "MLFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        log = tmp_path / "serve.log"
        command = [str(Path(sys.executable).with_name("gatekeeper")), "serve"]
        command += ["--socket-mode"] if socket_mode else ["--host", "127.0.0.1"]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        url = None if socket_mode else f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(slack, url, process, log)
            settings = load_settings(
                slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url, database_url=database
            )
            gatekeeper = build(settings, load_config(config))
            yield Bot(url, gatekeeper, slack, log)
            gatekeeper.close()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def gatekeeper_yaml() -> str:
    """The configuration `gatekeeper serve` starts with; a test module may override it."""
    return CONFIG


@pytest.fixture
def bot(tmp_path: Path, gatekeeper_yaml: str) -> Iterator[Bot]:
    with serving(tmp_path, gatekeeper_yaml) as running:
        yield running


def _wait_until_up(
    slack: SlackEmulator, url: str | None, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Until /healthz answers, or (Socket Mode, no port) the bot holds a socket open."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gatekeeper serve exited with {process.returncode}:\n{log.read_text()}")
        if url is None:
            with contextlib.suppress(TimeoutError):
                slack.socket_mode.wait_for_connections(1, timeout=0.1)
                return
            continue
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"gatekeeper serve was not up within 30 s:\n{log.read_text()}")
