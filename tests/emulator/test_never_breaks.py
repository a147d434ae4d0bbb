"""Whatever an app sends, the emulator answers like Slack: JSON, `ok` false, never a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.emulator import SlackEmulator
from bot.emulator.methods import HANDLERS

from .conftest import BOT_TOKEN, CHANNEL, LEAD

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
ARGUMENT_NAMES = st.sampled_from(
    ["channel", "text", "blocks", "ts", "thread_ts", "user", "user_id", "view", "view_id",
     "trigger_id", "name", "timestamp", "post_at", "usergroup", "limit", "cursor", "hash",
     "attachments", "metadata", "message_ts", "markdown_text", "include_users"]
)  # fmt: skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=BOT_TOKEN) as slack:
        slack.workspace.add_user(LEAD, "lea")
        slack.workspace.add_channel(CHANNEL, "ml-models")
        yield slack


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def no_crash(slack: SlackEmulator, response: httpx.Response) -> None:
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["ok"], bool)
    assert body.get("error") != "internal_error", slack.calls[-1]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(sorted(HANDLERS)),
    arguments=st.dictionaries(ARGUMENT_NAMES, VALUES, max_size=5),
)
def test_any_json_arguments(
    emulator: SlackEmulator, http: httpx.Client, method: str, arguments: dict[str, Any]
) -> None:
    headers = {
        "Authorization": f"Bearer {BOT_TOKEN}",
        "Content-Type": "application/json; charset=utf-8",
    }
    if method == "apps.connections.open":
        headers["Authorization"] = "Bearer xapp-test"
    response = http.post(
        f"{emulator.api_url}{method}", headers=headers, content=json.dumps(arguments)
    )
    no_crash(emulator, response)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(sorted(HANDLERS)),
    arguments=st.dictionaries(ARGUMENT_NAMES, st.text(max_size=40), max_size=5),
)
def test_any_form_arguments(
    emulator: SlackEmulator, http: httpx.Client, method: str, arguments: dict[str, str]
) -> None:
    response = http.post(
        f"{emulator.api_url}{method}",
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        data=arguments,
    )
    no_crash(emulator, response)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200), content_type=st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]))  # fmt: skip
def test_any_bytes(
    emulator: SlackEmulator, http: httpx.Client, body: bytes, content_type: str
) -> None:
    headers = {"Authorization": f"Bearer {BOT_TOKEN}", "Content-Type": content_type}
    response = http.post(f"{emulator.api_url}chat.postMessage", headers=headers, content=body)
    no_crash(emulator, response)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=VALUES)
def test_any_response_url_payload(
    emulator: SlackEmulator, http: httpx.Client, payload: Any
) -> None:
    url = emulator.workspace.issue_response_url(LEAD, CHANNEL)
    response = http.post(url, content=json.dumps(payload))
    assert response.status_code in (200, 400)
    assert response.json()["ok"] is (response.status_code == 200)


def test_anything_under_api_is_a_method_name(emulator: SlackEmulator) -> None:
    response = httpx.post(f"{emulator.api_url}chat/postMessage")
    assert response.json() == {"ok": False, "error": "unknown_method"}
