"""Blocks the card and the details modal share, each bounded so any candidate fits."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.services.views import CandidateSummary
from handlers.blocks import describe
from handlers.blocks.mrkdwn import (
    FIELD_TEXT,
    HEADER_TEXT,
    SECTION_TEXT,
    ago,
    clip,
    code,
    date,
    escape,
    mentions,
    pack,
)


def plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def markdown(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def header(summary: CandidateSummary) -> HeaderBlock:
    return HeaderBlock(text=plain(clip(describe.title(summary), HEADER_TEXT)))


def text_sections(texts: list[str]) -> list[SectionBlock]:
    return [SectionBlock(text=markdown(text)) for text in texts]


def facts(summary: CandidateSummary) -> SectionBlock:
    """Where it goes, where it stands, who asked and when."""
    when = ago(summary.created_at)
    if summary.expires_at is not None:
        when += f"\nexpires {date(summary.expires_at)}"
    fields = [
        f"*Promotion*\n{describe.route(summary)}",
        f"*State*\n{describe.state(summary)}",
        f"*Requested by*\n{describe.requester(summary)}",
        f"*Requested*\n{when}",
    ]
    return SectionBlock(fields=[markdown(clip(field, FIELD_TEXT // 4)) for field in fields])


def verdict(
    summary: CandidateSummary, *, max_blocks: int, line_limit: int | None = None
) -> list[SectionBlock]:
    """The policy's verdict and every reason for it, in the order a person should read them."""
    heading = f"*Verdict:* {describe.VERDICT[summary.verdict]}"
    reasons = [f"• {escape(reason)}" for reason in summary.reasons]
    return text_sections(
        pack(reasons, heading=heading, max_blocks=max_blocks, line_limit=line_limit)
    )


def metrics(
    summary: CandidateSummary, *, max_blocks: int, max_lines: int | None = None
) -> list[SectionBlock]:
    lines = describe.metric_lines(summary) or ["none logged"]
    return text_sections(
        pack(lines, heading="*Metrics*", max_blocks=max_blocks, max_lines=max_lines)
    )


def gates(
    summary: CandidateSummary, *, max_blocks: int, line_limit: int | None = None
) -> list[SectionBlock]:
    lines = [describe.gate_line(line) for line in summary.gates]
    lines = lines or ["this environment's policy has no gates"]
    return text_sections(
        pack(lines, heading="*Gates*", max_blocks=max_blocks, line_limit=line_limit)
    )


def bundle(
    summary: CandidateSummary,
    *,
    max_blocks: int,
    full: bool,
    max_lines: int | None = None,
    line_limit: int | None = None,
) -> list[SectionBlock]:
    """Images and snapshots by digest, the pipeline, and whatever is wrong with them."""
    found = summary.bundle
    lines = [f"❌ {escape(problem)}" for problem in found.problems]
    lines += [describe.image_line(n, i, full=full) for n, i in sorted(found.images.items())]
    lines += [describe.snapshot_line(n, s, full=full) for n, s in sorted(found.snapshots.items())]
    lines.append(f"• pipeline  {code(found.pipeline)}" if found.pipeline else "• no pipeline")
    return text_sections(
        pack(
            lines,
            heading="*Bundle*",
            max_blocks=max_blocks,
            max_lines=max_lines,
            line_limit=line_limit,
        )
    )


def votes(summary: CandidateSummary) -> SectionBlock:
    """Approvals so far against those required, who may override, and any rejection."""
    third = SECTION_TEXT // 3 - 1  # three lines and two newlines
    lines = [clip(describe.approvals(summary), third)]
    if summary.override_by:
        who = mentions(sorted(summary.override_by))
        lines.append(clip(f"⚠️ {who} may override the block", third))
    if summary.rejection is not None:
        reason = escape(summary.rejection.reason) if summary.rejection.reason else "no reason given"
        rejected = f"🚫 Rejected by {mentions([summary.rejection.voter])}: {reason}"
        lines.append(clip(rejected, third))
    return SectionBlock(text=markdown("\n".join(lines)))


def footer(summary: CandidateSummary) -> ContextBlock:
    return ContextBlock(
        elements=[markdown(f"Candidate #{summary.id} · {code(f'/promote status {summary.id}')}")]
    )
