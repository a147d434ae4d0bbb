"""The Slack interface end to end: signed requests into `gatekeeper serve`, effects at the stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from bot.domain.candidates import Candidate, parse_bundle
from bot.emulator import Forgery, Message
from bot.emulator.client import FORM
from bot.services.candidates import Champion, propose
from bot.store.migrations import upgrade
from handlers.blocks import Action
from tests.e2e.conftest import CHANNEL, CONFIG, LEAD, OUTSIDER, REQUESTER, SRE, Bot

IMAGE = "127.0.0.1:5000/stg/churn-serving@sha256:" + "ab" * 32


def _propose(bot: Bot, version: str = "7", requester: str = REQUESTER) -> int:
    gatekeeper = bot.gatekeeper
    candidate = Candidate(
        "churn-classifier", version, "staging", "production", {"accuracy": 0.93},
        parse_bundle({"gatekeeper.image.serving": IMAGE}), requester=requester,
    )  # fmt: skip
    return propose(
        gatekeeper.unit_of_work, gatekeeper.policy_for, gatekeeper.notifier, candidate,
        Champion("5", {"accuracy": 0.925}), actor=requester, now=gatekeeper.now(),
    )  # fmt: skip


def _card(bot: Bot, timeout: float = 10) -> Message:
    cards = bot.slack.wait_for(
        lambda ws: [m for m in ws.messages(CHANNEL) if m.content.blocks], timeout=timeout
    )
    return cards[0]


def _texts(message: Message) -> str:
    return json.dumps(message.content.blocks)


def _ephemeral_to(bot: Bot, user: str, contains: str) -> str:
    found = bot.slack.wait_for(
        lambda ws: [e for e in ws.ephemerals(CHANNEL, user) if contains in e.content.text],
        timeout=10,
    )
    return str(found[0].content.text)


def _votes(bot: Bot) -> list[tuple[str, str]]:
    with bot.gatekeeper.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT voter, decision FROM votes ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


def test_a_candidate_is_approved_from_its_card(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    assert "churn-classifier v7" in card.content.text
    buttons = [e["action_id"] for b in card.content.blocks or [] if b["type"] == "actions"
               for e in b["elements"]]  # fmt: skip
    assert buttons == [Action.APPROVE, Action.REJECT, Action.DETAILS]

    person = bot.person()
    first = person.click(LEAD, CHANNEL, card.ts, Action.APPROVE)
    assert first is not None
    assert first.status == 200
    bot.slack.wait_for(lambda ws: "1 of 2 approvals" in _texts(ws.message(CHANNEL, card.ts)))

    second = person.click(SRE, CHANNEL, card.ts, Action.APPROVE)
    assert second is not None
    assert second.status == 200
    updated = bot.slack.wait_for(
        lambda ws: (m := ws.message(CHANNEL, card.ts)) and "approved" in _texts(m) and m
    )
    assert Action.APPROVE not in _texts(updated)  # no more buttons to vote with
    thread = bot.slack.wait_for(lambda ws: ws.thread(CHANNEL, card.ts))
    assert "Approved by" in thread[0].content.text
    assert _votes(bot) == [(LEAD, "approve"), (SRE, "approve")]


@pytest.mark.parametrize(
    ("user", "why"),
    [
        (LEAD, "you requested this promotion"),  # an approver who requested it
        (OUTSIDER, "may vote on this candidate"),
    ],
)
def test_a_denied_press_is_told_why_and_changes_nothing(bot: Bot, user: str, why: str) -> None:
    _propose(bot, requester=LEAD)
    card = _card(bot)
    delivery = bot.person().click(user, CHANNEL, card.ts, Action.APPROVE)
    assert delivery is not None
    assert delivery.status == 200
    assert why in _ephemeral_to(bot, user, why)
    assert _votes(bot) == []
    with bot.gatekeeper.engine.connect() as connection:
        refused = connection.scalar(
            sa.text("SELECT count(*) FROM audit_log WHERE action = 'vote.refused' AND actor = :u"),
            {"u": user},
        )
    assert refused == 1


def test_reject_opens_a_modal_and_the_reason_reaches_card_and_thread(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    person = bot.person()
    person.click(LEAD, CHANNEL, card.ts, Action.REJECT)
    modal = bot.slack.wait_for(lambda ws: ws.modals(LEAD))[0]
    assert modal.definition["callback_id"] == Action.REJECT_MODAL

    submitted = person.submit_view(
        LEAD,
        modal.id,
        {"candidate.reject.reason": {"candidate.reject.reason": "latency regressed"}},
    )
    assert submitted.status == 200
    assert submitted.error is None
    bot.slack.wait_for(lambda ws: "rejected" in _texts(ws.message(CHANNEL, card.ts)))
    thread = bot.slack.wait_for(lambda ws: ws.thread(CHANNEL, card.ts))
    assert "latency regressed" in thread[0].content.text
    assert _votes(bot) == [(LEAD, "reject")]


def test_a_refused_rejection_shows_in_the_modal(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    person = bot.person()
    person.click(OUTSIDER, CHANNEL, card.ts, Action.REJECT)
    modal = bot.slack.wait_for(lambda ws: ws.modals(OUTSIDER))[0]
    submitted = person.submit_view(
        OUTSIDER, modal.id, {"candidate.reject.reason": {"candidate.reject.reason": "nope"}}
    )
    answer = json.loads(submitted.response_body)
    assert answer["response_action"] == "errors"
    assert "may vote" in answer["errors"]["candidate.reject.reason"]
    assert _votes(bot) == []


def test_details_opens_a_modal_with_the_full_digest(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    bot.person().click(LEAD, CHANNEL, card.ts, Action.DETAILS)
    modal = bot.slack.wait_for(lambda ws: ws.modals(LEAD))[0]
    assert "ab" * 32 in json.dumps(modal.definition)


def test_promote_help_list_status_and_bad_text(bot: Bot) -> None:
    _propose(bot)
    _card(bot)
    person = bot.person()

    def say(text: str) -> str:
        delivery = person.slash_command(LEAD, "/promote", text, channel=CHANNEL)
        assert delivery.status == 200
        return delivery.response_body.decode()

    assert "/promote plan" in say("help")
    assert "churn-classifier" in say("list")
    assert "v7" in say("status churn-classifier")
    unknown = say("status fraud-detector")
    assert "does not promote 'fraud-detector'" in unknown
    garbled = say("churn-classifier v7 to")
    assert "Usage" in garbled


def test_a_press_whose_trigger_is_spent_is_told_to_press_again(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    person = bot.person()
    pressed = person.click(LEAD, CHANNEL, card.ts, Action.DETAILS)
    assert pressed is not None
    bot.slack.wait_for(lambda ws: ws.modals(LEAD))

    # The same press again: its trigger_id opened the first modal and opens nothing more.
    again = person.send("block_actions", pressed.body, pressed.headers["Content-Type"])

    assert again.status == 200
    assert "press the button again" in _ephemeral_to(bot, LEAD, "press the button again")
    assert len(bot.slack.workspace.modals(LEAD)) == 1
    assert "unexpected error" not in bot.log.read_text()


def test_text_promote_cannot_read_is_answered_once(bot: Bot) -> None:
    said = bot.person().slash_command(LEAD, "/promote", "churn-classifier v7 to", channel=CHANNEL)

    assert "Usage" in said.text
    time.sleep(1)  # what runs after the ack has run
    told = [e.content.text for e in bot.slack.workspace.ephemerals(CHANNEL, LEAD)]
    assert len(told) == 1, told


def test_home_tab_lists_what_waits_for_me(bot: Bot) -> None:
    _propose(bot)
    _card(bot)
    bot.person().open_home(LEAD)
    home = bot.slack.wait_for(lambda ws: ws.home(LEAD))
    assert "churn-classifier" in json.dumps(home.definition)


@pytest.mark.parametrize("forgery", list(Forgery))
def test_a_request_not_signed_by_slack_is_refused_and_changes_nothing(
    bot: Bot, forgery: Forgery
) -> None:
    _propose(bot)
    card = _card(bot)
    delivery = bot.person().click(LEAD, CHANNEL, card.ts, Action.APPROVE, forgery=forgery)
    assert delivery is not None
    assert delivery.status == 401
    assert _votes(bot) == []


def test_a_body_slack_never_sends_is_refused_plainly_and_changes_nothing(bot: Bot) -> None:
    _propose(bot)
    _card(bot)
    person = bot.person()
    press = {
        "type": "block_actions",
        "user": {"id": LEAD},
        "api_app_id": "A0GATEKPR",
        "actions": [{"action_id": Action.APPROVE, "value": '{"v":1,"id":1,"s":"pending"}'}],
    }
    bodies = [
        b"{",
        b"payload=not-json",
        urlencode({"payload": "[]"}).encode(),
        urlencode({"payload": json.dumps({**press, "team": True})}).encode(),
        urlencode({"payload": json.dumps({**press, "actions": []})}).encode(),
        urlencode({"payload": json.dumps({"type": "view_submission", "view": 7})}).encode(),
        json.dumps({"type": "event_callback", "team_id": "T0GATEKPR", "event": None}).encode(),
    ]
    for body in bodies:
        # Bolt reads the body before it checks the signature, and crashed on these (500).
        unsigned = person.send("raw", body, FORM, forgery=Forgery.MISSING_SIGNATURE)
        signed = person.send("raw", body, FORM)
        assert (unsigned.status, signed.status) == (401, 400), body
        assert "Traceback" not in signed.text

    # A team that is not an object: refused as a stranger's, not a crash.
    stranger = person.send(
        "raw", urlencode({"payload": json.dumps({**press, "team": "0"})}).encode(), FORM
    )
    assert stranger.status == 200
    assert "does not serve your workspace" in stranger.text
    assert _votes(bot) == []
    with bot.gatekeeper.engine.connect() as connection:
        refused = connection.execute(
            sa.text("SELECT subject FROM audit_log WHERE action = 'request.refused'")
        ).scalars()
        assert list(refused) == ["team:0"]


def test_a_hundred_concurrent_presses_by_one_person_count_once(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    person = bot.person()

    def press(_: int) -> Any:
        return person.click(LEAD, CHANNEL, card.ts, Action.APPROVE)

    with ThreadPoolExecutor(max_workers=20) as pool:
        deliveries = list(pool.map(press, range(100)))
    assert all(d is not None and d.status == 200 for d in deliveries)
    assert _votes(bot) == [(LEAD, "approve")]


def test_a_home_tab_opened_by_someone_slack_does_not_know_is_not_an_error(bot: Bot) -> None:
    person = bot.person()
    for user in ("U0NOBODY1", "not-an-id", None):
        opened = person.send_event({"type": "app_home_opened", "user": user, "tab": "home"})
        assert opened.status == 200
    deadline = time.monotonic() + 10
    while "Slack refused U0NOBODY1's Home tab: invalid_arguments" not in bot.log.read_text():
        assert time.monotonic() < deadline, bot.log.read_text()[-3000:]
        time.sleep(0.1)
    time.sleep(0.5)  # the other two, had they gone wrong, would have said so by now
    assert "unexpected error" not in bot.log.read_text()


def test_a_retried_event_has_one_effect(bot: Bot) -> None:
    person = bot.person()
    first = person.open_home(LEAD)
    bot.slack.wait_for(lambda ws: ws.home(LEAD))
    assert person.retry(first).status == 200
    assert person.retry(first).status == 200
    time.sleep(0.5)  # long enough for a lazy listener a retry had started to publish again
    assert len(bot.slack.workspace.calls_to("views.publish")) == 1


def test_a_press_from_another_workspace_is_refused_and_audited(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    foreign = bot.slack.client(f"{bot.url}/slack/events", team_id="T0ELSEWHERE")
    delivery = foreign.click(LEAD, CHANNEL, card.ts, Action.APPROVE)
    assert delivery is not None
    assert delivery.status == 200
    assert _votes(bot) == []
    with bot.gatekeeper.engine.connect() as connection:
        refused = connection.execute(
            sa.text("SELECT subject FROM audit_log WHERE action = 'request.refused'")
        ).scalars()
        assert list(refused) == ["team:T0ELSEWHERE"]
    told = foreign.slash_command(LEAD, "/promote", "list", channel=CHANNEL)
    assert "does not serve your workspace" in told.response_body.decode()


def test_a_press_on_an_expired_candidate_is_refused(bot: Bot) -> None:
    candidate_id = _propose(bot)
    card = _card(bot)
    with bot.gatekeeper.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE candidates SET expires_at = :past WHERE id = :id"),
            {"past": datetime(2020, 1, 1, tzinfo=UTC).replace(tzinfo=None), "id": candidate_id},
        )
    bot.person().click(LEAD, CHANNEL, card.ts, Action.APPROVE)
    assert "expired" in _ephemeral_to(bot, LEAD, "expired")
    assert _votes(bot) == []


def test_a_press_on_a_decided_candidate_is_refused(bot: Bot) -> None:
    _propose(bot)
    card = _card(bot)
    person = bot.person()
    first = person.click(LEAD, CHANNEL, card.ts, Action.APPROVE)
    assert first is not None
    person.click(SRE, CHANNEL, card.ts, Action.REJECT)
    modal = bot.slack.wait_for(lambda ws: ws.modals(SRE))[0]
    person.submit_view(
        SRE, modal.id, {"candidate.reject.reason": {"candidate.reject.reason": "no"}}
    )
    bot.slack.wait_for(lambda ws: "rejected" in _texts(ws.message(CHANNEL, card.ts)))
    # The same press again, as from a client still showing the old card.
    again = person.send("block_actions", first.body, first.headers["Content-Type"])
    assert again.status == 200
    assert "votes are closed" in _ephemeral_to(bot, LEAD, "was rejected")
    assert _votes(bot) == [(LEAD, "approve"), (SRE, "reject")]


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "x"}, "switches Bolt to OAuth"),
        ({"SLACK_BOT_TOKEN": ""}, "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"),
        ({"PORT": "http"}, "PORT: must be a whole number"),
    ],
)
def test_serve_refuses_to_start_on_bad_settings(
    tmp_path: Path, variables: dict[str, str], says: str
) -> None:
    config = tmp_path / "gatekeeper.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'gatekeeper.db'}"
    upgrade(database)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": database,
        "GATEKEEPER_CONFIG": str(config), **variables,
    }  # fmt: skip
    gatekeeper = str(Path(sys.executable).with_name("gatekeeper"))
    result = subprocess.run([gatekeeper, "serve"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr
