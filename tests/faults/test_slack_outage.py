"""Slack rate-limits, then goes away, then comes back: every message arrives once, in order.

`gatekeeper serve` promotes a model dev → staging for real (one MLflow server, a name per
environment), so the candidate's card, its edits and a progress line per step queue up in the
outbox. Slack (the stand-in, on a fixed port) first answers 429 with Retry-After, then is gone
altogether (connection refused), then comes back where it was. Afterwards each message is at
Slack exactly once, in the order it was queued, the lines in the card's thread and the edits
applied in turn; nothing is marked failed for good; Retry-After was waited out, and while Slack
was away the outbox asked again only as often as its backoff allows.

GATEKEEPER_FAULTS=long keeps Slack away for a minute instead of a few seconds (same code path).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.domain.promotion import CandidateState
from bot.emulator import CallRecord, SlackEmulator
from bot.metrics import PERMANENT_FAILURE_MARK
from bot.services.delivery import FIRST_BACKOFF
from bot.store.database import make_engine
from bot.store.models import CandidateRow, OutboxRow
from tests.faults.postgres import wait_until
from tests.faults.serve import Served, gatekeeper, serving
from tests.oci_fixtures import free_port

TEAM, CHANNEL = "T0GATEKPR", "C0ML00001"
BOT_TOKEN = "xoxb-slack-outage-token"
SIGNING_SECRET = "slack-outage-signing-secret-0123456789"
REQUESTER = "U0DS00001"
MODEL = "churn-classifier"
LONG = os.environ.get("GATEKEEPER_FAULTS") == "long"


@dataclass(frozen=True)
class Fault:
    """How Slack misbehaves: ``rate_limited`` 429s with Retry-After, then away ``outage_s``."""

    rate_limited: int
    retry_after_s: int
    outage_s: float


# The first call takes three 429s (slack_sdk's handler waits out two of them inside the call);
# the outbox schedules the message after Retry-After; the next 429 leaves it waiting again.
FAULT = Fault(rate_limited=6, retry_after_s=3, outage_s=60.0) if LONG else Fault(3, 1, 5.0)


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    # A fixed port: Slack comes back where the bot expects it.
    with SlackEmulator(
        team_id=TEAM, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, port=free_port()
    ) as emulator:
        emulator.workspace.add_user(REQUESTER, "dana")
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def tag() -> str:
    """This test's names on the MLflow server the session shares."""
    return f"outage{uuid.uuid4().hex[:6]}"


@pytest.fixture
def dev_version(mlflow_server: str, tag: str, tmp_path: Path) -> str:
    """A version in dev's registry with its metric and a small artifact."""
    client = MlflowClient(mlflow_server, mlflow_server)
    name = f"{tag}-dev.{MODEL}"
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(tag))
    client.log_metric(run.info.run_id, "accuracy", 0.95)
    weights = tmp_path / "model" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(os.urandom(1024))
    client.log_artifacts(run.info.run_id, str(weights.parent), "model")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return str(version.version)


@pytest.fixture
def env(tmp_path: Path, slack: SlackEmulator, mlflow_server: str, tag: str) -> dict[str, str]:
    """`gatekeeper serve`'s environment, as an operator would set it; the database migrated."""
    config = tmp_path / "gatekeeper.yaml"
    config.write_text(f"""
environments:
  dev: {{mlflow: "{mlflow_server}", model_name: "{tag}-dev.{{model}}"}}
  staging: {{mlflow: "{mlflow_server}", model_name: "{tag}-stg.{{model}}"}}
promotion_path: [dev, staging]
models:
  {MODEL}: {{channel: {CHANNEL}}}
policies:
  staging: {{gates: ["accuracy >= 0.90"], approvals: 0}}
slack: {{team_ids: [{TEAM}]}}
""")  # fmt: skip
    variables = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "GATEKEEPER_", "DATABASE_"))},
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gatekeeper.db'}",
        "GATEKEEPER_CONFIG": str(config),
    }  # fmt: skip
    upgraded = gatekeeper("db", "upgrade", env=variables)
    assert upgraded.returncode == 0, upgraded.stderr
    return variables


@pytest.fixture
def database(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["DATABASE_URL"])
    yield engine
    engine.dispose()


def _outbox(database: Engine) -> list[OutboxRow]:
    with database.connect() as connection, Session(connection) as session:
        return list(session.scalars(sa.select(OutboxRow).order_by(OutboxRow.id)))


def _state(database: Engine) -> CandidateState | None:
    with database.connect() as connection:
        state = connection.scalar(sa.select(CandidateRow.state))
    return None if state is None else CandidateState(state)


def _unreachable(served: Served) -> int:
    """Calls the outbox made that found no Slack at all, from serve's /metrics."""
    text = httpx.get(f"{served.url}/metrics", timeout=10, trust_env=False).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "gatekeeper_slack_api_calls_total"
            and sample.labels["outcome"] == "unreachable"
        )
    )


def _accepted(slack: SlackEmulator, method: str) -> list[CallRecord]:
    return [c for c in slack.workspace.calls_to(method) if c.status == 200 and c.ok]


def _content(message: dict[str, Any]) -> tuple[str, str]:
    """Text and blocks, as sent or as shown (Slack adds the block_ids a sender left out)."""
    blocks = [{k: v for k, v in b.items() if k != "block_id"} for b in message.get("blocks") or []]
    return str(message.get("text")), json.dumps(blocks, sort_keys=True)


def test_rate_limits_then_an_outage_delay_every_message_and_drop_none(
    tmp_path: Path, slack: SlackEmulator, env: dict[str, str], database: Engine, dev_version: str
) -> None:
    slack.rate_limit("chat.postMessage", retry_after=FAULT.retry_after_s, times=FAULT.rate_limited)
    with serving(env, tmp_path / "serve.log") as served:
        person = slack.client(f"{served.url}/slack/events")
        typed = person.slash_command(
            REQUESTER, "/promote", f"{MODEL} {dev_version} to staging", channel=CHANNEL
        )
        assert typed.status == 200, typed.text

        # Slack answers 429 a while, then goes away before the card is through.
        slack.wait_for(
            lambda ws: (
                len([c for c in ws.calls_to("chat.postMessage") if c.status == 429])
                == FAULT.rate_limited
            ),
            timeout=30 + FAULT.rate_limited * FAULT.retry_after_s * 2,
        )
        slack.stop()
        away = time.monotonic()
        unreachable_before = _unreachable(served)
        wait_until(lambda: _state(database) is CandidateState.PROMOTED, 60, "the promotion")
        queued = len(_outbox(database))
        time.sleep(max(0.0, away + FAULT.outage_s - time.monotonic()))
        unreachable = _unreachable(served) - unreachable_before
        slack.start()
        back = time.monotonic()

        def all_delivered() -> bool:
            served.check_alive()
            return all(row.delivered_at is not None for row in _outbox(database))

        # Past the outage, the next try comes after at most one more backoff step.
        wait_until(all_delivered, 2 * FAULT.outage_s + 30, "every outbox message delivered")
        recovered = time.monotonic() - back

    rows = _outbox(database)
    assert queued >= 8, "the promotion queued a card, its edits and a line per step"
    # Nothing is marked failed for good, and nothing waits.
    assert [
        r.last_error for r in rows if (r.last_error or "").startswith(PERMANENT_FAILURE_MARK)
    ] == []

    # Every message reached Slack once, in the order it was queued.
    card_rows = [r for r in rows if r.payload.get("_remember_as") == "card"]
    line_rows = [
        r for r in rows if r.payload.get("_thread_of") == "card" and r.method == "chat.postMessage"
    ]
    edit_rows = [r for r in rows if r.payload.get("_update_of") == "card"]
    assert len(card_rows) == 1
    assert len(line_rows) >= 8  # verify … notify: a line per step, and the outcome
    assert len(edit_rows) >= 2  # promoting, promoted
    [card] = slack.workspace.messages(CHANNEL)
    posted = _accepted(slack, "chat.postMessage")
    assert [c.args.get("text") for c in posted] == [
        r.payload["text"] for r in rows if r.method == "chat.postMessage"
    ]
    thread = slack.workspace.thread(CHANNEL, card.ts)
    assert [m.text for m in thread] == [r.payload["text"] for r in line_rows]
    assert {m.thread_ts for m in thread} == {card.ts}
    assert all(c.args.get("thread_ts") == card.ts for c in posted[1:])

    # The edits were applied in turn, to the card; the card shows the last one.
    edits = _accepted(slack, "chat.update")
    assert [_content(c.args) for c in edits] == [_content(r.payload) for r in edit_rows]
    assert {(c.args["channel"], c.args["ts"]) for c in edits} == {(CHANNEL, card.ts)}
    assert _content({"text": card.text, "blocks": card.blocks}) == _content(edit_rows[-1].payload)
    assert "promoted" in card.text.lower()
    told = [
        e for e in slack.workspace.ephemerals(CHANNEL, REQUESTER) if "Candidate #" in e.content.text
    ]
    assert len(told) == 1

    # Retry-After was waited out: no call came sooner after a 429 than Slack asked.
    calls = slack.workspace.calls_to("chat.postMessage")
    for refused, following in itertools.pairwise(calls):
        if refused.status == 429:
            assert following.time - refused.time >= FAULT.retry_after_s - 0.05

    # While Slack was away the outbox kept trying, each key's head as its backoff allows: at
    # most once per doubling of 2 s (a call is one try here, slack_sdk's reconnect inside it).
    keys = len({r.ordering_key for r in rows})
    tries_per_key = math.floor(math.log2(FAULT.outage_s / FIRST_BACKOFF.total_seconds() + 1)) + 2
    assert 1 <= unreachable <= keys * tries_per_key
    attempts = sum(r.attempts for r in rows)
    print(
        f"\n{len(rows)} messages ({len(line_rows)} thread lines, {len(edit_rows)} edits), "
        f"{FAULT.rate_limited} answered 429, {unreachable} calls found Slack away during "
        f"{FAULT.outage_s:g} s (bound {keys * tries_per_key}), {attempts} attempts in all; "
        f"all delivered {recovered:.1f} s after Slack came back"
    )
