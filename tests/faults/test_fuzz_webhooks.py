"""Fuzzed MLflow webhook deliveries into `gatekeeper serve`: never a 5xx or a traceback, and
nothing changes but the audit log and the deliveries kept as accepted.

Deliveries are signed with the webhook secret, as MLflow signs them, so the fuzz reaches the
parsing and the acting on: arbitrary JSON, every entity and action, missing fields and wrong
types, versions like "-1", "1e9" or thirty nines, names of models nobody promotes, bodies that
are not JSON. A real MLflow holds the dev model, whose versions ask for nothing or for an
environment not on the path: an accepted delivery must be read there and ignored (or audited as
invalid), never turned into a candidate. Deliveries with bad headers (no or wrong signature, odd
timestamps, replays) are refused. Run more with GATEKEEPER_FUZZ_EXAMPLES=2000.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from bot.adapters.mlflow_webhooks import sign
from bot.store.database import READ_ONLY
from bot.web_mlflow import MAX_BODY_BYTES
from tests.e2e.conftest import CHANNEL, TEAM, WEBHOOK_SECRET
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
    wait_quiet,
)

MODEL = "churn-classifier"
#: A refusal leaves an audit row; an accepted delivery is kept, and must come to nothing:
#: ignored, or (asking for an environment not on the path) found invalid and audited.
OUTCOMES = frozenset({"ignored", "invalid"})
ALLOWED = {
    "audit_log": lambda row: row["action"] in ("webhook.refused", "webhook.invalid_request"),
    "webhook_deliveries": lambda row: row["outcome"] in {None, *OUTCOMES},
}
REFUSED = frozenset({400, 401, 409, 413})


def gatekeeper_yaml(mlflow: str, tag: str) -> str:
    environments = "\n".join(
        f'  {env}: {{mlflow: "{mlflow}", model_name: "{tag}-{env}.{{model}}"}}'
        for env in ("dev", "staging", "production")
    )
    return f"""
environments:
{environments}
promotion_path: [dev, staging, production]
models:
  {MODEL}: {{channel: {CHANNEL}}}
policies:
  staging: {{approvals: 0}}
  production: {{approvals: 1, approvers: [U0SRE0001]}}
slack: {{team_ids: [{TEAM}]}}
"""


def _register(mlflow: str, name: str) -> None:
    """Versions of the dev model: two that ask for nothing (no gatekeeper.* tag), and one
    that asks for an environment not on the path (audited, never proposed)."""
    client = MlflowClient(tracking_uri=mlflow, registry_uri=mlflow)
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(name))
    client.set_terminated(run.info.run_id)
    for tags in ({"owner": "fuzz"}, {"owner": "fuzz"}, {"gatekeeper.promote": "nowhere"}):
        client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
        )


@pytest.fixture(scope="module")
def tag() -> str:
    return f"fuzz-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def bots(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: str, tag: str
) -> Iterator[list[Served]]:
    """The bot on SQLite and on PostgreSQL, both reading dev's model from one real MLflow."""
    _register(mlflow_server, f"{tag}-dev.{MODEL}")
    root = tmp_path_factory.mktemp("fuzz-webhooks")
    yaml = gatekeeper_yaml(mlflow_server, tag)
    with (
        serving(root / "sqlite", yaml, "sqlite") as on_sqlite,
        serving(root / "postgres", yaml, "postgres") as on_postgres,
    ):
        served = [on_sqlite, on_postgres]
        for bot in served:
            bot.settle()
        yield served


# --- what the fuzz is made of ------------------------------------------------------------------

#: The events Gatekeeper subscribes to, as MLflow names them.
SUBSCRIBED = st.sampled_from(
    [("model_version", "created"), ("model_version_tag", "set"), ("model_version_alias", "created")]
)
KINDS = st.one_of(
    SUBSCRIBED,
    st.sampled_from([("model_version_tag", "deleted"), ("prompt", "created"), ("x", "y")]),
    st.tuples(TEXT, TEXT),
    st.tuples(JSON_VALUES, JSON_VALUES),
)
#: Versions that pass for a number: MLflow is asked about each.
NUMBERS = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "0", "00", "9" * 30, str(2**31), str(2**63), str(2**64)]),
    st.integers(0, 2**70).map(str),
)
VERSIONS = st.one_of(
    NUMBERS,
    st.sampled_from(["-1", "1e9", "abc", "1.0", " 1", "٣", "v1"]),
    TEXT,
    JSON_VALUES,
)


@st.composite
def events(draw: st.DrawFn, tag: str) -> dict[str, Any]:
    """An MLflow registry event, about dev's model more often than not."""
    plausible = draw(PLAUSIBLE)
    entity, action = draw(SUBSCRIBED if plausible else KINDS)
    names = [f"{tag}-{env}.{MODEL}" for env in ("dev", "staging", "production")]
    others = st.sampled_from([*names, MODEL, "someone-elses-model"]) | TEXT
    data: dict[str, Any] = {
        # The model in dev's MLflow, which intake reads back, or any other name.
        "name": draw(st.just(names[0]) | others if plausible else others | JSON_VALUES),
        "version": draw(NUMBERS if plausible else VERSIONS),
        "key": draw(st.sampled_from(["gatekeeper.promote", "gatekeeper.image.x", "k"]) | TEXT),
        "value": draw(st.sampled_from(["staging", "production", "dev", ""]) | TEXT),
        "alias": draw(st.sampled_from(["champion", "promote", "challenger"]) | TEXT),
        "tags": draw(st.dictionaries(TEXT, TEXT, max_size=3)),
    }
    event = {
        "entity": entity,
        "action": action,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": data,
    }
    if plausible:
        return event
    event["data"] = draw(damaged(data) | JSON_VALUES)
    return draw(damaged(event))


def _json(value: Any) -> bytes:
    # MLflow never sends NaN; Python's json reads it all the same.
    return json.dumps(value, allow_nan=True).encode()


BODIES = st.one_of(
    st.binary(max_size=300),
    TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(_json),
    st.sampled_from([b"", b"{", b"[]", b"null", b"1", b'"x"', b"{}", b'{"entity": NaN}']),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
)
ENVIRONMENTS = st.one_of(
    st.just("dev"),
    st.just("dev"),
    st.sampled_from(["dev", "staging", "production", "", "qa", "DEV", None, "x" * 2000]),
    st.text(max_size=40),
)
#: Header values as they travel: latin-1, without line breaks or spaces around them.
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
).map(str.strip)


# --- sending and checking ----------------------------------------------------------------------


def _post(
    served: Served,
    body: bytes,
    *,
    environment: str | None = "dev",
    delivery_id: str | None = None,
    timestamp: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """A delivery signed as MLflow signs it, unless ``signature`` says otherwise."""
    delivery_id = delivery_id if delivery_id is not None else str(uuid.uuid4())
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    if signature is None:
        signature = sign(WEBHOOK_SECRET, delivery_id, timestamp, body)
    query = "" if environment is None else f"?environment={quote(environment, errors='replace')}"
    sent = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id.encode("latin-1", "replace"),
        "X-MLflow-Timestamp": timestamp.encode("latin-1", "replace"),
        "X-MLflow-Signature": signature.encode("latin-1", "replace"),
    }
    return served.http.post(f"/webhooks/mlflow{query}", content=body, headers=sent)


def _answered_and_unchanged(served: Served, answer: httpx.Response) -> None:
    assert answer.status_code in REFUSED | {202}, f"{answer.status_code}: {answer.text[:500]}"
    no_traceback(answer.content)
    said = answer.json()
    if answer.status_code == 202:
        assert said["status"] == "accepted"
    else:
        assert isinstance(said["error"], str)
        assert said["error"]  # the reason, in words
    assert changes(served, ALLOWED) == []


def _kept_since_mark(served: Served) -> list[dict[str, Any]]:
    table = served.tables["webhook_deliveries"]
    before = served.baseline["webhook_deliveries"]
    with served.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        rows = connection.execute(sa.select(table)).mappings()
        return [dict(row) for row in rows if (row["delivery_id"],) not in before]


def _nothing_changed_after_all(bots: list[Served]) -> None:
    """Once every accepted delivery was acted on: to no effect, and nothing else changed."""
    wait_quiet(bots, seconds=0.5)
    for served in bots:
        deadline = time.monotonic() + 30
        while any(row["processed_at"] is None for row in _kept_since_mark(served)):
            assert time.monotonic() < deadline, [
                row for row in _kept_since_mark(served) if row["processed_at"] is None
            ]
            time.sleep(0.1)
        assert [
            (row["payload"], row["detail"])
            for row in _kept_since_mark(served)
            if row["outcome"] not in OUTCOMES
        ] == [], served.database
        assert changes(served, ALLOWED) == [], served.database
        assert served.log_problems() == [], served.database
        assert served.slack.calls[served.calls_before :] == [], served.database


BOT = st.integers(0, 1)


def test_fuzzed_events_are_ignored_or_refused(fuzzed: list[Served], tag: str) -> None:
    @FUZZ
    @given(which=BOT, event=events(tag), environment=ENVIRONMENTS)
    def deliver(which: int, event: dict[str, Any], environment: str | None) -> None:
        served = fuzzed[which]
        answer = _post(served, _json(event), environment=environment)
        _answered_and_unchanged(served, answer)

    deliver()
    _nothing_changed_after_all(fuzzed)


def test_bodies_that_are_not_events_are_refused(fuzzed: list[Served]) -> None:
    @FUZZ
    @given(which=BOT, body=BODIES, environment=ENVIRONMENTS)
    def deliver(which: int, body: bytes, environment: str | None) -> None:
        served = fuzzed[which]
        answer = _post(served, body, environment=environment)
        assert answer.status_code in REFUSED, f"{answer.status_code}: {answer.text[:500]}"
        _answered_and_unchanged(served, answer)

    deliver()
    _nothing_changed_after_all(fuzzed)


def test_signed_deliveries_with_odd_headers_are_refused_or_ignored(
    fuzzed: list[Served], tag: str
) -> None:
    """The secret is right, everything around it is not: delivery ids and timestamps of any
    shape, each still signed, so the checks after the signature's see them."""
    delivery_ids = st.one_of(st.uuids().map(str), HEADER_TEXT, st.just("d" * 65))
    timestamps = st.one_of(
        st.integers(-(2**40), 2**40).map(str),
        st.sampled_from(["0", "999999999999", "9" * 13, "1e9", "-1", "+1", "١٢٣"]),
        HEADER_TEXT,
    )

    @FUZZ
    @given(which=BOT, event=events(tag), delivery_id=delivery_ids, timestamp=timestamps)
    def deliver(which: int, event: dict[str, Any], delivery_id: str, timestamp: str) -> None:
        served = fuzzed[which]
        wire_id = delivery_id.encode("latin-1", "replace").decode("latin-1")
        wire_stamp = timestamp.encode("latin-1", "replace").decode("latin-1")
        answer = _post(served, _json(event), delivery_id=wire_id, timestamp=wire_stamp)
        _answered_and_unchanged(served, answer)

    deliver()
    _nothing_changed_after_all(fuzzed)


def test_unsigned_forged_and_replayed_deliveries_are_refused(
    fuzzed: list[Served], tag: str
) -> None:
    signatures = st.one_of(
        st.just(""),
        HEADER_TEXT,
        st.builds(lambda s: sign(s, "x", "1", b"{}"), st.text(min_size=1, max_size=20)),
        st.sampled_from(["v1,", "v1,!!!", "v2,AAAA", "v1,AAAA v1,BBBB", "v1," + "A" * 5000]),
    )

    @FUZZ
    @given(which=BOT, event=events(tag), signature=signatures, replay=st.booleans())
    def deliver(which: int, event: dict[str, Any], signature: str, replay: bool) -> None:
        served = fuzzed[which]
        body = _json(event)
        if replay:
            delivery_id = str(uuid.uuid4())
            first = _post(served, body, delivery_id=delivery_id)
            answer = _post(served, body, delivery_id=delivery_id)
            assert first.status_code != 202 or answer.status_code == 409
        else:
            answer = _post(served, body, signature=signature)
            # Past a megabyte the body is refused unread, its signature unchecked.
            refused = 413 if len(body) > MAX_BODY_BYTES else 401
            assert answer.status_code == refused, f"{answer.status_code}: {answer.text[:500]}"
        _answered_and_unchanged(served, answer)

    deliver()
    _nothing_changed_after_all(fuzzed)
