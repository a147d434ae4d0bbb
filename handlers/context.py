"""Who pressed what, where: the few fields listeners need, read once from Slack's payloads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Slack's IDs (U…, W…, T…, C…, A…): capitals and digits. The IDs read here are stored (votes,
#: the audit log) and sent back to Slack, so anything else a payload carries reads as absent.
_SLACK_ID = re.compile(r"[A-Z0-9]{1,32}")


def slack_id(value: object) -> str | None:
    """``value`` if it is shaped like a Slack ID, else None."""
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Origin:
    user: str
    channel: str | None
    team: str | None

    @staticmethod
    def of(body: dict[str, Any]) -> Origin:
        """Works for slash commands (flat form fields) and interactive payloads (nested)."""
        if "user_id" in body:
            return Origin(
                slack_id(body["user_id"]) or "",
                slack_id(body.get("channel_id")),
                slack_id(body.get("team_id")),
            )
        user = _object(body.get("user"))
        channel = _object(body.get("channel")).get("id") or _object(body.get("container")).get(
            "channel_id"
        )
        team = _object(body.get("team")).get("id") or user.get("team_id")
        return Origin(slack_id(user.get("id")) or "", slack_id(channel), slack_id(team))
