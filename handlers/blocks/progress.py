"""Lines posted in a candidate's thread as it is promoted, and the ephemeral word on a denial."""

from __future__ import annotations

from slack_sdk.models.blocks import SectionBlock

from bot.domain.promotion import PromotionStep, StepStatus
from bot.services.views import CandidateSummary
from handlers.blocks import describe
from handlers.blocks.message import Message
from handlers.blocks.mrkdwn import SECTION_TEXT, clip, code, escape, mention
from handlers.blocks.sections import markdown

STEP: dict[PromotionStep, str] = {
    PromotionStep.VERIFY: "verify",
    PromotionStep.COPY_IMAGES: "copy images",
    PromotionStep.COPY_SNAPSHOTS: "copy snapshots",
    PromotionStep.COPY_MODEL: "copy model version",
    PromotionStep.REGISTER_PIPELINE: "register pipeline",
    PromotionStep.CUT_OVER: "cut over",
    PromotionStep.RECORD_LINEAGE: "record lineage",
    PromotionStep.NOTIFY: "notify",
}

STATUS: dict[StepStatus, tuple[str, str]] = {
    StepStatus.PENDING: ("⏸️", " waiting"),
    StepStatus.RUNNING: ("⏳", "…"),
    StepStatus.SUCCEEDED: ("✅", ""),
    StepStatus.SKIPPED: ("⏭️", " skipped"),
    StepStatus.FAILED: ("❌", " failed"),
    StepStatus.COMPENSATED: ("↩️", " undone"),
}


def step_message(
    step: PromotionStep,
    status: StepStatus,
    duration_s: float | None = None,
    detail: str | None = None,
) -> Message:
    """``✅ copy images — 2 images, 3.4 s``."""
    emoji, word = STATUS[status]
    extras = [
        escape(detail) if detail else "",
        duration(duration_s) if duration_s is not None else "",
    ]
    extra = ", ".join(part for part in extras if part)
    return _line(f"{emoji} {STEP[step]}{word}" + (f" — {extra}" if extra else ""))


def denial(reason: str) -> Message:
    """Why a press or command changed nothing, shown only to the person who tried."""
    return _line(f"🚫 {escape(reason)}")


def promoted(summary: CandidateSummary, duration_s: float | None = None) -> Message:
    """``🚀 churn-classifier v7 is the champion in production (was v5) — 42 s``."""
    was = f" (was v{summary.champion_version})" if summary.champion_version else ""
    took = f" — {duration(duration_s)}" if duration_s is not None else ""
    return _line(
        f"🚀 {_title(summary)} is the champion in {code(summary.target_env)}{escape(was)}{took}"
    )


def failed(summary: CandidateSummary, step: PromotionStep, error: str) -> Message:
    """A failed promotion: which step, why, and that whatever was cut over was moved back."""
    still = (
        f"v{summary.champion_version} is still the champion"
        if summary.champion_version
        else "nothing changed"
    )
    return _line(
        f"💥 Promoting {_title(summary)} to {code(summary.target_env)} failed at "
        f"{STEP[step]} and was rolled back; {escape(still)}.\n```{_fenced(error)}```"
    )


def rolled_back(summary: CandidateSummary, by: str | None = None) -> Message:
    """A promotion taken back, by a person (``by``) or by Gatekeeper itself."""
    who = f"{mention(by)} rolled back" if by else "Rolled back"
    back_to = (
        f"v{summary.champion_version} is the champion again"
        if summary.champion_version
        else "it has no champion now"
    )
    return _line(f"↩️ {who} {_title(summary)} in {code(summary.target_env)}: {escape(back_to)}.")


def duration(seconds: float) -> str:
    """``0.4 s``, ``3.4 s``, ``2 min 5 s``, ``1 h 2 min``."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _fenced(text: str) -> str:
    """Text inside a code block, which a stray fence in an error message cannot end early."""
    return clip(escape(text).replace("```", "'''"), SECTION_TEXT // 2) or " "


def _title(summary: CandidateSummary) -> str:
    return f"*{escape(describe.title(summary))}*"


def _line(text: str) -> Message:
    """One section; the fallback is the same words, so notifications read like the thread."""
    text = clip(text, SECTION_TEXT)
    return Message(text, [SectionBlock(text=markdown(text)).to_dict()])
