"""The emulated workspace: everything Slack would show, kept in order, watchable from any thread.

The Web API (server thread), the signed client and tests (their own threads) all change and
read it; one lock guards it. Readers get deep copies, so a snapshot never changes under them.
Every change is numbered (`changes_since`) and announced (`subscribe`, `wait_for`), which is
what a live page on top of it needs.
"""

from __future__ import annotations

import copy

from bot.emulator.clock import Clock, system_clock
from bot.emulator.errors import SlackError
from bot.emulator.records import (
    JSON,
    CallRecord,
    Content,
    Ephemeral,
    Message,
    ResponseUrlPost,
    ScheduledMessage,
)
from bot.emulator.roster import Roster
from bot.emulator.surfaces import Surfaces
from bot.emulator.team import Identity


class Workspace(Roster, Surfaces):
    """One Slack team as the app sees it: people, channels, messages, views, and every call."""

    def __init__(self, identity: Identity, clock: Clock = system_clock) -> None:
        super().__init__(identity, clock)
        self._history: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._scheduled: list[ScheduledMessage] = []
        self._calls: list[CallRecord] = []
        self._response_posts: list[ResponseUrlPost] = []

    # --- messages ------------------------------------------------------------------------------
    def _find(self, channel: str, ts: str) -> Message | None:
        for message in self._history.get(channel, []):
            if message.ts == ts:
                return message
        return None

    def post(
        self,
        channel: str,
        content: Content,
        *,
        user: str | None = None,
        via: str = "chat.postMessage",
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
    ) -> Message:
        """Add a message to a channel (or to a thread): from the app, or from `user`."""
        with self._lock:
            if channel not in self._channels:
                raise SlackError("channel_not_found")
            parent = None
            if thread_ts is not None:
                parent = self._find(channel, thread_ts)
                if parent is None:
                    raise SlackError("invalid_arguments", [f"no message {thread_ts} to reply to"])
                if parent.is_reply:  # Slack threads a reply to a reply under the root
                    parent = self._find(channel, str(parent.thread_ts))
                    assert parent is not None
            from_app = user is None
            message = Message(
                channel=channel,
                ts=self.next_ts(),
                user=self.identity.bot_user_id if from_app else str(user),
                content=content.stored(),
                team=self.identity.team_id,
                via=via,
                bot_id=self.identity.bot_id if from_app else None,
                app_id=self.identity.app_id if from_app else None,
                thread_ts=parent.ts if parent else None,
                parent_user_id=parent.user if parent else None,
                reply_broadcast=reply_broadcast and parent is not None,
                metadata=copy.deepcopy(metadata),
            )
            self._history.setdefault(channel, []).append(message)
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.replies.append(message.ts)
                if message.user not in parent.reply_users:
                    parent.reply_users.append(message.user)
            self._changed("message_posted", channel=channel, ts=message.ts, user=message.user)
            return copy.deepcopy(message)

    def update(
        self,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        """Change a message in place; what is None is kept, as chat.update keeps it."""
        with self._lock:
            message = self._find(channel, ts)
            if message is None or message.tombstone:
                raise SlackError("message_not_found")
            if text is not None:
                message.content.text = text
            if blocks is not None:
                message.content.blocks = Content(blocks=blocks).stored().blocks
            if attachments is not None:
                message.content.attachments = copy.deepcopy(attachments) or None
            if metadata is not None:
                message.metadata = copy.deepcopy(metadata) or None
            message.edited = {"user": message.user, "ts": self.next_ts()}
            self._changed("message_updated", channel=channel, ts=ts)
            return copy.deepcopy(message)

    def delete(self, channel: str, ts: str) -> None:
        """Remove a message; a thread's root with replies leaves a tombstone, as in Slack."""
        with self._lock:
            message = self._find(channel, ts)
            if message is None or message.tombstone:
                raise SlackError("message_not_found")
            if message.is_reply:
                parent = self._find(channel, str(message.thread_ts))
                if parent is not None and ts in parent.replies:
                    parent.replies.remove(ts)
            if message.replies:
                message.tombstone = True
            else:
                self._history[channel].remove(message)
            self._changed("message_deleted", channel=channel, ts=ts)

    def react(self, channel: str, ts: str, name: str, user: str, *, add: bool) -> None:
        """Add or remove `user`'s reaction `name` on a message."""
        with self._lock:
            message = self._find(channel, ts)
            if message is None or message.tombstone:
                raise SlackError("message_not_found")
            users = message.reactions.setdefault(name, [])
            if add:
                if user in users:
                    raise SlackError("already_reacted")
                users.append(user)
            else:
                if user not in users:
                    raise SlackError("no_reaction")
                users.remove(user)
            if not users:
                del message.reactions[name]
            self._changed(
                "reaction_added" if add else "reaction_removed", channel=channel, ts=ts, user=user
            )

    def post_ephemeral(
        self, channel: str, user: str, content: Content, *, via: str, thread_ts: str | None = None
    ) -> Ephemeral:
        """Show a message to one person in a channel; it never enters history."""
        with self._lock:
            ephemeral = Ephemeral(channel, user, self.next_ts(), content.stored(), via, thread_ts)
            self._ephemerals.append(ephemeral)
            self._changed("ephemeral_posted", channel=channel, ts=ephemeral.ts, user=user)
            return copy.deepcopy(ephemeral)

    def replace_ephemeral(self, ts: str, content: Content | None) -> None:
        """Replace (or, with None, delete) an ephemeral message, as a response_url may."""
        with self._lock:
            for ephemeral in self._ephemerals:
                if ephemeral.ts == ts and not ephemeral.deleted:
                    if content is None:
                        ephemeral.deleted = True
                    else:
                        ephemeral.content = content.stored()
                    self._changed(
                        "ephemeral_changed", channel=ephemeral.channel, ts=ts, user=ephemeral.user
                    )
                    return
            raise SlackError("message_not_found")

    def schedule(
        self, channel: str, post_at: int, content: Content, thread_ts: str | None
    ) -> ScheduledMessage:
        """Keep a message to post once the clock reaches `post_at`."""
        with self._lock:
            scheduled = ScheduledMessage(
                self._new_id("Q"), channel, post_at, copy.deepcopy(content), thread_ts
            )
            self._scheduled.append(scheduled)
            self._changed("message_scheduled", channel=channel)
            return copy.deepcopy(scheduled)

    def deliver_due(self) -> int:
        """Post every scheduled message whose time has come; how many were posted."""
        with self._lock:
            due = [
                s for s in self._scheduled if s.delivered_ts is None and s.post_at <= self.clock()
            ]
            for scheduled in due:
                message = self.post(
                    scheduled.channel,
                    scheduled.content,
                    via="scheduled",
                    thread_ts=scheduled.thread_ts,
                )
                scheduled.delivered_ts = message.ts
            return len(due)

    # --- reading -------------------------------------------------------------------------------
    def messages(self, channel: str) -> list[Message]:
        """A channel's history, oldest first: top-level messages and broadcast replies."""
        with self._lock:
            shown = [
                m for m in self._history.get(channel, []) if not m.is_reply or m.reply_broadcast
            ]
            return copy.deepcopy(shown)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies to the message `ts`, oldest first (the root itself left out)."""
        with self._lock:
            shown = [m for m in self._history.get(channel, []) if m.is_reply and m.thread_ts == ts]
            return copy.deepcopy(shown)

    def message(self, channel: str, ts: str) -> Message | None:
        """A message or reply by its ts."""
        with self._lock:
            return copy.deepcopy(self._find(channel, ts))

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages still shown, oldest first, optionally for one channel or person."""
        with self._lock:
            shown = [
                e
                for e in self._ephemerals
                if not e.deleted
                and (channel is None or e.channel == channel)
                and (user is None or e.user == user)
            ]
            return copy.deepcopy(shown)

    @property
    def scheduled(self) -> list[ScheduledMessage]:
        with self._lock:
            return copy.deepcopy(self._scheduled)

    # --- what the app asked and was answered ---------------------------------------------------
    def record_call(self, record: CallRecord) -> None:
        with self._lock:
            self._calls.append(record)
            self._changed("api_called")

    def record_response_post(self, post: ResponseUrlPost) -> None:
        with self._lock:
            self._response_posts.append(post)
            self._changed("response_url_posted")

    @property
    def calls(self) -> list[CallRecord]:
        """Every Web API call, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[CallRecord]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    @property
    def response_posts(self) -> list[ResponseUrlPost]:
        """Every post the app made to a response_url, oldest first."""
        with self._lock:
            return list(self._response_posts)
