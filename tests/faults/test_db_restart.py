"""PostgreSQL restarted under load: requests fail clearly and quickly, then the bot serves again.

`gatekeeper serve` runs against a PostgreSQL server of the test's own (the shared one on 5432
stays up) while a few people press Approve on cards and type `/promote list`, and MLflow
delivers webhooks, all at once. The server is restarted (`pg_ctl restart -m fast`), then stopped
for a few seconds and started again. Throughout, every request is answered within Slack's 3 s:
a Slack request with 200, the person told through its response_url that the database did not
answer and nothing was done (a 5xx would only make Slack show its own error); a webhook with 503,
so MLflow sends it again. /readyz says the database is down while it is. Afterwards the same
process serves again, its schedule and outbox included, and every press that was not turned
away is exactly one vote.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from mlflow.webhooks.delivery import _generate_hmac_signature

from bot.bootstrap import Gatekeeper, build
from bot.config import load_config, load_settings
from bot.domain.candidates import Candidate, parse_bundle
from bot.emulator import Delivery, InteractionClient, SlackEmulator
from bot.services.candidates import propose
from bot.store.models import AuditRow, VoteRow, WebhookDeliveryRow
from handlers.blocks import Action
from handlers.errors import DATABASE_AWAY
from tests.faults.postgres import PrivatePostgres, private_postgres, wait_until
from tests.faults.serve import Served, gatekeeper, serving

TEAM, CHANNEL = "T0GATEKPR", "C0ML00001"
BOT_TOKEN = "xoxb-db-restart-token"
SIGNING_SECRET = "db-restart-signing-secret-0123456789"
WEBHOOK_SECRET = "db-restart-mlflow-webhook-secret-0123"
REQUESTER, LEADS = "U0DS00001", "S0MLLEADS"
VOTERS = [f"U0LEAD00{n}" for n in range(1, 9)]
#: Their presses wait until the database is back: proof that the same process serves again.
LATE_VOTERS = VOTERS[-2:]
CANDIDATES = 12
CLIENTS = 4
#: Each client's pause between requests: enough presses are left for the outage to meet.
PACE_S = 0.25
#: Slack shows the person an error when the app has not answered within 3 s.
SLACK_ACK_S = 3.0
STOPPED_S = 4.0
IMAGE = "127.0.0.1:5000/stg/churn-serving@sha256:" + "ab" * 32

# More approvals than approvers: every candidate stays pending, so each press is one vote.
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
    gates: ["accuracy >= 0.90"]
    approvals: {len(VOTERS) + 1}
    approvers: [{LEADS}]
slack: {{team_ids: [{TEAM}]}}
"""

Pair = tuple[int, str]  # (candidate, voter)


@dataclass(frozen=True)
class Answer:
    """One request under load: what it was, when it started, how long it took, what came back."""

    kind: str  # "approve", "list" or "webhook"
    started: float
    elapsed: float
    status: int | None
    body: str
    #: What the person was told through the request's response_url (Slack requests).
    told: str = ""
    pair: Pair | None = None
    delivery_id: str | None = None

    @property
    def turned_away(self) -> bool:
        return DATABASE_AWAY in self.told or self.status == 503


@dataclass
class Load:
    """People pressing and typing, and MLflow delivering, from a few threads at once."""

    slack: SlackEmulator
    served: Served
    cards: dict[int, str]
    #: Pairs not yet acknowledged; a person turned away presses again later.
    pending: list[Pair]
    answers: list[Answer] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client: int) -> None:
        person = self.slack.client(f"{self.served.url}/slack/events")
        http = httpx.Client(timeout=30, trust_env=False)
        for n in range(1_000_000):
            if self.stopped.is_set():
                break
            if n % 4 == 3:
                answer = self.webhook(http) if client % 2 else self.command(person)
            else:
                with self.lock:
                    pair = self.pending.pop(0) if self.pending else None
                answer = self.command(person) if pair is None else self.press(person, pair)
                if pair is not None and (answer.status != 200 or answer.turned_away):
                    with self.lock:
                        self.pending.append(pair)
            with self.lock:
                self.answers.append(answer)
            time.sleep(PACE_S)
        http.close()

    def add(self, pairs: list[Pair]) -> None:
        with self.lock:
            self.pending.extend(pairs)

    def waiting(self) -> int:
        with self.lock:
            return len(self.pending)

    def press(self, person: InteractionClient, pair: Pair) -> Answer:
        candidate, voter = pair
        started = time.monotonic()
        delivery = person.click(voter, CHANNEL, self.cards[candidate], Action.APPROVE)
        assert delivery is not None
        return self._answer("approve", started, delivery, pair)

    def command(self, person: InteractionClient) -> Answer:
        started = time.monotonic()
        delivery = person.slash_command(VOTERS[0], "/promote", "list", channel=CHANNEL)
        return self._answer("list", started, delivery)

    def webhook(self, http: httpx.Client) -> Answer:
        delivery_id = str(uuid.uuid4())
        body = json.dumps({
            "entity": "model_version", "action": "created",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"name": "churn-classifier", "version": "1", "tags": {}},
        })  # fmt: skip
        stamp = str(int(time.time()))
        started = time.monotonic()
        try:
            response = http.post(
                f"{self.served.url}/webhooks/mlflow?environment=dev",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-MLflow-Delivery-Id": delivery_id,
                    "X-MLflow-Timestamp": stamp,
                    "X-MLflow-Signature": _generate_hmac_signature(
                        WEBHOOK_SECRET, delivery_id, stamp, body
                    ),
                },
            )
            status, text = response.status_code, response.text
        except httpx.HTTPError as error:
            status, text = None, type(error).__name__
        elapsed = time.monotonic() - started
        return Answer("webhook", started, elapsed, status, text, delivery_id=delivery_id)

    def _answer(self, kind: str, started: float, delivery: Delivery, pair: Pair | None = None
                ) -> Answer:  # fmt: skip
        elapsed = time.monotonic() - started
        url_id = (delivery.response_url or "").rstrip("/").rsplit("/", 1)[-1]
        told = " ".join(
            str((post.body or {}).get("text", ""))
            for post in self.slack.workspace.response_posts
            if url_id and post.url_id == url_id
        )
        body = delivery.text if delivery.error is None else f"{delivery.error}: {delivery.text}"
        return Answer(kind, started, elapsed, delivery.status, body, told, pair)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(
        team_id=TEAM, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET
    ) as emulator:
        workspace = emulator.workspace
        workspace.add_user(REQUESTER, "dana")
        for n, voter in enumerate(VOTERS):
            workspace.add_user(voter, f"lead{n}")
        workspace.add_usergroup(LEADS, "ml-leads", VOTERS)
        workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def env(tmp_path: Path, postgres: PrivatePostgres, slack: SlackEmulator) -> dict[str, str]:
    """`gatekeeper serve`'s environment, as an operator would set it."""
    config = tmp_path / "gatekeeper.yaml"
    config.write_text(CONFIG)
    return {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "GATEKEEPER_", "DATABASE_", "MLFLOW_"))},
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": postgres.url,
        "GATEKEEPER_CONFIG": str(config),
        "MLFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }  # fmt: skip


@pytest.fixture
def ours(env: dict[str, str]) -> Iterator[Gatekeeper]:
    """The test's own view of the same database and config, to propose and read back."""
    upgraded = gatekeeper("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    settings = load_settings(
        slack_bot_token=BOT_TOKEN, slack_api_url=env["SLACK_API_URL"],
        database_url=env["DATABASE_URL"],
    )  # fmt: skip
    built = build(settings, load_config(Path(env["GATEKEEPER_CONFIG"])))
    yield built
    built.close()


def _propose(ours: Gatekeeper, version: int) -> int:
    candidate = Candidate(
        "churn-classifier", str(version), "staging", "production", {"accuracy": 0.93},
        parse_bundle({"gatekeeper.image.serving": IMAGE}), requester=REQUESTER,
    )  # fmt: skip
    return propose(ours.unit_of_work, ours.policy_for, ours.notifier, candidate, None,
                   actor=REQUESTER, now=ours.now())  # fmt: skip


def _card_ts(ours: Gatekeeper, candidate: int) -> str:
    with ours.unit_of_work().reading() as uow:
        posted = uow.slack_messages.find(candidate, "card")
        assert posted is not None
        return posted.ts


def _readyz(served: Served) -> tuple[float, int, dict[str, dict[str, object]]]:
    started = time.monotonic()
    answer = httpx.get(f"{served.url}/readyz", timeout=10, trust_env=False)
    return time.monotonic() - started, answer.status_code, answer.json()["checks"]


def test_a_restarted_database_turns_requests_away_clearly_then_serves_again(
    tmp_path: Path, env: dict[str, str], postgres: PrivatePostgres, slack: SlackEmulator,
    ours: Gatekeeper,
) -> None:  # fmt: skip
    with serving(env, tmp_path / "serve.log") as served:
        assert _readyz(served)[1] == 200
        ids = [_propose(ours, version) for version in range(1, CANDIDATES + 1)]
        slack.wait_for(lambda ws: len(ws.messages(CHANNEL)) == CANDIDATES, timeout=15)
        early = [(c, v) for v in VOTERS if v not in LATE_VOTERS for c in ids]
        load = Load(slack, served, {c: _card_ts(ours, c) for c in ids}, pending=list(early))
        clients = [threading.Thread(target=load.run, args=(n,)) for n in range(CLIENTS)]
        for client in clients:
            client.start()
        probes: list[tuple[float, int, dict[str, dict[str, object]]]] = []
        try:
            time.sleep(1.5)
            postgres.restart()
            time.sleep(1.5)
            assert load.waiting() > 0, "the presses ran out before the database stopped"
            stopped = time.monotonic()
            postgres.stop()
            while time.monotonic() < stopped + STOPPED_S:
                probes.append(_readyz(served))
                time.sleep(0.3)
            postgres.start()
            back = time.monotonic()
            wait_until(lambda: _readyz(served)[1] == 200, 15, "/readyz 200 once PostgreSQL is back")
            ready = time.monotonic()
            load.add([(c, v) for v in LATE_VOTERS for c in ids])
            wait_until(
                lambda: load.waiting() == 0, 30, "every press acknowledged after the restart"
            )
        finally:
            load.stopped.set()
            for client in clients:
                client.join(30)
        served.check_alive()  # the same process: it was never restarted

        answers = load.answers
        # Every request was answered, within Slack's patience, never with a 5xx or a traceback.
        assert [a for a in answers if a.status is None] == []
        slow = [a for a in answers if a.elapsed >= SLACK_ACK_S]
        assert slow == [], f"{len(slow)} requests took {SLACK_ACK_S} s or more"
        from_slack = [a for a in answers if a.kind != "webhook"]
        assert {a.status for a in from_slack} == {200}
        assert not [a for a in answers if "Traceback" in a.body + a.told]
        webhooks = [a for a in answers if a.kind == "webhook"]
        assert {a.status for a in webhooks} <= {202, 503}

        # Whatever began and ended while the database was stopped was turned away, and said so.
        during = [
            a for a in answers
            if a.started >= stopped + 0.5 and a.started + a.elapsed < stopped + STOPPED_S
        ]  # fmt: skip
        for kind in ("approve", "list", "webhook"):
            assert any(a.turned_away for a in during if a.kind == kind), f"no {kind} turned away"
        assert all(a.turned_away for a in during), [a for a in during if not a.turned_away][:3]
        assert all(
            json.loads(a.body) == {"error": "the database is unavailable; try again"}
            for a in webhooks if a.status == 503
        )  # fmt: skip
        # /readyz said so, quickly, naming the database and only it.
        assert probes
        assert all(status == 503 for _, status, _ in probes)
        assert all(elapsed < SLACK_ACK_S for elapsed, _, _ in probes)
        assert all(checks["database"]["ok"] is False for _, _, checks in probes)
        assert all("did not answer" in str(checks["database"]["reason"]) for _, _, checks in probes)
        assert all(checks["slack"] == {"ok": True} for _, _, checks in probes)

        # Nothing acknowledged was lost or doubled; nothing turned away was done anyway.
        acknowledged = [a.pair for a in answers if a.kind == "approve" and not a.turned_away]
        assert sorted(acknowledged) == sorted((c, v) for v in VOTERS for c in ids)
        with ours.unit_of_work().reading() as uow:
            votes = uow.session.execute(sa.select(VoteRow.candidate_id, VoteRow.voter)).all()
            refused = uow.session.scalar(
                sa.select(sa.func.count()).where(AuditRow.action == "vote.refused")
            )
            stored = set(uow.session.scalars(sa.select(WebhookDeliveryRow.delivery_id)))
        assert sorted(votes) == sorted(acknowledged)
        assert refused == 0  # no press turned away had voted: pressing again never said "already"
        assert {a.delivery_id for a in webhooks if a.status == 202} <= stored
        assert not {a.delivery_id for a in webhooks if a.status == 503} & stored

        # The outbox and the schedule came back too: each card shows every vote, and the
        # scheduler holds its lock again.
        everyone = f"{len(VOTERS)} of {len(VOTERS) + 1} approvals"
        for candidate in ids:
            ts = load.cards[candidate]
            slack.wait_for(
                lambda ws, ts=ts: everyone in json.dumps(ws.message(CHANNEL, ts).blocks),
                timeout=15,
            )

        def scheduler_locked() -> bool:
            with ours.engine.connect() as connection:
                held = connection.scalar(
                    sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
                )
            return held == 1

        wait_until(scheduler_locked, 10, "the scheduler's advisory lock taken again")
        turned_away = sum(a.turned_away for a in answers)
        print(
            f"\n{len(answers)} requests ({turned_away} turned away), slowest "
            f"{max(a.elapsed for a in answers):.3f} s; /readyz 200 again "
            f"{ready - back:.2f} s after PostgreSQL was started"
        )
