"""Modals, Home tabs and the single-use handles (trigger_id, response_url) that reach them."""

from __future__ import annotations

import copy
import secrets

from bot.emulator import facts
from bot.emulator.blockkit import with_block_ids
from bot.emulator.clock import Clock
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON, ResponseUrl, Trigger, View
from bot.emulator.state import WatchedState
from bot.emulator.team import Identity


def _stored(definition: JSON) -> JSON:
    """A copy of a view as Slack stores it: every block with a block_id."""
    stored = copy.deepcopy(definition)
    if isinstance(stored.get("blocks"), list):
        stored["blocks"] = with_block_ids(stored["blocks"])
    return stored


class Surfaces(WatchedState):
    """The part of the workspace that lives outside channels."""

    def __init__(self, identity: Identity, clock: Clock) -> None:
        super().__init__(identity, clock)
        self._views: dict[str, View] = {}
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}

    def _new_hash(self) -> str:
        return f"{int(self.clock())}.{secrets.token_hex(4)}"

    # --- trigger_id ----------------------------------------------------------------------------
    def issue_trigger(self, user: str) -> str:
        """A fresh trigger_id for `user`, valid once within three seconds (Slack's rule)."""
        with self._lock:
            now = self.clock()
            trigger_id = f"{int(now)}.{next(self._ids)}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = Trigger(trigger_id, user, now)
            return trigger_id

    def exchange_trigger(self, trigger_id: str) -> Trigger:
        """Use up a trigger_id, or refuse it with views.open's error codes."""
        with self._lock:
            trigger = self._triggers.get(trigger_id)
            if trigger is None:
                raise SlackError("invalid_trigger_id")
            if trigger.exchanged:
                raise SlackError("exchanged_trigger_id")
            if self.clock() - trigger.issued_at > facts.TRIGGER_TTL_SECONDS:
                raise SlackError("expired_trigger_id")
            trigger.exchanged = True
            return copy.deepcopy(trigger)

    # --- views ---------------------------------------------------------------------------------
    def _check_external_id(self, definition: JSON, except_view: str | None = None) -> None:
        external_id = definition.get("external_id")
        if not external_id:
            return
        for view in self._views.values():
            if view.id != except_view and view.definition.get("external_id") == external_id:
                raise SlackError("duplicate_external_id")

    def _new_view(self, user: str, kind: str, definition: JSON, root: str | None) -> View:
        view_id = self._new_id("V")
        view = View(
            id=view_id,
            type=kind,
            user=user,
            definition=_stored(definition),
            hash=self._new_hash(),
            team_id=self.identity.team_id,
            app_id=self.identity.app_id,
            bot_id=self.identity.bot_id,
            root_view_id=root or view_id,
        )
        self._views[view_id] = view
        return view

    def open_view(self, user: str, definition: JSON) -> View:
        """Open a modal as the root of a new stack (closing any the person had open)."""
        with self._lock:
            self._check_external_id(definition)
            for view in self._views.values():
                if view.user == user and view.type == "modal":
                    view.closed = True
            view = self._new_view(user, "modal", definition, None)
            self._changed("view_opened", user=user, view_id=view.id)
            return copy.deepcopy(view)

    def push_view(self, user: str, definition: JSON) -> View:
        """Put a modal on top of the person's open stack."""
        with self._lock:
            stack = self._stack(user)
            if not stack:
                raise SlackError("not_found")
            self._check_external_id(definition)
            view = self._new_view(user, "modal", definition, stack[0].id)
            view.previous_view_id = stack[-1].id
            self._changed("view_pushed", user=user, view_id=view.id)
            return copy.deepcopy(view)

    def update_view(
        self,
        definition: JSON,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        expected_hash: str | None = None,
    ) -> View:
        """Replace an open modal's definition (by view_id or external_id), Slack's way."""
        with self._lock:
            view = self._views.get(view_id) if view_id else None
            if view is None and external_id:
                view = next(
                    (
                        v
                        for v in self._views.values()
                        if v.definition.get("external_id") == external_id
                    ),
                    None,
                )
            if view is None or view.closed:
                raise SlackError("not_found")
            if expected_hash is not None and expected_hash != view.hash:
                raise SlackError("hash_conflict")
            self._check_external_id(definition, except_view=view.id)
            view.definition = _stored(definition)
            view.hash = self._new_hash()
            view.errors = None
            self._changed("view_updated", user=view.user, view_id=view.id)
            return copy.deepcopy(view)

    def publish_home(self, user: str, definition: JSON, expected_hash: str | None = None) -> View:
        """Set a person's Home tab."""
        with self._lock:
            current = self._views.get(self._homes.get(user, ""))
            if current is None:
                self._check_external_id(definition)
                current = self._new_view(user, "home", definition, None)
                self._homes[user] = current.id
            else:
                if expected_hash is not None and expected_hash != current.hash:
                    raise SlackError("hash_conflict")
                self._check_external_id(definition, except_view=current.id)
                current.definition = _stored(definition)
                current.hash = self._new_hash()
            self._changed("home_published", user=user, view_id=current.id)
            return copy.deepcopy(current)

    def close_view(self, view_id: str, *, whole_stack: bool = False) -> None:
        """Close a modal (and, with `whole_stack`, every modal under it)."""
        with self._lock:
            view = self._views.get(view_id)
            if view is None or view.closed:
                raise SlackError("not_found")
            closing = self._stack(view.user) if whole_stack else [view]
            for each in closing:
                each.closed = True
            self._changed("view_closed", user=view.user, view_id=view_id)

    def set_view_errors(self, view_id: str, errors: dict[str, str]) -> None:
        """Show errors beside input blocks, as a `response_action: errors` reply does."""
        with self._lock:
            view = self._views[view_id]
            view.errors = dict(errors)
            self._changed("view_errors", user=view.user, view_id=view_id)

    def set_view_state(self, view_id: str, values: JSON) -> None:
        """Record what the person has entered in a view's inputs."""
        with self._lock:
            view = self._views[view_id]
            view.state_values = copy.deepcopy(values)
            self._changed("view_state", user=view.user, view_id=view_id)

    def _stack(self, user: str) -> list[View]:
        return [
            v for v in self._views.values() if v.user == user and v.type == "modal" and not v.closed
        ]

    @property
    def views(self) -> list[View]:
        """Every view ever opened or published, in order, closed ones included."""
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def view(self, view_id: str) -> View | None:
        with self._lock:
            return copy.deepcopy(self._views.get(view_id))

    def modals(self, user: str) -> list[View]:
        """The person's open modal stack, root first."""
        with self._lock:
            return copy.deepcopy(self._stack(user))

    def home(self, user: str) -> View | None:
        """The person's Home tab, if the app has published one."""
        with self._lock:
            return copy.deepcopy(self._views.get(self._homes.get(user, "")))

    # --- response_url --------------------------------------------------------------------------
    def issue_response_url(
        self,
        user: str,
        channel: str | None,
        *,
        original_ts: str | None = None,
        original_is_ephemeral: bool = False,
    ) -> str:
        """A response_url for one interaction, served by the emulator."""
        with self._lock:
            url_id = secrets.token_hex(12)
            self._response_urls[url_id] = ResponseUrl(
                url_id, user, channel, self.clock(), original_ts, original_is_ephemeral
            )
            return f"{self.base_url}response/{url_id}"

    def use_response_url(self, url_id: str) -> ResponseUrl:
        """Count one use of a response_url, or refuse it as expired or used up."""
        with self._lock:
            found = self._response_urls.get(url_id)
            if found is None or self.clock() - found.issued_at > facts.RESPONSE_URL_TTL_SECONDS:
                raise SlackError("expired_url")
            if found.uses >= facts.RESPONSE_URL_USES_MAX:
                raise SlackError("used_url")
            found.uses += 1
            return copy.deepcopy(found)

    def remember_response_original(self, url_id: str, ts: str, *, ephemeral: bool) -> None:
        """Make `ts` what `replace_original` refers to, unless the URL already has an original.

        A slash command has no message of its own: the first one shown in reply becomes it.
        """
        with self._lock:
            found = self._response_urls.get(url_id)
            if found is not None and found.original_ts is None:
                found.original_ts = ts
                found.original_is_ephemeral = ephemeral
