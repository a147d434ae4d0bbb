"""A running emulator with a small team, and the official Slack client pointed at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.emulator import BackgroundServer, InteractionClient, ManualClock, SlackEmulator

CHANNEL = "C0ML00001"
LEAD = "U0LEAD001"
SRE = "U0SRE0001"
SCIENTIST = "U0DS00001"
LEADS_GROUP = "S0MLLEADS"
BOT_TOKEN = "xoxb-test"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def slack(clock: ManualClock) -> Iterator[SlackEmulator]:
    with SlackEmulator(
        team_id="T0GATEKPR", bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, clock=clock
    ) as emulator:
        workspace = emulator.workspace
        workspace.add_user(LEAD, "lea", real_name="Lea Lead", email="lea@example.com")
        workspace.add_user(SRE, "sam", real_name="Sam Sre")
        workspace.add_user(SCIENTIST, "dana", real_name="Dana Scientist")
        workspace.add_usergroup(LEADS_GROUP, "ml-leads", [LEAD, SRE], name="ML leads")
        workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


@dataclass
class RecordingApp:
    """An app that keeps every request and answers with `reply` (empty by default)."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    reply: bytes = b""
    reply_type: str = "application/json"
    status: int = 200

    def answer(self, reply: Any, status: int = 200) -> None:
        self.reply = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        self.status = status

    async def endpoint(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(self.reply, self.status, media_type=self.reply_type)

    @property
    def last_form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.requests[-1][1].decode()).items()}

    @property
    def last_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.last_form["payload"])
        return payload


@pytest.fixture
def app() -> Iterator[tuple[RecordingApp, str]]:
    """A recording app on its own port, and its request URL."""
    recording = RecordingApp()
    routes = [Route("/slack/events", recording.endpoint, methods=["POST"])]
    server = BackgroundServer(Starlette(routes=routes))
    server.start()
    yield recording, f"{server.url}slack/events"
    server.stop()


@pytest.fixture
def person(slack: SlackEmulator, app: tuple[RecordingApp, str]) -> InteractionClient:
    return slack.client(app[1])
