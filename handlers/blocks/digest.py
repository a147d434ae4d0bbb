"""The scheduled digest and the approver's reminder: what waits, one line a candidate.

However much waits, the digest stays one message inside Slack's limits: it shows the candidates
the service chose (at most ``DIGEST_LINES``, shared fairly between environments, oldest first in
each) and counts the rest per environment ("… and 9,960 more in `staging`").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock

from bot.domain.promotion import CandidateState
from bot.services.digests import (
    ENVIRONMENTS_SHOWN,
    Digest,
    DigestEntry,
    EnvironmentDigest,
    ThreadRef,
)
from bot.services.reminders import Reminder
from handlers.blocks.message import Message
from handlers.blocks.mrkdwn import (
    ELLIPSIS,
    SECTION_TEXT,
    ago,
    clip,
    code,
    date,
    escape,
    mentions,
    pack,
    plural,
)
from handlers.blocks.sections import markdown, plain, text_sections

#: Characters one candidate's line may take, so that a section always holds several.
LINE = 280
#: Characters a blocking reason may take on its line.
REASON = 120
FALLBACK = 2000


def digest_message(digest: Digest, *, workspace_url: str | None) -> Message:
    """The digest of ``digest.channel``; threads are linked when ``workspace_url`` is known."""
    blocks: list[Block] = [HeaderBlock(text=plain("📋 Waiting for approval"))]
    if digest.total == 0:
        blocks.append(ContextBlock(elements=[markdown(f"Nothing waits. 🎉 · {date(digest.at)}")]))
        return Message("Gatekeeper digest: nothing waits for approval", _dicts(blocks))
    counts = f"*{digest.pending:,}* pending · *{digest.blocked:,}* blocked · {date(digest.at)}"
    blocks.append(ContextBlock(elements=[markdown(counts)]))

    for environment in digest.environments[:ENVIRONMENTS_SHOWN]:
        name = code(environment.name)
        lines = [_line(entry, workspace_url) for entry in environment.shown]
        if environment.hidden:
            lines.append(f"{ELLIPSIS} and {environment.hidden:,} more in {name}")
        heading = f"*→ {name}* ({_tally(environment)})"
        blocks.append(DividerBlock())
        blocks += text_sections(
            pack(lines, heading=heading, max_blocks=_blocks_for(len(lines)), line_limit=LINE)
        )
    rest = digest.environments[ENVIRONMENTS_SHOWN:]
    if rest:
        hidden = sum(environment.total for environment in rest)
        others = f"{ELLIPSIS} and {hidden:,} more in {plural(len(rest), 'other environment')}"
        blocks.append(ContextBlock(elements=[markdown(others)]))
    footer = f"{code('/promote list')} shows every candidate; {code('/promote status <id>')} one"
    blocks.append(ContextBlock(elements=[markdown(footer)]))
    return Message(_fallback(digest), _dicts(blocks))


def _blocks_for(lines: int) -> int:
    """Sections enough for ``lines`` lines of at most ``LINE`` characters, and a heading."""
    per_section = SECTION_TEXT // (LINE + 1) - 1
    return -(-lines // per_section) + 1


def _tally(environment: EnvironmentDigest) -> str:
    pending, blocked = environment.pending, environment.blocked
    parts = [f"{pending:,} pending"] if pending else []
    return ", ".join(parts + ([f"{blocked:,} blocked"] if blocked else []))


def _line(entry: DigestEntry, workspace_url: str | None) -> str:
    """``• churn-classifier v7 `staging` → `production` · 2 days ago · 1 of 2 approvals, …``."""
    name = f"*{_linked(entry, workspace_url)}* (#{entry.id})"
    route = f"{code(entry.source_env)} → {code(entry.target_env)}"
    head = f"• {name} {route} · {ago(entry.created_at)} · "
    if entry.state is CandidateState.BLOCKED:
        return clip(head + _blocked(entry), LINE)
    return clip(head + _waiting(entry), LINE)


def _linked(entry: DigestEntry, workspace_url: str | None) -> str:
    title = escape(f"{entry.model} v{entry.version}")
    if entry.thread is None or not workspace_url:
        return title
    return f"<{permalink(workspace_url, entry.thread)}|{title}>"


def permalink(workspace_url: str, thread: ThreadRef) -> str:
    """Slack's link to a message: ``https://acme.slack.com/archives/C0…/p1764230400000100``."""
    return f"{workspace_url.rstrip('/')}/archives/{thread.channel}/p{thread.ts.replace('.', '')}"


def _waiting(entry: DigestEntry) -> str:
    votes = f"{len(entry.approvals)} of {plural(entry.approvals_required, 'approval')}"
    if entry.waiting_for:
        return f"{votes}, waiting for {mentions(entry.waiting_for)}"
    return f"{votes}, nobody left who may approve"


def _blocked(entry: DigestEntry) -> str:
    first = clip(escape(entry.blocked_by[0]), REASON) if entry.blocked_by else "see the card"
    more = len(entry.blocked_by) - 1
    line = f"⛔ blocked: {first}" + (f" (+{more} more)" if more > 0 else "")
    if entry.override_by:
        line += f" · {mentions(sorted(entry.override_by))} may override"
    return line


def _fallback(digest: Digest) -> str:
    per_environment = ", ".join(
        f"{environment.total:,} in {environment.name}" for environment in digest.environments
    )
    return clip(f"Gatekeeper digest: {digest.total:,} waiting ({per_environment})", FALLBACK)


def reminder_message(reminder: Reminder, *, workspace_url: str | None) -> Message:
    """A direct message to one approver: what waits for them, since when, and where."""
    entry = reminder.candidate
    title = escape(f"{entry.model} v{entry.version}")
    where = (
        f"<{permalink(workspace_url, entry.thread)}|Open its card>"
        if entry.thread is not None and workspace_url
        else code(f"/promote status {entry.id}")
    )
    votes = f"{len(entry.approvals)} of {plural(entry.approvals_required, 'approval')} so far"
    text = (
        f"⏰ *{title}* ({code(entry.source_env)} → {code(entry.target_env)}), requested "
        f"{ago(entry.created_at)}, waits for your approval: {votes}. {where}"
    )
    fallback = (
        f"Reminder: {entry.model} v{entry.version} ({entry.source_env} → {entry.target_env}) "
        "waits for your approval"
    )
    blocks = text_sections([clip(text, SECTION_TEXT)])
    return Message(clip(escape(fallback), FALLBACK), _dicts(blocks))


def _dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]
