"""Modals a press opens: the reason for a rejection, and everything known about a candidate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    DividerBlock,
    InputBlock,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.services.views import CandidateSummary
from handlers.blocks import describe, sections
from handlers.blocks.actions import Action, BlockId, ButtonValue
from handlers.blocks.mrkdwn import clip, escape
from handlers.blocks.sections import markdown, plain

TITLE = 24
#: A rejection reason is shown on the card and in the thread; long essays belong in a ticket.
REASON_MAX = 1000


def reject_modal(summary: CandidateSummary) -> dict[str, Any]:
    """Ask for the reason; the submission comes back with the candidate in ``private_metadata``."""
    intro = (
        f"Reject *{escape(describe.title(summary))}* for {describe.route(summary)}? "
        "The requester sees your reason on the card and in the thread."
    )
    reason = InputBlock(
        block_id=BlockId.REJECT_REASON.value,
        label=plain("Reason"),
        element=PlainTextInputElement(
            action_id=Action.REJECT_REASON.value,
            multiline=True,
            min_length=1,
            max_length=REASON_MAX,
            placeholder=plain("What must change before this can be promoted?"),
        ),
    )
    view = View(
        type="modal",
        callback_id=Action.REJECT_MODAL.value,
        title=plain("Reject candidate"),
        submit=plain("Reject"),
        close=plain("Cancel"),
        private_metadata=ButtonValue(summary.id, summary.state).encode(),
        blocks=[SectionBlock(text=markdown(clip(intro, 3000))), reason],
    )
    return view.to_dict()


def submitted_reason(state_values: object) -> str:
    """The reason typed into ``reject_modal``, from a submission's ``view.state.values``."""
    if not isinstance(state_values, Mapping):
        return ""
    block = state_values.get(BlockId.REJECT_REASON.value)
    field = block.get(Action.REJECT_REASON.value) if isinstance(block, Mapping) else None
    value = field.get("value") if isinstance(field, Mapping) else None
    return value.strip() if isinstance(value, str) else ""


def details_modal(summary: CandidateSummary) -> dict[str, Any]:
    """Everything: every reason, metric and gate, full digests and snapshot URLs, every vote."""
    blocks: list[Block] = [
        sections.header(summary),
        sections.facts(summary),
        *sections.verdict(summary, max_blocks=5),
        DividerBlock(),
        *sections.metrics(summary, max_blocks=25),
        DividerBlock(),
        *sections.gates(summary, max_blocks=15),
        DividerBlock(),
        *sections.bundle(summary, max_blocks=30, full=True),
        DividerBlock(),
        sections.votes(summary),
        sections.footer(summary),
    ]
    view = View(
        type="modal",
        callback_id=Action.DETAILS_MODAL.value,
        title=plain(_fit(f"Candidate #{summary.id}", "Candidate details")),
        close=plain("Close"),
        private_metadata=ButtonValue(summary.id, summary.state).encode(),
        blocks=blocks,
    )
    return view.to_dict()


def _fit(title: str, shorter: str) -> str:
    return title if len(title) <= TITLE else shorter
