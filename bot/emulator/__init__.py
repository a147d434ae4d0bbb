"""A local Slack for tests and `gatekeeper demo`: the Web API, and signed requests to the app.

with SlackEmulator() as slack:
    slack.workspace.add_channel("C0ML00001", "ml-models")
    web = WebClient(token="xoxb-test", base_url=slack.api_url)
    person = slack.client("http://127.0.0.1:3000/slack/events")
    url = slack.open_page(request_url=..., people=[Person("U0LEAD001", "lea", "approver")])
"""

from __future__ import annotations

from bot.emulator.client import Delivery, InteractionClient
from bot.emulator.clock import Clock, ManualClock
from bot.emulator.errors import SlackError
from bot.emulator.page import Person
from bot.emulator.records import CallRecord, Change, Ephemeral, Message, ResponseUrlPost, View
from bot.emulator.server import BackgroundServer, SlackEmulator
from bot.emulator.signing import Forgery, signature
from bot.emulator.team import Channel, Identity, User, Usergroup
from bot.emulator.workspace import Workspace

__all__ = [
    "BackgroundServer",
    "CallRecord",
    "Change",
    "Channel",
    "Clock",
    "Delivery",
    "Ephemeral",
    "Forgery",
    "Identity",
    "InteractionClient",
    "ManualClock",
    "Message",
    "Person",
    "ResponseUrlPost",
    "SlackEmulator",
    "SlackError",
    "User",
    "Usergroup",
    "View",
    "Workspace",
    "signature",
]
