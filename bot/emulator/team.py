"""Who and where: the app's identity in the team, its people, user groups and channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.emulator.records import JSON


@dataclass(frozen=True)
class Identity:
    """Who the app is in the emulated workspace, and the secrets it shares with Slack."""

    team_id: str = "T0GATEKPR"
    team_name: str = "Gatekeeper Demo"
    team_domain: str = "gatekeeper-demo"
    app_id: str = "A0GATEKPR"
    bot_id: str = "B0GATEKPR"
    bot_user_id: str = "U0GATEBOT"
    bot_name: str = "gatekeeper"
    bot_token: str = "xoxb-test"
    app_token: str | None = "xapp-test"
    signing_secret: str = "emulator-signing-secret"
    verification_token: str = "emulator-verification-token"
    """The deprecated `token` field Slack still puts in every payload."""


@dataclass
class User:
    id: str
    name: str
    real_name: str
    team_id: str
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False
    email: str | None = None
    tz: str = "Europe/Berlin"
    bot_id: str | None = None

    def to_slack(self) -> JSON:
        profile: JSON = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "status_text": "",
            "status_emoji": "",
            "team": self.team_id,
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id is not None:
            profile["bot_id"] = self.bot_id
        now = datetime.now(UTC).astimezone(ZoneInfo(self.tz))
        offset = now.utcoffset()
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": now.tzname(),
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "updated": 1764230400,
            "is_app_user": False,
            "has_2fa": False,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    team_id: str
    users: list[str]
    description: str = ""
    disabled: bool = False
    created: int = 1764230400

    def to_slack(self, *, include_users: bool, include_count: bool) -> JSON:
        shown: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": self.created,
            "date_update": self.created,
            "date_delete": self.created if self.disabled else 0,
            "auto_type": None,
            "created_by": "USLACKBOT",
            "updated_by": "USLACKBOT",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
        }
        if include_users:
            shown["users"] = list(self.users)
        if include_count:
            shown["user_count"] = str(len(self.users))
        return shown


@dataclass
class Channel:
    id: str
    name: str
    team_id: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    members: set[str] | None = None
    """None: every user of the workspace is a member."""
    bot_is_member: bool = True
    created: int = 1764230400

    def has_member(self, user_id: str) -> bool:
        return self.members is None or user_id in self.members

    def to_slack(self) -> JSON:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_open": True,
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_frozen": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "parent_conversation": None,
            "creator": "USLACKBOT",
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": self.bot_is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }
