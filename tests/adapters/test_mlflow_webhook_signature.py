"""Deliveries signed exactly as MLflow signs them pass; anything else is refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from bot.adapters.mlflow_webhooks import MAX_SKEW, BadSignature, sign, verify

SECRET = "whsec-0123456789"
DELIVERY = "0b5ad5ee-9c3f-4165-9b1e-b026d6b56527"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
BODY = json.dumps(
    {
        "entity": "model_version",
        "action": "created",
        "timestamp": NOW.isoformat(),
        "data": {"name": "churn", "version": "3", "tags": {"gatekeeper.pipeline": "p.yaml"}},
    }
)


def _check(
    *,
    secret: str | None = SECRET,
    delivery_id: str | None = DELIVERY,
    timestamp: str | None = STAMP,
    signature: str | None = None,
    body: str = BODY,
    now: datetime = NOW,
) -> None:
    if signature is None:
        signature = _generate_hmac_signature(SECRET, DELIVERY, STAMP, BODY)
    verify(
        secret,
        delivery_id=delivery_id,
        timestamp=timestamp,
        signature=signature,
        body=body.encode("utf-8"),
        now=now,
    )


def _refused(**kwargs: object) -> BadSignature:
    with pytest.raises(BadSignature) as refused:
        _check(**kwargs)  # type: ignore[arg-type]
    return refused.value


def test_mlflows_own_signature_passes() -> None:
    _check()  # raises if refused
    assert sign(SECRET, DELIVERY, STAMP, BODY.encode()) == _generate_hmac_signature(
        SECRET, DELIVERY, STAMP, BODY
    )


def test_a_body_with_non_ascii_text_is_signed_over_its_utf8_bytes() -> None:
    body = json.dumps({"entity": "model_version", "data": {"name": "modèle"}}, ensure_ascii=False)
    signature = _generate_hmac_signature(SECRET, DELIVERY, STAMP, body)
    _check(body=body, signature=signature)
    assert signature == sign(SECRET, DELIVERY, STAMP, body.encode("utf-8"))


def test_one_matching_signature_among_several_passes() -> None:
    good = _generate_hmac_signature(SECRET, DELIVERY, STAMP, BODY)
    other = _generate_hmac_signature("an-old-secret", DELIVERY, STAMP, BODY)
    _check(signature=f"{other} {good}")
    assert _refused(signature=other).reason == "bad_signature"


def test_no_secret_refuses_everything_and_says_which_variable() -> None:
    refused = _refused(secret=None)
    assert refused.reason == "no_secret"
    assert "MLFLOW_WEBHOOK_SECRET is not set" in str(refused)
    assert _refused(secret="").reason == "no_secret"


@pytest.mark.parametrize(
    ("change", "header"),
    [
        ({"signature": ""}, "X-MLflow-Signature"),
        ({"timestamp": None}, "X-MLflow-Timestamp"),
        ({"delivery_id": ""}, "X-MLflow-Delivery-Id"),
    ],
)
def test_a_missing_header_is_named(change: dict[str, object], header: str) -> None:
    refused = _refused(**change)
    assert refused.reason == "unsigned"
    assert header in str(refused)


@pytest.mark.parametrize(
    "change",
    [
        {"body": BODY.replace('"3"', '"4"')},  # tampered body
        {"delivery_id": "another-delivery"},  # the signature covers the id
        {"timestamp": str(int(NOW.timestamp()) + 1)},  # ... and the time
        {"secret": "the-wrong-secret"},
        {"signature": "v1,not base64!"},
        {"signature": "v2," + _generate_hmac_signature(SECRET, DELIVERY, STAMP, BODY)[3:]},
        {"signature": _generate_hmac_signature(SECRET, DELIVERY, STAMP, BODY)[3:]},
    ],
)
def test_anything_but_the_signed_delivery_is_refused(change: dict[str, object]) -> None:
    refused = _refused(**change)
    assert refused.reason == "bad_signature"
    assert "does not match" in str(refused)


@pytest.mark.parametrize(
    "skew", [MAX_SKEW + timedelta(seconds=1), -MAX_SKEW - timedelta(seconds=1)]
)
def test_a_delivery_signed_over_five_minutes_away_is_stale(skew: timedelta) -> None:
    refused = _refused(now=NOW + skew)
    assert refused.reason == "stale"
    assert "more than 5 minutes" in str(refused)


def test_a_delivery_within_five_minutes_passes() -> None:
    _check(now=NOW + MAX_SKEW)
    _check(now=NOW - MAX_SKEW)
    assert timedelta(minutes=5) == MAX_SKEW


@pytest.mark.parametrize("stamp", ["2026-11-27T09:00:00Z", "999999999999", "253402300800"])
def test_a_timestamp_that_is_not_unix_time_is_refused_after_the_signature(stamp: str) -> None:
    # Twelve digits pass for a number, yet name years past 9999, which no datetime holds.
    signature = _generate_hmac_signature(SECRET, DELIVERY, stamp, BODY)
    assert _refused(timestamp=stamp, signature=signature).reason == "bad_timestamp"


def test_the_secret_never_appears_in_a_refusal() -> None:
    for change in ({"secret": SECRET, "body": "{}"}, {"now": NOW + timedelta(hours=1)}):
        assert SECRET not in str(_refused(**change))
