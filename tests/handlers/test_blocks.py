"""Pins what the card, modals, thread lines and Home tab show, and that none breaks Block Kit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.domain.approvals import Decision, Vote
from bot.domain.candidates import Bundle, ImageRef, Snapshot
from bot.domain.gates import GateOutcome
from bot.domain.policy import VerdictKind
from bot.domain.promotion import CandidateState, PromotionStep, StepStatus
from bot.services.views import CandidateSummary, GateLine
from handlers.blocks import (
    Action,
    ButtonValue,
    Message,
    candidate_card,
    denial,
    details_modal,
    failed,
    home_view,
    problems,
    promoted,
    reject_modal,
    rolled_back,
    step_message,
    submitted_reason,
)
from handlers.blocks.progress import duration

S = CandidateState
V = VerdictKind
DIGEST = "sha256:abc123def456" + "0" * 52
SHA = "0123456789ab" + "f" * 52


def summary(**changes: Any) -> CandidateSummary:
    base = CandidateSummary(
        id=42,
        model="churn-classifier",
        version="7",
        source_env="staging",
        target_env="production",
        state=S.PENDING,
        requester="U0DS00001",
        author=None,
        metrics={"accuracy": 0.931, "latency_p95_ms": 120.0, "f1": 0.88},
        champion_version="5",
        champion_metrics={"accuracy": 0.925, "latency_p95_ms": 110.0},
        verdict=V.NEEDS_APPROVAL,
        reasons=("all 2 gates pass; 2 approvals needed",),
        gates=(
            GateLine(
                "accuracy >= champion",
                GateOutcome.PASSED,
                "accuracy >= champion: accuracy 0.931 passes against 0.925 (champion 0.925)",
            ),
            GateLine(
                "latency_p95_ms <= champion * 1.10",
                GateOutcome.PASSED,
                "latency_p95_ms <= champion * 1.10: latency_p95_ms 120 passes against 121 (champion 110)",
            ),
        ),
        bundle=Bundle(
            images={"serving": ImageRef("127.0.0.1:5000", "dev/churn-serving", DIGEST)},
            snapshots={"train": Snapshot("file:///srv/dev/train.parquet", SHA)},
            pipeline="pipeline/pipeline.yaml",
        ),
        approvals=(),
        approvals_required=2,
        rejection=None,
        override_by=frozenset(),
        created_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        expires_at=datetime(2026, 1, 8, 9, 0, tzinfo=UTC),
    )
    return replace(base, **changes)


def huge() -> CandidateSummary:
    """Everything at once, each part past what one block holds."""
    metrics = {f"metric_{i:02d}_{'x' * 40}": i / 7 for i in range(40)}
    return summary(
        model="m" * 255,
        version="9" * 64,
        metrics=metrics,
        champion_metrics={name: value - 0.01 for name, value in metrics.items()},
        verdict=V.BLOCKED,
        state=S.BLOCKED,
        reasons=tuple(f"reason {i}: " + "<&>" * 300 for i in range(30)),
        gates=tuple(
            GateLine(f"{name} >= champion", GateOutcome.FAILED, f"{name} >= champion: " + "y" * 400)
            for name in list(metrics)[:10]
        ),
        bundle=Bundle(
            images={
                f"image-{i}": ImageRef("registry.example.com:5000", f"dev/{'r' * 200}-{i}", DIGEST)
                for i in range(6)
            },
            snapshots={
                f"snap-{i}": Snapshot(f"s3://bucket/{'p' * 500}/{i}", SHA) for i in range(6)
            },
            pipeline="p/" * 300 + "pipeline.yaml",
            problems=tuple(
                f"tag gatekeeper.image.bad{i}: {'z' * 1500!r} is not an image" for i in range(8)
            ),
        ),
        approvals=tuple(f"U{i:08d}" for i in range(300)),
        override_by=frozenset({"S0MLLEADS", *(f"U{i:08d}" for i in range(200))}),
        rejection=Vote("U0SRE0001", Decision.REJECT, "no! " * 800),
        reason="r" * 5000,
    )


def reparse(payload: dict[str, Any]) -> None:
    """What slack_sdk's own validators say when they read the payload back."""
    if payload.get("type") in ("modal", "home"):
        View(**payload).validate_json()
        return
    for block in payload["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


def fits(payload: dict[str, Any]) -> None:
    assert problems(payload) == []
    reparse(payload)


def actions(message: Message) -> list[dict[str, Any]]:
    found = [b for b in message.blocks if b["type"] == "actions"]
    return found[0]["elements"] if found else []


def mrkdwn(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


# Each button as (action_id, label, style, has a confirm dialog).
APPROVE = ("candidate.approve", "Approve", "primary", False)
APPROVE_CONFIRMED = ("candidate.approve", "Approve", "primary", True)
OVERRIDE = ("candidate.approve", "Override", None, True)
REJECT = ("candidate.reject", "Reject", "danger", False)
DETAILS = ("candidate.details", "Details", None, False)
ROLLBACK = ("candidate.rollback", "Roll back", "danger", True)

BUTTONS = [
    (S.PENDING, V.NEEDS_APPROVAL, set(), "production", [APPROVE_CONFIRMED, REJECT, DETAILS]),
    (S.PENDING, V.NEEDS_APPROVAL, set(), "staging", [APPROVE, REJECT, DETAILS]),
    (S.BLOCKED, V.BLOCKED, {"S0MLLEADS"}, "production", [OVERRIDE, REJECT, DETAILS]),
    (S.BLOCKED, V.BLOCKED, {"S0MLLEADS"}, "staging", [OVERRIDE, REJECT, DETAILS]),
    (S.BLOCKED, V.BLOCKED, set(), "production", [REJECT, DETAILS]),
    (S.APPROVED, V.AUTO_APPROVE, set(), "staging", [DETAILS]),
    (S.APPROVED, V.NEEDS_APPROVAL, set(), "production", [DETAILS]),
    (S.PROMOTING, V.NEEDS_APPROVAL, set(), "production", [DETAILS]),
    (S.FAILED, V.AUTO_APPROVE, set(), "staging", [DETAILS]),
    (S.PROMOTED, V.NEEDS_APPROVAL, set(), "production", [ROLLBACK, DETAILS]),
    (S.PROMOTED, V.AUTO_APPROVE, set(), "staging", [ROLLBACK, DETAILS]),
    (S.REJECTED, V.NEEDS_APPROVAL, set(), "production", []),
    (S.REJECTED, V.BLOCKED, {"S0MLLEADS"}, "production", []),
    (S.EXPIRED, V.NEEDS_APPROVAL, set(), "production", []),
    (S.ROLLED_BACK, V.NEEDS_APPROVAL, set(), "production", []),
]  # fmt: skip


@pytest.mark.parametrize(("state", "verdict", "override_by", "target", "expected"), BUTTONS)
def test_buttons_follow_state_and_verdict(
    state: CandidateState,
    verdict: VerdictKind,
    override_by: set[str],
    target: str,
    expected: list[tuple[str, str, str | None, bool]],
) -> None:
    card = candidate_card(
        summary(state=state, verdict=verdict, override_by=frozenset(override_by), target_env=target)
    )
    seen = [
        (b["action_id"], b["text"]["text"], b.get("style"), "confirm" in b) for b in actions(card)
    ]
    assert seen == expected
    for button in actions(card):
        assert ButtonValue.decode(button["value"]) == ButtonValue(42, state)
    fits(card.payload())


@pytest.mark.parametrize(
    ("targets", "target", "confirmed"),
    [
        (frozenset(), "production", False),
        (frozenset({"staging"}), "staging", True),
        (frozenset({"staging"}), "production", False),
        ({"production", "dr"}, "dr", True),
    ],
)
def test_which_targets_confirm_an_approval_is_a_parameter(
    targets: frozenset[str], target: str, confirmed: bool
) -> None:
    card = candidate_card(summary(target_env=target), confirm_targets=targets)
    assert ("confirm" in actions(card)[0]) is confirmed


def test_confirm_dialogs_say_what_happens() -> None:
    approve = actions(candidate_card(summary(approvals=("U0LEAD001",))))[0]["confirm"]
    assert approve["title"]["text"] == "Approve for production?"
    assert "last approval" in approve["text"]["text"]
    rollback = actions(candidate_card(summary(state=S.PROMOTED)))[0]["confirm"]
    assert rollback["style"] == "danger"
    assert "back to v5" in rollback["text"]["text"]
    override = actions(
        candidate_card(
            summary(
                state=S.BLOCKED,
                verdict=V.BLOCKED,
                reasons=("accuracy too low",),
                override_by=frozenset({"S0MLLEADS"}),
            )
        )
    )[0]["confirm"]
    assert "accuracy too low" in override["text"]["text"]


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({}, "churn-classifier v7: staging → production — needs 2 approvals"),
        ({"approvals": ("U0LEAD001",)}, "churn-classifier v7: staging → production — needs 1 more approval"),
        ({"state": S.BLOCKED, "verdict": V.BLOCKED, "reasons": ("accuracy >= 0.9: fails", "freeze")}, "churn-classifier v7: staging → production — blocked: accuracy &gt;= 0.9: fails (and 1 more)"),
        ({"state": S.APPROVED}, "churn-classifier v7: staging → production — approved; promotion starts shortly"),
        ({"state": S.REJECTED, "rejection": Vote("U0SRE0001", Decision.REJECT, "no")}, "churn-classifier v7: staging → production — rejected by <@U0SRE0001>"),
        ({"state": S.PROMOTING}, "churn-classifier v7: staging → production — promoting"),
        ({"state": S.PROMOTED}, "churn-classifier v7: staging → production — promoted"),
        ({"state": S.FAILED}, "churn-classifier v7: staging → production — failed and rolled back"),
        ({"state": S.EXPIRED}, "churn-classifier v7: staging → production — expired"),
        ({"state": S.ROLLED_BACK}, "churn-classifier v7: staging → production — rolled back"),
    ],
)  # fmt: skip
def test_fallback_text_says_where_the_candidate_stands(changes: dict[str, Any], text: str) -> None:
    assert candidate_card(summary(**changes)).text == text


@pytest.mark.parametrize(
    ("metric", "champion_version", "champion_metrics", "expected"),
    [
        ("accuracy", "5", {"accuracy": 0.925}, "accuracy 0.931 (+0.006 vs champion v5)"),
        ("accuracy", "5", {"accuracy": 0.94}, "accuracy 0.931 (\N{MINUS SIGN}0.009 vs champion v5)"),
        ("accuracy", "5", {"accuracy": 0.931}, "accuracy 0.931 (±0 vs champion v5)"),
        ("latency_p95_ms", "3", {"latency_p95_ms": 100.0}, "latency_p95_ms 120 (+20 vs champion v3)"),
        ("accuracy", None, None, "accuracy 0.931 (no champion)"),
        ("accuracy", "5", {"f1": 0.5}, "accuracy 0.931 (champion v5 has none)"),
    ],
)  # fmt: skip
def test_metrics_show_deltas_against_the_champion(
    metric: str,
    champion_version: str | None,
    champion_metrics: dict[str, float] | None,
    expected: str,
) -> None:
    card = candidate_card(
        summary(champion_version=champion_version, champion_metrics=champion_metrics)
    )
    assert f"• {expected}" in mrkdwn(card.payload())


def test_gated_metrics_come_first_and_gates_show_their_verdicts() -> None:
    gates = (
        GateLine(
            "latency_p95_ms <= 100",
            GateOutcome.FAILED,
            "latency_p95_ms <= 100: latency_p95_ms 120 fails against 100",
        ),
        GateLine(
            "recall >= 0.5",
            GateOutcome.MISSING_METRIC,
            "recall >= 0.5: the candidate has no metric 'recall'",
        ),
        GateLine(
            "accuracy >= champion",
            GateOutcome.NO_CHAMPION,
            "accuracy >= champion: there is no champion to compare with",
        ),
    )
    card = candidate_card(summary(gates=gates, metrics={"a_first": 1.0, "latency_p95_ms": 120.0}))
    text = mrkdwn(card.payload())
    assert text.index("latency_p95_ms 120") < text.index("a_first 1")
    assert "❌ latency_p95_ms &lt;= 100: latency_p95_ms 120 fails against 100" in text
    assert "❌ recall &gt;= 0.5" in text
    assert "⚠️ accuracy &gt;= champion: there is no champion" in text


def test_people_render_as_mentions_and_user_text_cannot_ping() -> None:
    card = candidate_card(
        summary(
            state=S.BLOCKED,
            verdict=V.BLOCKED,
            author="U0AUTHOR1",
            approvals=("U0LEAD001",),
            override_by=frozenset({"S0MLLEADS", "U0SRE0001"}),
            rejection=Vote("W0SRE0002", Decision.REJECT, "<!channel> look & see <@U0LEAD001>"),
        )
    )
    text = mrkdwn(card.payload())
    assert "<@U0DS00001> · built by <@U0AUTHOR1>" in text
    assert "1 of 2 approvals: <@U0LEAD001>" in text
    assert "<!subteam^S0MLLEADS>, <@U0SRE0001> may override the block" in text
    assert "Rejected by <@W0SRE0002>: &lt;!channel&gt; look &amp; see <@U0LEAD001>" in text
    assert "<!channel>" not in text


def test_bundle_shows_short_digests_and_problems() -> None:
    bundle = Bundle(
        images={"serving": ImageRef("127.0.0.1:5000", "dev/churn-serving", DIGEST)},
        snapshots={"train": Snapshot("file:///srv/dev/train.parquet", SHA)},
        pipeline="pipeline/pipeline.yaml",
        problems=("tag gatekeeper.image.x: 'latest' is not an image by digest",),
    )
    text = mrkdwn(candidate_card(summary(bundle=bundle)).payload())
    assert "serving  `127.0.0.1:5000/dev/churn-serving@sha256:abc123def456`" in text
    assert "train  `sha256:0123456789ab`" in text
    assert "`pipeline/pipeline.yaml`" in text
    assert "❌ tag gatekeeper.image.x" in text
    assert DIGEST not in text


def test_a_huge_candidate_fits_every_limit() -> None:
    big = huge()
    card = candidate_card(big)
    fits(card.payload())
    assert len(card.blocks) <= 50
    assert len(card.blocks[0]["text"]["text"]) == 150
    text = mrkdwn(card.payload())
    assert "… and 28 more" in text  # 12 of 40 metrics on the card
    assert [b["action_id"] for b in actions(card)] == [
        "candidate.approve",
        "candidate.reject",
        "candidate.details",
    ]
    for view in (
        details_modal(big),
        reject_modal(big),
        home_view([big] * 3, [big] * 3, {(big.model, "production"): big.version}),
    ):
        fits(view)


def test_far_past_any_limit_everything_is_still_counted() -> None:
    metrics = {f"m{i:04d}": float(i) for i in range(1000)}
    big = replace(huge(), metrics=metrics, champion_metrics=None, gates=huge().gates * 30)
    details = details_modal(big)
    fits(details)
    assert len(details["blocks"]) <= 100
    assert "… and " in mrkdwn(details)
    fits(candidate_card(big).payload())


def test_details_modal_has_all_gates_full_digests_and_snapshot_urls() -> None:
    gates = tuple(
        GateLine(f"g{i} >= 1", GateOutcome.PASSED, f"g{i} >= 1: passes") for i in range(10)
    )
    view = details_modal(summary(gates=gates))
    text = mrkdwn(view)
    assert all(f"g{i} &gt;= 1: passes" in text for i in range(10))
    assert f"127.0.0.1:5000/dev/churn-serving@{DIGEST}" in text
    assert f"file:///srv/dev/train.parquet`  `sha256:{SHA}" in text
    assert view["callback_id"] == Action.DETAILS_MODAL
    assert view["title"]["text"] == "Candidate #42"
    # The largest id a button can carry still fits a modal's title (24 characters).
    assert details_modal(summary(id=2**31 - 1))["title"]["text"] == "Candidate #2147483647"
    fits(view)


def test_reject_modal_asks_for_a_reason_and_carries_the_candidate() -> None:
    view = reject_modal(summary())
    assert view["callback_id"] == Action.REJECT_MODAL
    assert len(view["title"]["text"]) <= 24
    assert ButtonValue.decode(view["private_metadata"]) == ButtonValue(42, S.PENDING)
    field = next(b for b in view["blocks"] if b["type"] == "input")
    assert field["element"]["multiline"] is True
    assert field["element"]["action_id"] == Action.REJECT_REASON
    assert field.get("optional", False) is False
    fits(view)
    values = {
        field["block_id"]: {
            Action.REJECT_REASON.value: {"type": "plain_text_input", "value": "  too slow \n"}
        }
    }
    assert submitted_reason(values) == "too slow"
    assert submitted_reason({}) == ""
    assert submitted_reason({field["block_id"]: "junk"}) == ""
    assert submitted_reason("junk") == submitted_reason(None) == ""


@pytest.mark.parametrize(
    ("step", "status", "seconds", "detail", "text"),
    [
        (PromotionStep.COPY_IMAGES, StepStatus.SUCCEEDED, 3.4, "2 images", "✅ copy images — 2 images, 3.4 s"),
        (PromotionStep.COPY_IMAGES, StepStatus.RUNNING, None, None, "⏳ copy images…"),
        (PromotionStep.COPY_SNAPSHOTS, StepStatus.SKIPPED, None, "no snapshots in the bundle", "⏭️ copy snapshots skipped — no snapshots in the bundle"),
        (PromotionStep.CUT_OVER, StepStatus.FAILED, 0.25, "alias <champion> busy", "❌ cut over failed — alias &lt;champion&gt; busy, 0.2 s"),
        (PromotionStep.COPY_MODEL, StepStatus.COMPENSATED, 75, None, "↩️ copy model version undone — 1 min 15 s"),
        (PromotionStep.VERIFY, StepStatus.PENDING, None, None, "⏸️ verify waiting"),
    ],
)  # fmt: skip
def test_step_messages(
    step: PromotionStep, status: StepStatus, seconds: float | None, detail: str | None, text: str
) -> None:
    message = step_message(step, status, seconds, detail)
    assert message.text == text
    assert message.blocks[0]["text"]["text"] == text
    fits(message.payload())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.04, "0.0 s"),
        (3.44, "3.4 s"),
        (42.4, "42 s"),
        (120, "2 min"),
        (3725, "1 h 2 min"),
        (7200, "2 h"),
        (-1, "0.0 s"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_outcome_lines() -> None:
    assert (
        promoted(summary(), 42.0).text
        == "🚀 *churn-classifier v7* is the champion in `production` (was v5) — 42 s"
    )
    assert (
        "failed at copy images and was rolled back; v5 is still the champion"
        in failed(summary(), PromotionStep.COPY_IMAGES, "boom").text
    )
    assert "```x'''y```" in failed(summary(), PromotionStep.VERIFY, "x```y").text
    assert (
        rolled_back(summary(), "U0SRE0001").text
        == "↩️ <@U0SRE0001> rolled back *churn-classifier v7* in `production`: v5 is the champion again."
    )
    assert "no champion now" in rolled_back(summary(champion_version=None)).text
    refused = denial("only <!subteam^S0MLLEADS> may override the block <!here>")
    assert refused.text == "🚫 only <!subteam^S0MLLEADS> may override the block &lt;!here&gt;"
    for message in (
        promoted(huge()),
        failed(huge(), PromotionStep.NOTIFY, "e" * 10_000),
        rolled_back(huge(), "U1"),
        denial("d" * 10_000),
    ):
        assert message.text
        fits(message.payload())


def test_home_lists_waiting_recent_and_champions() -> None:
    waiting = [summary(id=i, model=f"model-{i}") for i in range(1, 4)]
    champions = {
        ("churn-classifier", "staging"): "8",
        ("churn-classifier", "production"): "5",
        ("fraud", "production"): "2",
    }
    view = home_view(waiting, [summary(state=S.PROMOTED)], champions)
    text = mrkdwn(view)
    assert view["type"] == "home"
    assert "*Waiting for you* (3)" in text
    assert "• *churn-classifier*: `staging` v8 · `production` v5" in text
    assert "• *fraud*: `production` v2" in text
    assert "🚀 *churn-classifier v7*" in text
    accessories = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert [ButtonValue.decode(a["value"]).candidate_id for a in accessories] == [1, 2, 3]
    assert {a["action_id"] for a in accessories} == {Action.DETAILS}
    fits(view)


def test_home_when_empty_and_when_long() -> None:
    empty = mrkdwn(home_view([], [], {}))
    assert "Nothing waits for you" in empty
    assert "No promotions yet." in empty
    assert "No champions yet." in empty
    many = [summary(id=i) for i in range(1, 501)]
    champions = {
        (f"model-{i}", env): str(i) for i in range(200) for env in ("staging", "production")
    }
    view = home_view(many, many, champions)
    fits(view)
    assert len(view["blocks"]) <= 100
    text = mrkdwn(view)
    assert "… and 485 more" in text
    assert "… and 480 more" in text
    assert "… and 160 more" in text


ALL_SUMMARIES = [summary(state=state) for state in CandidateState] + [
    huge(),
    summary(requester=None, expires_at=None, metrics={}, gates=(), bundle=Bundle(), reasons=()),
]


@pytest.mark.parametrize("candidate", ALL_SUMMARIES, ids=lambda c: f"{c.state}-{len(c.metrics)}")
def test_every_renderer_fits_block_kit(candidate: CandidateSummary) -> None:
    card = candidate_card(candidate)
    assert card.text.strip()
    for payload in (
        card.payload(),
        details_modal(candidate),
        reject_modal(candidate),
        home_view([candidate], [candidate], {}),
    ):
        fits(payload)
    for step in PromotionStep:
        for status in StepStatus:
            fits(step_message(step, status, 1.5, "detail").payload())
