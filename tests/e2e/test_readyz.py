"""`GET /readyz` of a running `gatekeeper serve`: the database, and Slack (HTTP or Socket Mode)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Bot, serving


def port_of(bot: Bot) -> int:
    """The port serve listens on (Socket Mode too: health, readiness and metrics)."""
    # The fixture returns once the socket is open; the HTTP server may start a moment later.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for line in bot.log.read_text(errors="replace").splitlines():
            if "Uvicorn running on" in line:
                return int(line.rsplit(":", 1)[1].split()[0])
        time.sleep(0.1)
    raise AssertionError(f"serve never said where it listens:\n{bot.log.read_text()}")


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_ready_when_the_database_answers_and_slack_does(bot: Bot) -> None:
    assert bot.url is not None
    answer = readyz(bot.url)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": {"ok": True}, "slack": {"ok": True}},
    }
    assert [call.method for call in bot.slack.calls].count("auth.test") == 1
    readyz(bot.url)  # a probe soon after is answered from what Slack said a moment ago
    assert [call.method for call in bot.slack.calls].count("auth.test") == 1


def test_not_ready_naming_slack_when_slack_cannot_be_reached(bot: Bot) -> None:
    assert bot.url is not None
    bot.slack.stop()
    answer = readyz(bot.url)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["slack"]["ok"] is False
    assert "Slack could not be reached" in body["checks"]["slack"]["reason"]


@pytest.fixture
def socket_bot(tmp_path: Path, gatekeeper_yaml: str) -> Iterator[Bot]:
    with serving(tmp_path, gatekeeper_yaml, socket_mode=True) as bot:
        yield bot


def test_socket_mode_serves_http_and_is_ready_while_the_socket_is_open(socket_bot: Bot) -> None:
    url = f"http://127.0.0.1:{port_of(socket_bot)}"
    answer = readyz(url)
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["slack"] == {"ok": True}
    assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200
    # Slack reaches this process over the socket: the HTTP endpoint says so, and does nothing.
    events = httpx.post(f"{url}/slack/events", content=b"{}", timeout=10)
    assert events.status_code == 404
    assert "Socket Mode" in events.json()["error"]

    socket_bot.slack.stop()  # the socket closes, and reconnecting fails while Slack is away
    deadline = time.monotonic() + 15
    while (answer := readyz(url)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 503
    assert answer.json()["checks"]["slack"] == {
        "ok": False,
        "reason": "the Socket Mode connection to Slack is not open",
    }
