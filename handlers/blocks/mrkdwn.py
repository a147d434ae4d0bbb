"""Text that is safe to put in Slack mrkdwn: escaped, mentions kept, clipped and packed to fit."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
ELLIPSIS = "…"

# Mentions of users, groups and channels are the only control sequences kept from text we did
# not write ourselves: domain messages name approvers this way, and ``<!channel>`` must not ping.
_MENTION = re.compile(r"<(?:@[UW][A-Z0-9]{2,30}|!subteam\^S[A-Z0-9]{2,30}|#C[A-Z0-9]{2,30})>")
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,30}$")


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so Slack shows them, keeping user and group mentions."""
    out: list[str] = []
    last = 0
    for match in _MENTION.finditer(text):
        out.append(_escape_all(text[last : match.start()]))
        out.append(match.group())
        last = match.end()
    out.append(_escape_all(text[last:]))
    return "".join(out)


def _escape_all(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis, never inside an escape or mention."""
    if len(text) <= limit:
        return text
    cut = max(limit - len(ELLIPSIS), 0)
    for opener, closer in (("&", ";"), ("<", ">")):
        start = text.rfind(opener, 0, cut)
        if start != -1 and text.find(closer, start, cut) == -1:
            cut = start
    return text[:cut] + ELLIPSIS


def mention(slack_id: str) -> str:
    """A user (``<@U…>``) or user-group (``<!subteam^S…>``) mention; anything else, escaped."""
    if not _SLACK_ID.match(slack_id):
        return _escape_all(slack_id)
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def mentions(slack_ids: Iterable[str]) -> str:
    return ", ".join(mention(i) for i in slack_ids)


def code(text: str) -> str:
    """Inline code that a stray backtick in ``text`` cannot close early."""
    return "`" + escape(text).replace("`", "'") + "`"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def more(hidden: int) -> str:
    return f"{ELLIPSIS} and {hidden} more"


def date(at: datetime, token: str = "{date_short_pretty} {time}") -> str:
    """A date each reader sees in their own timezone; the fallback is UTC."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{token}|{fallback}>"


def ago(at: datetime) -> str:
    """Like "3 hours ago", kept current by Slack rather than frozen at posting time."""
    return date(at, "{ago}")


def pack(
    lines: Sequence[str],
    *,
    max_blocks: int,
    heading: str = "",
    limit: int = SECTION_TEXT,
    max_lines: int | None = None,
    line_limit: int | None = None,
) -> list[str]:
    """Lines joined into at most ``max_blocks`` texts of ``limit`` characters each.

    Lines that do not fit (or past ``max_lines``) are replaced by "… and N more"; one line never
    takes more than ``line_limit`` (half a text by default), so one huge value cannot hide all
    the others.
    """
    longest = min(line_limit or limit // 2, limit // 2)
    clipped = [clip(line, longest) for line in lines]
    shown = min(len(clipped), max_lines if max_lines is not None else len(clipped))
    shown = min(shown, _fitting(clipped, max_blocks, heading, limit))
    while True:
        hidden = len(clipped) - shown
        texts = _greedy([*clipped[:shown], *([more(hidden)] if hidden else [])], heading, limit)
        if len(texts) <= max_blocks or shown == 0:
            return texts[:max_blocks]
        shown -= 1


def _fitting(lines: Sequence[str], max_blocks: int, heading: str, limit: int) -> int:
    """How many leading lines fill ``max_blocks`` texts, ignoring the "and N more" line."""
    blocks, size = 1, len(heading)
    for index, line in enumerate(lines):
        needed = len(line) + (1 if size else 0)
        if size + needed > limit:
            blocks, size, needed = blocks + 1, 0, len(line)
            if blocks > max_blocks:
                return index
        size += needed
    return len(lines)


def _greedy(lines: Sequence[str], heading: str, limit: int) -> list[str]:
    texts: list[str] = []
    current = heading
    for line in lines:
        joined = f"{current}\n{line}" if current else line
        if len(joined) <= limit:
            current = joined
        else:
            texts.append(current)
            current = line
    if current:
        texts.append(current)
    return texts
