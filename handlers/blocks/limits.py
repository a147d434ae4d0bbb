"""The bot's last guard before it sends: finished payloads held to Slack's Block Kit limits.

slack_sdk's model classes check most lengths while a payload is built, but not the block count,
duplicate IDs or the fallback text; `bot.blockkit` checks all of them on plain dicts, so tests
can hold every renderer to it and a sender can use it as a last guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.blockkit import VIEW_TYPES, Problem, message_problems, view_problems

__all__ = ["BlockKitLimitExceeded", "Problem", "check", "problems"]


class BlockKitLimitExceeded(ValueError):
    """A payload Slack would refuse; `problems` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = tuple(problems)


def check(payload: Mapping[str, Any]) -> None:
    """Raise ``BlockKitLimitExceeded`` listing every problem of a message or view payload."""
    found = problems(payload)
    if found:
        raise BlockKitLimitExceeded(found)


def problems(payload: Mapping[str, Any]) -> list[Problem]:
    """Every limit a message (``text`` + ``blocks``) or view (``type`` modal/home) breaks."""
    kind = payload.get("type")
    if kind in VIEW_TYPES:
        return view_problems(payload, kind)
    return message_problems(payload)
