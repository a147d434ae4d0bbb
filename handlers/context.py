"""Who pressed what, where: the few fields listeners need, read once from Slack's payloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Origin:
    user: str
    channel: str | None
    team: str | None

    @staticmethod
    def of(body: dict[str, Any]) -> Origin:
        """Works for slash commands (flat form fields) and interactive payloads (nested)."""
        if "user_id" in body:
            return Origin(body["user_id"], body.get("channel_id"), body.get("team_id"))
        user = body.get("user") or {}
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        team = (body.get("team") or {}).get("id") or user.get("team_id")
        return Origin(user.get("id", ""), channel, team)
