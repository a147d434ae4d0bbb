"""Fuzzed Slack requests, signed as Slack signs them, into `gatekeeper serve`: never a 5xx or a
traceback, and nothing changes but refusals in the audit log and the sender being told why.

A candidate waits for approval, and people who may not vote press its buttons with payloads
Slack would never send: odd action ids and values, missing keys, wrong types, foreign teams,
huge and unicode text. Slash commands get arbitrary `/promote` text; the Events API gets odd
events; the endpoint gets bodies that are not JSON or not a form at all. Unsigned and tampered
requests are refused with 401. Run more with GATEKEEPER_FUZZ_EXAMPLES=2000.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.candidates import Candidate, parse_bundle
from bot.domain.promotion import CandidateState
from bot.emulator import Forgery
from bot.emulator.signing import sign
from bot.services.candidates import Champion, propose
from handlers.blocks import Action, BlockId, ButtonValue
from tests.e2e.conftest import CHANNEL, CONFIG, OUTSIDER, REQUESTER, SIGNING_SECRET, TEAM
from tests.faults.fuzzing import (
    FUZZ,
    JSON_VALUES,
    PLAUSIBLE,
    TEXT,
    Served,
    changes,
    damaged,
    no_traceback,
    serving,
    slack_changes,
    wait_quiet,
)

APP_ID = "A0GATEKPR"  # the stand-in's app
FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"

#: What a refused request may leave: an audit row saying so, and a private reply to the sender.
REFUSALS = frozenset({"vote.refused", "request.refused", "rollback.refused"})
ALLOWED = {
    "audit_log": lambda row: row["action"] in REFUSALS,
    "outbox": lambda row: row["method"] == "chat.postEphemeral",
}
#: What the bot may call Slack for: private replies, modals and the Home tab, and lookups.
SLACK_ALLOWED = frozenset(
    {
        "chat.postEphemeral",
        "views.open",
        "views.publish",
        "auth.test",
        "users.info",
        "usergroups.users.list",
    }
)


#: The e2e configuration (its MLflow servers are closed ports), with the app named too.
GATEKEEPER_YAML = CONFIG.replace(f"team_ids: [{TEAM}]", f"team_ids: [{TEAM}], app_id: {APP_ID}")


def _card_waiting(served: Served) -> str:
    """A candidate for production waiting for two approvals, its card posted; the card's ts."""
    gatekeeper = served.gatekeeper
    image = "127.0.0.1:5000/stg/churn-serving@sha256:" + "ab" * 32
    candidate = Candidate(
        "churn-classifier",
        "7",
        "staging",
        "production",
        {"accuracy": 0.93},
        parse_bundle({"gatekeeper.image.serving": image}),
        requester=REQUESTER,
    )
    propose(
        gatekeeper.unit_of_work,
        gatekeeper.policy_for,
        gatekeeper.notifier,
        candidate,
        Champion("5", {"accuracy": 0.925}),
        actor=REQUESTER,
        now=gatekeeper.now(),
    )
    cards = served.slack.wait_for(
        lambda ws: [m for m in ws.messages(CHANNEL) if m.content.blocks], timeout=15
    )
    return str(cards[0].ts)


@pytest.fixture(scope="module")
def bots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Served]]:
    """The bot on SQLite and on PostgreSQL, each with a candidate waiting for approval."""
    root = tmp_path_factory.mktemp("fuzz-slack")
    # A `/promote` the fuzz makes well formed asks MLflow, which is not there: told at once.
    fail_fast = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    with (
        serving(root / "sqlite", GATEKEEPER_YAML, "sqlite", **fail_fast) as on_sqlite,
        serving(root / "postgres", GATEKEEPER_YAML, "postgres", **fail_fast) as on_postgres,
    ):
        served = [on_sqlite, on_postgres]
        for bot in served:
            bot.card_ts = _card_waiting(bot)
            bot.settle()
        yield served


# --- what the fuzz is made of ------------------------------------------------------------------

#: People who may not vote on the waiting candidate, and IDs nobody has.
PEOPLE = st.sampled_from([OUTSIDER, REQUESTER, "U0NOBODY1", "W0ENTERPR", "USLACKBOT"])
USERS = st.one_of(PEOPLE, TEXT, JSON_VALUES)
TEAMS = st.one_of(st.sampled_from([TEAM, "T0ELSEWHERE", "t0gatekpr", ""]), TEXT, JSON_VALUES)
STATES = st.sampled_from([s.value for s in CandidateState]) | TEXT
IDS = st.one_of(
    st.sampled_from([1, 2, 0, -1, 2**63 - 1, 2**63, 10**30, True, None, 1.0, "1"]),
    st.integers(),
    JSON_VALUES,
)
#: Button values and view metadata: the real one, Gatekeeper's format with odd parts, and
#: anything else.
VALUES = st.one_of(
    st.just(ButtonValue(1, CandidateState.PENDING).encode()),
    st.builds(lambda i, s: json.dumps({"v": 1, "id": i, "s": s}), IDS, STATES),
    st.builds(
        lambda v, i, s, x: json.dumps({"v": v, "id": i, "s": s, **x}),
        JSON_VALUES,
        IDS,
        STATES,
        st.dictionaries(TEXT, JSON_VALUES, max_size=2),
    ),
    JSON_VALUES.map(json.dumps),
    st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),
    JSON_VALUES,
)
ACTIONS = st.sampled_from([a.value for a in Action])


@st.composite
def block_actions(draw: st.DrawFn, card_ts: str) -> dict[str, Any]:
    """A press on the card: by someone who may not vote, with any action id and value."""
    plausible = draw(PLAUSIBLE)
    anything = TEXT | JSON_VALUES
    action = {
        "action_id": draw(ACTIONS if plausible else ACTIONS | anything),
        "block_id": BlockId.CARD_ACTIONS.value,
        "type": "button",
        "value": draw(VALUES),
        "action_ts": "1764230400.000100",
    }
    user = draw(PEOPLE if plausible else USERS)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "gatekeeper-demo"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM},
        "api_app_id": APP_ID,
        "token": "emulator-verification-token",
        "container": {"type": "message", "message_ts": card_ts, "channel_id": CHANNEL},
        "trigger_id": draw(st.just("fresh") | TEXT),
        "channel": {"id": CHANNEL, "name": "ml-models"},
        "state": {"values": {}},
        "response_url": "http://127.0.0.1:1/response",
        "actions": [action],
    }
    if plausible:
        return payload
    payload["actions"] = draw(st.lists(damaged(action), max_size=3) | JSON_VALUES)
    payload["team"] = draw(damaged({"id": draw(TEAMS)}) | JSON_VALUES)
    return draw(damaged(payload))


@st.composite
def view_submissions(draw: st.DrawFn) -> dict[str, Any]:
    """The reject modal submitted, by someone who may not vote, with any reason and metadata."""
    plausible = draw(PLAUSIBLE)
    reason = {"type": "plain_text_input", "value": draw(TEXT)}
    values = {BlockId.REJECT_REASON.value: {Action.REJECT_REASON.value: reason}}
    view = {
        "id": "V0FUZZ0001",
        "type": "modal",
        "callback_id": draw(st.sampled_from([Action.REJECT_MODAL.value]) | ACTIONS | TEXT),
        "private_metadata": draw(VALUES),
        "state": {"values": values},
        "hash": "1764230400.fuzz",
    }
    payload = {
        "type": draw(st.sampled_from(["view_submission", "view_closed"])),
        "team": {"id": TEAM, "domain": "gatekeeper-demo"},
        "user": {"id": draw(PEOPLE if plausible else USERS), "team_id": TEAM},
        "api_app_id": APP_ID,
        "token": "emulator-verification-token",
        "trigger_id": draw(st.just("fresh") | TEXT),
        "view": view,
        "response_urls": [],
    }
    if plausible:
        return payload
    reason = draw(damaged(reason))
    view["state"] = draw(st.just({"values": values}) | JSON_VALUES)
    payload["view"] = draw(damaged(view) | JSON_VALUES)
    return draw(damaged(payload))


PROMOTE_WORDS = st.sampled_from([
    "churn-classifier", "model:status", "model:", "status", "list", "plan", "rollback", "help",
    "HELP", "to", "TO", "dev", "staging", "production", "qa", "7", "0", "007", "-1", "1e9", "abc",
    "v7", "#7", "@champion", "@", "@v7", "@latest", "latest", "`churn-classifier`", '"', "'",
    "```", "<https://churn.ai|churn.ai>", "&lt;", "&amp;", "—", "\u200b", "../x", "a/b", "x" * 300,
])  # fmt: skip
#: `/promote` text: words it knows in any order, with anything between them, or anything.
PROMOTE_TEXT = st.one_of(
    st.lists(PROMOTE_WORDS, max_size=6).map(" ".join),
    st.lists(PROMOTE_WORDS | TEXT, max_size=6).map(" ".join),
    TEXT,
)


@st.composite
def slash_commands(draw: st.DrawFn) -> dict[str, Any]:
    """`/promote` with any text, typed by someone who may not vote (or a form that is off)."""
    plausible = draw(PLAUSIBLE)
    form = {
        "token": "emulator-verification-token",
        "team_id": TEAM,
        "team_domain": "gatekeeper-demo",
        "channel_id": CHANNEL,
        "channel_name": "ml-models",
        "user_id": draw(PEOPLE if plausible else USERS),
        "user_name": "someone",
        "command": "/promote",
        "text": draw(PROMOTE_TEXT),
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": "http://127.0.0.1:1/response",
        "trigger_id": "fresh",
    }
    if plausible:
        return form
    # A form's values are text: anything at all, under any of its keys or others.
    dropped = draw(st.lists(st.sampled_from(list(form)), max_size=3))
    changed = draw(st.dictionaries(st.sampled_from([*form, "payload", "type"]) | TEXT, TEXT))
    return {**{k: v for k, v in form.items() if k not in dropped}, **changed}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Slack's URL check with any challenge, or an event (the Home tab opened, others) from
    anyone."""
    plausible = draw(PLAUSIBLE)
    if draw(st.integers(0, 3)) == 0:
        challenge = {
            "token": "emulator-verification-token",
            "type": "url_verification",
            "challenge": draw(TEXT | JSON_VALUES),
        }
        return challenge if plausible else draw(damaged(challenge))
    kinds = ["app_home_opened", "app_mention", "message", "app_uninstalled", "tokens_revoked"]
    event = {
        "type": draw(st.sampled_from(kinds) if plausible else st.sampled_from(kinds) | TEXT),
        "user": draw(PEOPLE if plausible else USERS),
        "channel": "D0FUZZ0001",
        "tab": draw(st.sampled_from(["home", "messages"]) | TEXT),
        "text": draw(PROMOTE_TEXT),
        "event_ts": "1764230400.000100",
    }
    envelope = {
        "token": "emulator-verification-token",
        "team_id": TEAM,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": 1764230400,
        "authorizations": [{"team_id": TEAM, "user_id": "U0GATEBOT", "is_bot": True}],
    }
    if plausible:
        return envelope
    envelope["event"] = draw(damaged(event) | JSON_VALUES)
    envelope["team_id"] = draw(TEAMS)
    return draw(damaged(envelope))


CONTENT_TYPES = st.sampled_from(
    [FORM, JSON_TYPE, "text/plain", "application/json; charset=utf-8", "", "multipart/form-data"]
)
#: Bodies that are not what Slack sends: bytes, text, forms and JSON of any shape.
RAW_BODIES = st.one_of(
    st.binary(max_size=300),
    TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    JSON_VALUES.map(lambda v: urlencode({"payload": json.dumps(v)}).encode()),
    TEXT.map(lambda s: urlencode({"payload": s}, errors="surrogatepass").encode()),
    st.sampled_from([
        b"{", b"[", b"payload=", b"payload=%7B", b"payload=null", b"payload=[]", b"{}", b"[]",
        b"null", b"1", b'"x"', b"=&=&", b"payload=1&payload=2", b"command=/promote",
        b"ssl_check=1", b"\x00", b"\xff\xfe{",
    ]),
)  # fmt: skip


# --- sending and checking ----------------------------------------------------------------------


def _send(
    served: Served,
    body: bytes,
    content_type: str,
    *,
    forgery: Forgery | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    signed, sent = sign(SIGNING_SECRET, body, now=time.time(), forgery=forgery)
    headers = {**signed, "Content-Type": content_type, **(headers or {})}
    return served.http.post("/slack/events", content=sent, headers=headers)


def _interaction(served: Served, payload: dict[str, Any]) -> httpx.Response:
    if payload.get("trigger_id") == "fresh":
        payload["trigger_id"] = served.slack.workspace.issue_trigger(OUTSIDER)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return _send(served, body, FORM)


def _answered_and_unchanged(served: Served, answer: httpx.Response) -> None:
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:500]}"
    no_traceback(answer.content)
    assert changes(served, ALLOWED) == []


def _nothing_changed_after_all(bots: list[Served]) -> None:
    """Once lazy listeners and deliveries are done: the database and Slack, as before."""
    wait_quiet(bots)
    for served in bots:
        assert changes(served, ALLOWED) == [], served.database
        assert served.log_problems() == [], served.database
        assert slack_changes(served, SLACK_ALLOWED) == [], served.database
        for call in served.slack.calls[served.calls_before :]:
            no_traceback(json.dumps(call.args))  # what people were told, too


BOT = st.integers(0, 1)


def test_fuzzed_button_presses_change_nothing(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(which=BOT, data=st.data())
    def press(which: int, data: st.DataObject) -> None:
        served = fuzzed[which]
        payload = data.draw(block_actions(served.card_ts))
        _answered_and_unchanged(served, _interaction(served, payload))

    press()
    _nothing_changed_after_all(fuzzed)


def test_fuzzed_view_submissions_change_nothing(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(which=BOT, payload=view_submissions())
    def submit(which: int, payload: dict[str, Any]) -> None:
        served = fuzzed[which]
        _answered_and_unchanged(served, _interaction(served, payload))

    submit()
    _nothing_changed_after_all(fuzzed)


def test_fuzzed_slash_commands_change_nothing(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(which=BOT, form=slash_commands())
    def command(which: int, form: dict[str, Any]) -> None:
        served = fuzzed[which]
        if form.get("trigger_id") == "fresh":
            form["trigger_id"] = served.slack.workspace.issue_trigger(OUTSIDER)
        body = urlencode(form, encoding="utf-8", errors="surrogatepass").encode()
        _answered_and_unchanged(served, _send(served, body, FORM))

    command()
    _nothing_changed_after_all(fuzzed)


RETRY_NUMS = st.sampled_from([None, "0", "1", "-1", "abc", "9" * 30, "1.5"])


def test_fuzzed_events_change_nothing(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(which=BOT, envelope=events(), retry=RETRY_NUMS)
    def deliver(which: int, envelope: dict[str, Any], retry: str | None) -> None:
        served = fuzzed[which]
        headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        answer = _send(
            served, json.dumps(envelope).encode(), JSON_TYPE, headers=headers if retry else None
        )
        _answered_and_unchanged(served, answer)
        if envelope.get("type") == "url_verification" and answer.status_code == 200 and not retry:
            challenge = envelope.get("challenge")
            if isinstance(challenge, str):
                assert json.dumps(challenge)[1:-1] in answer.text

    deliver()
    _nothing_changed_after_all(fuzzed)


def test_bodies_that_are_not_slack_payloads_are_refused_plainly(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(which=BOT, body=RAW_BODIES, content_type=CONTENT_TYPES)
    def send(which: int, body: bytes, content_type: str) -> None:
        served = fuzzed[which]
        _answered_and_unchanged(served, _send(served, body, content_type))

    send()
    _nothing_changed_after_all(fuzzed)


def test_unsigned_or_tampered_requests_are_refused_with_401(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(
        which=BOT,
        body=RAW_BODIES
        | st.builds(lambda p: urlencode({"payload": json.dumps(p)}).encode(), view_submissions()),
        content_type=CONTENT_TYPES,
        forgery=st.sampled_from(list(Forgery)),
    )
    def send(which: int, body: bytes, content_type: str, forgery: Forgery) -> None:
        served = fuzzed[which]
        answer = _send(served, body, content_type, forgery=forgery)
        if b"ssl_check" in body and answer.status_code == 200:
            # Slack's SSL check comes unsigned: Bolt answers it, empty, and does nothing more.
            assert answer.content == b""
        else:
            assert answer.status_code == 401, f"{answer.status_code}: {answer.text[:500]}"
        no_traceback(answer.content)
        assert changes(served, {}) == []

    send()
    _nothing_changed_after_all(fuzzed)
