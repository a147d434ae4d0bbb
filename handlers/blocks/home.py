"""The App Home tab: what waits for me, what was promoted lately, who is champion where."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.promotion import CandidateState
from bot.services.views import CandidateSummary
from handlers.blocks import describe
from handlers.blocks.actions import Action, ButtonValue
from handlers.blocks.mrkdwn import SECTION_TEXT, ago, clip, code, escape, more, pack
from handlers.blocks.sections import markdown, plain, text_sections

#: One block each, with a Details button; the rest are counted, and `/promote list` has them.
WAITING_SHOWN = 15
RECENT_SHOWN = 20
CHAMPIONS_SHOWN = 40


def home_view(
    waiting_for_me: Sequence[CandidateSummary],
    recent: Sequence[CandidateSummary],
    champions: Mapping[tuple[str, str], str],
) -> dict[str, Any]:
    """The Home tab; ``champions`` maps (model, environment) to version, in display order."""
    blocks: list[Block] = [HeaderBlock(text=plain("🚦 Gatekeeper"))]
    blocks.append(SectionBlock(text=markdown(f"*Waiting for you* ({len(waiting_for_me)})")))
    blocks += [_waiting(summary) for summary in waiting_for_me[:WAITING_SHOWN]]
    if not waiting_for_me:
        blocks.append(ContextBlock(elements=[markdown("Nothing waits for you. 🎉")]))
    elif len(waiting_for_me) > WAITING_SHOWN:
        hidden = more(len(waiting_for_me) - WAITING_SHOWN)
        blocks.append(ContextBlock(elements=[markdown(f"{hidden}: {code('/promote list')}")]))

    blocks.append(DividerBlock())
    lines = [_recent(summary) for summary in recent] or ["No promotions yet."]
    blocks += text_sections(
        pack(lines, heading="*Recent promotions*", max_blocks=3, max_lines=RECENT_SHOWN)
    )

    blocks.append(DividerBlock())
    lines = _champions(champions) or ["No champions yet."]
    blocks += text_sections(
        pack(lines, heading="*Champions*", max_blocks=3, max_lines=CHAMPIONS_SHOWN)
    )
    return View(type="home", blocks=blocks).to_dict()


def _waiting(summary: CandidateSummary) -> SectionBlock:
    if summary.state is CandidateState.BLOCKED and summary.reasons:
        status = f"⛔ blocked: {escape(summary.reasons[0])}"
    else:
        status = f"{describe.STATE[summary.state]} · {describe.approvals(summary)}"
    text = (
        f"*{escape(describe.title(summary))}*  {describe.route(summary)}\n"
        f"{clip(status, SECTION_TEXT // 2)}\nrequested {ago(summary.created_at)}"
    )
    details = ButtonElement(
        text=plain("Details"),
        action_id=Action.DETAILS.value,
        value=ButtonValue(summary.id, summary.state).encode(),
    )
    return SectionBlock(text=markdown(clip(text, SECTION_TEXT)), accessory=details)


def _recent(summary: CandidateSummary) -> str:
    emoji = describe.STATE[summary.state].split(" ", 1)[0]
    return (
        f"{emoji} *{escape(describe.title(summary))}* "
        f"{describe.route(summary)} · {ago(summary.created_at)}"
    )


def _champions(champions: Mapping[tuple[str, str], str]) -> list[str]:
    """One line a model: ``churn-classifier: `staging` v8 · `production` v5``."""
    by_model: dict[str, list[str]] = {}
    for (model, environment), version in champions.items():
        by_model.setdefault(model, []).append(f"{code(environment)} v{escape(version)}")
    return [f"• *{escape(model)}*: {' · '.join(envs)}" for model, envs in by_model.items()]
