"""Who and what the page names: people shown in the switcher, and the names mentions resolve to."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.emulator.workspace import Workspace


@dataclass(frozen=True)
class Person:
    """Someone the page can act as; `role` is shown beside the name in the user switcher."""

    user_id: str
    name: str
    role: str = ""


@dataclass(frozen=True)
class Directory:
    """The names Slack's client shows for IDs in text (`<@U…>`, `<#C…>`, `<!subteam^S…>`)."""

    users: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)
    usergroups: dict[str, str] = field(default_factory=dict)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    """The viewer's timezone: dates and message times are shown in it, as Slack does."""

    @classmethod
    def of(cls, workspace: Workspace, viewer: str | None = None) -> Directory:
        """The workspace's names, seen by `viewer` (whose timezone dates are shown in)."""
        person = workspace.user(viewer) if viewer else None
        try:
            tz = ZoneInfo(person.tz) if person is not None else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        return cls(
            users={u.id: u.name for u in workspace.users},
            channels={c.id: c.name for c in workspace.channels if not c.is_im},
            usergroups={g.id: g.handle for g in workspace.usergroups},
            tz=tz,
        )
