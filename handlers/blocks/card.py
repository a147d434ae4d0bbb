"""The candidate card posted in the model's channel: everything an approver needs at a glance."""

from __future__ import annotations

from collections.abc import Collection

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
)

from bot.domain.promotion import CandidateState
from bot.services.views import CandidateSummary
from handlers.blocks import describe, sections
from handlers.blocks.actions import Action, BlockId, ButtonValue
from handlers.blocks.message import Message
from handlers.blocks.mrkdwn import clip, escape, plural
from handlers.blocks.sections import plain

#: Targets where pressing Approve asks "are you sure?" first.
CONFIRM_TARGETS: frozenset[str] = frozenset({"production"})
#: The card shows the metrics the gates judge first and points to Details for the rest.
CARD_METRICS = 12
CARD_BUNDLE_LINES = 16
#: Longer reasons, explanations and bundle problems are cut on the card; Details has them whole.
CARD_LINE = 400
_CONFIRM_TITLE, _CONFIRM_TEXT = 100, 300


def candidate_card(
    summary: CandidateSummary, *, confirm_targets: Collection[str] = CONFIRM_TARGETS
) -> Message:
    """The card for a candidate in any state; buttons only while something can still be done."""
    blocks: list[Block] = [
        sections.header(summary),
        sections.facts(summary),
        *sections.verdict(summary, max_blocks=1, line_limit=CARD_LINE),
        DividerBlock(),
        *sections.metrics(summary, max_blocks=2, max_lines=CARD_METRICS),
        *sections.gates(summary, max_blocks=2, line_limit=CARD_LINE),
        *sections.bundle(
            summary,
            max_blocks=2,
            full=False,
            max_lines=CARD_BUNDLE_LINES,
            line_limit=CARD_LINE,
        ),
        sections.votes(summary),
    ]
    buttons = card_buttons(summary, confirm_targets)
    if buttons:
        blocks.append(ActionsBlock(block_id=BlockId.CARD_ACTIONS.value, elements=buttons))
    blocks.append(sections.footer(summary))
    return Message(describe.fallback(summary), [block.to_dict() for block in blocks])


def card_buttons(
    summary: CandidateSummary, confirm_targets: Collection[str] = CONFIRM_TARGETS
) -> list[ButtonElement]:
    """Approve (or Override), Reject and Details while open; Rollback once promoted."""
    value = ButtonValue(summary.id, summary.state).encode()
    details = _button("Details", Action.DETAILS, value)
    match summary.state:
        case CandidateState.PENDING:
            confirm = _approve_confirm(summary) if summary.target_env in confirm_targets else None
            approve = _button("Approve", Action.APPROVE, value, "primary", confirm)
            return [approve, _button("Reject", Action.REJECT, value, "danger"), details]
        case CandidateState.BLOCKED:
            reject = _button("Reject", Action.REJECT, value, "danger")
            if not summary.override_by:
                return [reject, details]
            override = _button("Override", Action.APPROVE, value, None, _override_confirm(summary))
            return [override, reject, details]
        case CandidateState.PROMOTED:
            rollback = _button("Roll back", Action.ROLLBACK, value, "danger", _rollback(summary))
            return [rollback, details]
        case CandidateState.APPROVED | CandidateState.PROMOTING | CandidateState.FAILED:
            return [details]
    return []


def _button(
    text: str,
    action: Action,
    value: str,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=plain(text), action_id=action.value, value=value, style=style, confirm=confirm
    )


def _confirm(title: str, text: str, yes: str, *, danger: bool = False) -> ConfirmObject:
    return ConfirmObject(
        title=plain(clip(title, _CONFIRM_TITLE)),
        text=sections.markdown(clip(text, _CONFIRM_TEXT)),
        confirm=plain(yes),
        deny=plain("Cancel"),
        style="danger" if danger else "primary",
    )


def _approve_confirm(summary: CandidateSummary) -> ConfirmObject:
    missing = summary.missing_approvals
    effect = (
        f"{plural(missing - 1, 'more approval')} will still be needed."
        if missing > 1
        else "Yours is the last approval needed: promotion starts right away."
    )
    return _confirm(
        f"Approve for {summary.target_env}?",
        f"*{escape(describe.title(summary))}* goes to `{escape(summary.target_env)}`. {effect}",
        "Approve",
    )


def _override_confirm(summary: CandidateSummary) -> ConfirmObject:
    reasons = len(summary.reasons)
    first = escape(summary.reasons[0]) if summary.reasons else "the policy"
    return _confirm(
        "Override the block?",
        f"Approve *{escape(describe.title(summary))}* for `{escape(summary.target_env)}` "
        f"despite {plural(reasons, 'blocking reason')}? First: {first}",
        "Override",
        danger=True,
    )


def _rollback(summary: CandidateSummary) -> ConfirmObject:
    back_to = f"v{summary.champion_version}" if summary.champion_version else "the previous one"
    return _confirm(
        f"Roll back {summary.target_env}?",
        f"Move `{escape(summary.target_env)}` back to {escape(back_to)}, images included? "
        f"*{escape(describe.title(summary))}* stops being the champion.",
        "Roll back",
        danger=True,
    )
