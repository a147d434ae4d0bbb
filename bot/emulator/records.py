"""What the emulated workspace holds, each able to show itself in the shape Slack's API uses."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.blockkit import with_block_ids

JSON = dict[str, Any]


@dataclass
class Content:
    """What a message says; shared by channel messages, ephemerals and scheduled messages."""

    text: str = ""
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None

    def stored(self) -> Content:
        """A copy as Slack stores it: every block with a block_id."""
        blocks = with_block_ids(self.blocks) if self.blocks else None
        return Content(self.text, blocks, copy.deepcopy(self.attachments))


@dataclass
class Message:
    """A message in a channel's history or in a thread."""

    channel: str
    ts: str
    user: str
    content: Content
    team: str
    via: str
    """Where it came from: a Web API method, `response_url`, `scheduled` or `user`."""
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    edited: JSON | None = None
    replies: list[str] = field(default_factory=list)
    reply_users: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    tombstone: bool = False
    """Deleted while it had replies: Slack keeps a stub so the thread survives."""

    @property
    def text(self) -> str:
        return self.content.text

    @property
    def blocks(self) -> list[JSON] | None:
        return self.content.blocks

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def reply_count(self) -> int:
        return len(self.replies)

    def to_slack(self) -> JSON:
        if self.tombstone:
            return {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "hidden": True,
                "ts": self.ts,
                "thread_ts": self.ts,
                "reply_count": self.reply_count,
            }
        shown: JSON = {"user": self.user, "type": "message", "ts": self.ts}
        if self.bot_id is not None:
            shown["bot_id"] = self.bot_id
            shown["app_id"] = self.app_id
        shown["text"] = self.content.text
        shown["team"] = self.team
        if self.content.blocks:
            shown["blocks"] = copy.deepcopy(self.content.blocks)
        if self.content.attachments:
            shown["attachments"] = copy.deepcopy(self.content.attachments)
        if self.metadata is not None:
            shown["metadata"] = copy.deepcopy(self.metadata)
        if self.edited is not None:
            shown["edited"] = dict(self.edited)
        if self.thread_ts is not None:
            shown["thread_ts"] = self.thread_ts
        if self.is_reply:
            shown["parent_user_id"] = self.parent_user_id
            if self.reply_broadcast:
                shown["subtype"] = "thread_broadcast"
        elif self.replies:
            shown["reply_count"] = self.reply_count
            shown["reply_users_count"] = len(self.reply_users)
            shown["latest_reply"] = self.replies[-1]
            shown["reply_users"] = list(self.reply_users)
            shown["is_locked"] = False
            shown["subscribed"] = False
        if self.reactions:
            shown["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return shown


@dataclass
class Ephemeral:
    """A message only `user` sees; Slack never puts it in history."""

    channel: str
    user: str
    ts: str
    content: Content
    via: str
    thread_ts: str | None = None
    deleted: bool = False

    @property
    def text(self) -> str:
        return self.content.text

    @property
    def blocks(self) -> list[JSON] | None:
        return self.content.blocks

    def to_slack(self) -> JSON:
        shown: JSON = {"type": "message", "ts": self.ts, "text": self.content.text}
        if self.content.blocks:
            shown["blocks"] = copy.deepcopy(self.content.blocks)
        if self.content.attachments:
            shown["attachments"] = copy.deepcopy(self.content.attachments)
        if self.thread_ts is not None:
            shown["thread_ts"] = self.thread_ts
        return shown


@dataclass
class ScheduledMessage:
    id: str
    channel: str
    post_at: int
    content: Content
    thread_ts: str | None
    delivered_ts: str | None = None


@dataclass
class View:
    """A modal or a Home tab, as the app last defined it and as the user has filled it in."""

    id: str
    type: str
    user: str
    definition: JSON
    """The view object the app sent (title, blocks, callback_id, private_metadata, ...)."""
    hash: str
    team_id: str
    app_id: str
    bot_id: str
    root_view_id: str
    previous_view_id: str | None = None
    closed: bool = False
    errors: dict[str, str] | None = None
    """Per block_id, set by a `response_action: errors` reply to a submission."""
    state_values: JSON = field(default_factory=dict)

    @property
    def blocks(self) -> list[JSON]:
        blocks: list[JSON] = self.definition.get("blocks", [])
        return blocks

    @property
    def callback_id(self) -> str:
        return str(self.definition.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        return str(self.definition.get("private_metadata", ""))

    def to_slack(self) -> JSON:
        shown: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
        }
        definition = copy.deepcopy(self.definition)
        for key in ("title", "close", "submit"):
            if self.type == "modal" or key in definition:
                shown[key] = definition.pop(key, None)
        shown["blocks"] = definition.pop("blocks", [])
        shown["private_metadata"] = definition.pop("private_metadata", "")
        shown["callback_id"] = definition.pop("callback_id", "")
        shown["external_id"] = definition.pop("external_id", "")
        shown["state"] = {"values": copy.deepcopy(self.state_values)}
        shown["hash"] = self.hash
        shown["clear_on_close"] = definition.pop("clear_on_close", False)
        shown["notify_on_close"] = definition.pop("notify_on_close", False)
        definition.pop("type", None)
        shown.update(definition)
        shown["root_view_id"] = self.root_view_id
        shown["previous_view_id"] = self.previous_view_id
        shown["app_id"] = self.app_id
        shown["app_installed_team_id"] = self.team_id
        shown["bot_id"] = self.bot_id
        return shown


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: float
    exchanged: bool = False


@dataclass
class ResponseUrl:
    """A URL the app may post to, up to five times in thirty minutes, to answer one interaction."""

    id: str
    user: str
    channel: str | None
    issued_at: float
    original_ts: str | None = None
    """The message the interaction came from (or the last one posted through this URL)."""
    original_is_ephemeral: bool = False
    uses: int = 0


@dataclass(frozen=True)
class CallRecord:
    """One Web API call as the emulator received and answered it."""

    method: str
    args: JSON
    token: str | None
    http_method: str
    content_type: str
    status: int
    response: JSON
    time: float
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return str(error) if error is not None else None


@dataclass(frozen=True)
class ResponseUrlPost:
    """One post an app made to a response_url, and how the emulator answered it."""

    url_id: str
    body: JSON | None
    status: int
    response: JSON
    time: float


@dataclass(frozen=True)
class Change:
    """One change to the workspace, numbered so a watcher can ask for what it missed."""

    seq: int
    kind: str
    channel: str | None = None
    ts: str | None = None
    user: str | None = None
    view_id: str | None = None
