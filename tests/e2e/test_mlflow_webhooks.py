"""MLflow's webhooks into `gatekeeper serve`: a real MLflow server calls the bot on loopback.

`gatekeeper webhooks install` subscribes the bot on dev's MLflow; registering a version there
makes a card appear in the Slack stand-in. Deliveries that are not MLflow's, or come twice,
change nothing but the audit log. Polling finds what no webhook announced, and never twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature

from bot.store.models import AuditRow, CandidateRow, IntakeOfferRow, WebhookDeliveryRow
from tests.e2e.conftest import CHANNEL, SRE, TEAM, WEBHOOK_SECRET, Bot, serving
from tests.mlflow_fixtures import Server

DIGEST = "sha256:" + "cd" * 32
BUNDLE = {
    "gatekeeper.image.serving": f"127.0.0.1:5000/dev/churn-serving@{DIGEST}",
    "gatekeeper.pipeline": "pipeline/churn.yaml",
}


@pytest.fixture
def model() -> str:
    """A model name of this test's own: the MLflow servers live for the whole session."""
    return f"hooked-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def gatekeeper_yaml(mlflow_environments: dict[str, Server], model: str) -> str:
    dev, staging = mlflow_environments["dev"].url, mlflow_environments["staging"].url
    return f"""
environments:
  dev: {{mlflow: "{dev}"}}
  staging: {{mlflow: "{staging}"}}
promotion_path: [dev, staging]
models:
  {model}: {{channel: {CHANNEL}}}
policies:
  staging: {{gates: ["accuracy >= 0.90"], approvals: 1, approvers: [{SRE}]}}
slack: {{team_ids: [{TEAM}]}}
"""


@pytest.fixture
def dev(mlflow_environments: dict[str, Server]) -> Iterator[MlflowClient]:
    """Dev's MLflow; whatever webhook a test installed there is removed afterwards."""
    client = mlflow_environments["dev"].client
    yield client
    for hook in client.list_webhooks(max_results=100):
        if hook.name == "gatekeeper-dev":
            client.delete_webhook(hook.webhook_id)


def gatekeeper(bot: Bot, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI run as an operator runs it, with the bot's config."""
    command = [str(Path(sys.executable).with_name("gatekeeper")), *args]
    variables = {
        **os.environ,
        "GATEKEEPER_CONFIG": str(bot.log.with_name("gatekeeper.yaml")),
        "MLFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **env,
    }
    return subprocess.run(command, env=variables, capture_output=True, text=True, timeout=60)


def register(client: MlflowClient, model: str, tags: dict[str, str] = BUNDLE) -> str:
    if not client.search_registered_models(filter_string=f"name = '{model}'"):
        client.create_registered_model(model)
    experiment = client.get_experiment_by_name("webhooks")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("webhooks")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", 0.95)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
    )
    return str(version.version)


def cards(bot: Bot, model: str) -> list[Any]:
    return [
        m for m in bot.slack.workspace.messages(CHANNEL)
        if m.content.blocks and model in json.dumps(m.content.blocks)
    ]  # fmt: skip


def wait_for_card(bot: Bot, model: str, version: str) -> Any:
    try:
        return bot.slack.wait_for(
            lambda _: [
                c for c in cards(bot, model) if f"v{version}" in json.dumps(c.content.blocks)
            ],
            timeout=20,
        )[0]
    except TimeoutError:
        raise AssertionError(
            f"no card for {model} v{version}; the bot's log:\n{bot.log.read_text()[-3000:]}"
        ) from None


def candidates(bot: Bot) -> list[CandidateRow]:
    with bot.gatekeeper.unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(CandidateRow)))


def refusals(bot: Bot) -> list[AuditRow]:
    with bot.gatekeeper.unit_of_work() as uow:
        return list(
            uow.session.scalars(sa.select(AuditRow).where(AuditRow.action == "webhook.refused"))
        )


def post(
    bot: Bot,
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    delivery_id: str | None = None,
    at: datetime | None = None,
    environment: str = "dev",
) -> httpx.Response:
    """A delivery signed the way MLflow signs it (its own function does the signing)."""
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(int((at or datetime.now(UTC)).timestamp()))
    signature = _generate_hmac_signature(secret, delivery_id, stamp, body.decode())
    assert bot.url is not None
    return httpx.post(
        f"{bot.url}/webhooks/mlflow?environment={environment}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": signature,
        },
        timeout=10,
    )


def created(model: str, version: str) -> bytes:
    return json.dumps(
        {
            "entity": "model_version",
            "action": "created",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"name": model, "version": version, "tags": BUNDLE},
        }
    ).encode()


def test_a_version_registered_in_mlflow_posts_a_card(
    bot: Bot, dev: MlflowClient, model: str
) -> None:
    assert bot.url is not None
    installed = gatekeeper(bot, "webhooks", "install", "--url", bot.url)
    assert installed.returncode == 0, installed.stderr
    url = f"{bot.url}/webhooks/mlflow?environment=dev"
    assert installed.stdout.strip() == f"dev: created webhook gatekeeper-dev → {url}"
    again = gatekeeper(bot, "webhooks", "install", "--environment", "dev", "--url", bot.url)
    assert again.stdout.strip() == f"dev: updated webhook gatekeeper-dev → {url}"
    listed = gatekeeper(bot, "webhooks", "list")
    assert f"dev: gatekeeper-dev ACTIVE {url}" in listed.stdout

    version = register(dev, model)

    card = wait_for_card(bot, model, version)
    assert "accuracy 0.95" in json.dumps(card.content.blocks)
    [candidate] = candidates(bot)
    assert (candidate.version, candidate.target_env) == (version, "staging")
    with bot.gatekeeper.unit_of_work() as uow:
        kept = uow.session.scalars(sa.select(WebhookDeliveryRow)).all()
    assert {row.event for row in kept} == {"model_version.created"}
    assert [row.outcome for row in kept if row.payload["data"]["name"] == model] == ["proposed"]


def test_deliveries_mlflow_did_not_sign_or_sent_before_change_nothing(
    bot: Bot, dev: MlflowClient, model: str
) -> None:
    version = register(dev, model)  # no webhook installed: only the test's deliveries arrive
    body = created(model, version)

    forged = post(bot, body, secret="not-the-secret")
    stale = post(bot, body, at=datetime.now(UTC) - timedelta(minutes=6))
    malformed = post(bot, json.dumps({"entity": "model_version", "action": "created"}).encode())
    not_json = post(bot, b"<xml/>")
    elsewhere = post(bot, body, environment="qa")
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert (malformed.status_code, not_json.status_code, elsewhere.status_code) == (400, 400, 400)
    assert "does not match" in forged.json()["error"]
    assert "more than 5 minutes" in stale.json()["error"]
    assert "'data' is missing" in malformed.json()["error"]
    assert "not JSON" in not_json.json()["error"]
    assert "'qa' is not on the promotion path" in elsewhere.json()["error"]
    time.sleep(1)  # what a wrongly accepted delivery would have done by now
    assert candidates(bot) == []
    assert len(refusals(bot)) == 5

    delivery_id = str(uuid.uuid4())
    accepted = post(bot, body, delivery_id=delivery_id)
    replayed = post(bot, body, delivery_id=delivery_id)

    assert accepted.status_code == 202
    assert replayed.status_code == 409
    assert "already received" in replayed.json()["error"]
    wait_for_card(bot, model, version)
    assert len(candidates(bot)) == 1
    replay = refusals(bot)[-1]
    assert replay.details["delivery_id"] == delivery_id
    assert WEBHOOK_SECRET not in json.dumps([r.details for r in refusals(bot)])


def test_polling_finds_what_no_webhook_announced(bot: Bot, dev: MlflowClient, model: str) -> None:
    version = register(dev, model)
    time.sleep(1)
    assert cards(bot, model) == []  # no webhook: nothing happened

    assert bot.gatekeeper.intake.poll(bot.gatekeeper.now()) == 1

    wait_for_card(bot, model, version)
    assert bot.gatekeeper.intake.poll(bot.gatekeeper.now()) == 0


def test_webhooks_and_polling_together_give_one_card(
    bot: Bot, dev: MlflowClient, model: str
) -> None:
    assert bot.url is not None
    assert gatekeeper(bot, "webhooks", "install", "--url", bot.url).returncode == 0
    version = register(dev, model)
    wait_for_card(bot, model, version)

    assert bot.gatekeeper.intake.poll(bot.gatekeeper.now()) == 0

    time.sleep(1)
    assert len(cards(bot, model)) == 1
    assert len(candidates(bot)) == 1


def test_install_without_a_secret_or_a_server_says_so_in_one_line(
    bot: Bot, closed_port: int, tmp_path: Path
) -> None:
    assert bot.url is not None
    no_secret = gatekeeper(bot, "webhooks", "install", "--url", bot.url, MLFLOW_WEBHOOK_SECRET="")
    assert no_secret.returncode == 2
    assert no_secret.stderr.strip() == (
        "error: MLFLOW_WEBHOOK_SECRET is not set; MLflow signs with it"
    )
    down = tmp_path / "unreachable.yaml"
    down.write_text(
        f"""
environments:
  dev: {{mlflow: "http://127.0.0.1:{closed_port}"}}
  staging: {{mlflow: "http://127.0.0.1:{closed_port}"}}
promotion_path: [dev, staging]
models:
  m: {{channel: {CHANNEL}}}
policies:
  staging: {{approvals: 0}}
"""
    )
    unreachable = gatekeeper(
        bot, "webhooks", "install", "--url", bot.url, GATEKEEPER_CONFIG=str(down)
    )
    assert unreachable.returncode == 1
    [line] = unreachable.stderr.strip().splitlines()
    assert line.startswith("error: dev: dev's MLflow at http://127.0.0.1:")
    assert "cannot be reached" in line


def test_serve_polls_on_its_schedule_when_intake_poll_every_is_set(
    tmp_path: Path, gatekeeper_yaml: str, dev: MlflowClient, model: str
) -> None:
    polled = gatekeeper_yaml + "intake: {poll_every: 1s}\n"
    with serving(tmp_path, polled) as bot:
        version = register(dev, model)  # no webhook installed: only the schedule can find it

        wait_for_card(bot, model, version)
        time.sleep(2.5)  # two more polls

        assert len(cards(bot, model)) == 1
        [candidate] = candidates(bot)
        assert candidate.version == version
        with bot.gatekeeper.unit_of_work() as uow:
            [offer] = uow.session.scalars(sa.select(IntakeOfferRow)).all()
        assert offer.via == "poll"
