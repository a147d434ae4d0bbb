"""What a person does on the page, sent through `InteractionClient`: the bot gets what Slack sends.

Each action answers with what Slack's client would show about the request itself: nothing when
the bot acknowledged in time, a warning when it did not; a form Slack would not let through
(a required input left empty, too short or too long) never reaches the bot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.client import Delivery, InteractionClient
from bot.emulator.records import JSON, View
from bot.emulator.workspace import Workspace

TROUBLE_CONNECTING = "We had some trouble connecting. Try again?"
"""What Slack writes in a modal whose submission the app did not acknowledge."""
REQUIRED = "Please complete this required field."


class BadAction(ValueError):
    """A request the page's own script would never send: it names what is wrong."""


@dataclass(frozen=True)
class Outcome:
    """What the page shows about one action (most often nothing), and what was sent."""

    toast: str | None = None
    """A warning as Slack shows one when the app did not answer in time or failed."""
    invalid: dict[str, str] = field(default_factory=dict)
    """Per input block: why Slack's client would not submit the form."""
    modal_error: str | None = None
    notice: str | None = None
    """Said in the composer: what was typed is not something Slack would send to the bot."""
    delivery: Delivery | None = None

    def to_json(self) -> JSON:
        sent = self.delivery
        return {
            "toast": self.toast,
            "invalid": self.invalid,
            "modal_error": self.modal_error,
            "notice": self.notice,
            "delivery": None
            if sent is None
            else {
                "kind": sent.kind,
                "status": sent.status,
                "error": sent.error,
                "elapsed_ms": round(sent.elapsed * 1000, 1),
            },
        }


@dataclass
class Actions:
    """The page's actions for one bot, each as one person of the workspace."""

    workspace: Workspace
    client: InteractionClient
    bot_name: str
    commands: Sequence[str] = ("/promote",)

    def press(self, body: Mapping[str, Any]) -> Outcome:
        """A button on a message or an ephemeral message (its confirm already accepted)."""
        user = self._user(body)
        channel, ts, action_id = _text(body, "channel"), _text(body, "ts"), _text(body, "action_id")
        try:
            sent = self.client.click(
                user, channel, ts, action_id, block_id=_optional(body, "block_id")
            )
        except LookupError as error:
            raise BadAction(str(error)) from None
        return self._acked(sent)

    def press_in_view(self, body: Mapping[str, Any]) -> Outcome:
        """A button in the open modal or on the Home tab."""
        user = self._user(body)
        try:
            sent = self.client.click_in_view(
                user,
                _text(body, "view_id"),
                _text(body, "action_id"),
                block_id=_optional(body, "block_id"),
            )
        except LookupError as error:
            raise BadAction(str(error)) from None
        return self._acked(sent)

    def submit(self, body: Mapping[str, Any]) -> Outcome:
        """The modal's submit button, with what the person typed or chose."""
        user, view_id = self._user(body), _text(body, "view_id")
        view = self.workspace.view(view_id)
        if view is None or view.user != user or view.closed:
            raise BadAction(f"{user} has no open view {view_id}")
        values = _values(body.get("values", {}))
        invalid = check_inputs(view, values)
        if invalid:
            return Outcome(invalid=invalid)
        try:
            sent = self.client.submit_view(user, view_id, _filled(view, values))
        except (LookupError, ValueError) as error:
            raise BadAction(str(error)) from None
        if sent.error is None:
            return Outcome(delivery=sent)
        if sent.status == 200:  # answered, but with something Slack refuses: tell the developer
            return Outcome(toast=f"Slack refused {self.bot_name}'s answer: {sent.error}")
        return Outcome(modal_error=TROUBLE_CONNECTING, delivery=sent)

    def close(self, body: Mapping[str, Any]) -> Outcome:
        """The modal's close button (the bot hears of it only if it asked to)."""
        try:
            sent = self.client.close_view(self._user(body), _text(body, "view_id"))
        except LookupError as error:
            raise BadAction(str(error)) from None
        return Outcome(delivery=sent)

    def command(self, body: Mapping[str, Any]) -> Outcome:
        """What was typed in the composer: a slash command goes to the bot, nothing else does."""
        user, channel = self._user(body), _text(body, "channel")
        typed = str(body.get("text", "")).strip()
        if not typed:
            return Outcome()
        if not typed.startswith("/"):
            shown = " or ".join(f"{c} help" for c in self.commands)
            return Outcome(
                notice=f"Only slash commands reach {self.bot_name} from here: try {shown}."
            )
        command, _, text = typed.partition(" ")
        if command not in self.commands:
            return Outcome(notice=f"{command} is not a valid command.")
        try:
            sent = self.client.slash_command(user, command, text.strip(), channel=channel)
        except LookupError as error:
            raise BadAction(str(error)) from None
        # Slack itself tells the person when the app failed to answer (an ephemeral from
        # Slackbot); a rule the answer broke is the developer's to see.
        if sent.error is not None and sent.status == 200:
            return Outcome(toast=f"Slack refused {self.bot_name}'s answer: {sent.error}")
        return Outcome(delivery=sent)

    def open_home(self, body: Mapping[str, Any]) -> Outcome:
        """The Home tab was opened: Slack sends `app_home_opened` and shows nothing of the ack."""
        return Outcome(delivery=self.client.open_home(self._user(body)))

    def _user(self, body: Mapping[str, Any]) -> str:
        user = _text(body, "user")
        found = self.workspace.user(user)
        if found is None or found.is_bot:
            raise BadAction(f"no person {user} in the workspace")
        return user

    def _acked(self, sent: Delivery | None) -> Outcome:
        if sent is None or sent.error is None:
            return Outcome(delivery=sent)
        if sent.error == "operation_timeout":
            why = "didn't respond in time"
        elif sent.error == "dispatch_failed":
            why = "could not be reached"
        else:
            why = f"failed to respond ({sent.error})"
        return Outcome(toast=f"⚠️ {self.bot_name} {why}. Try again?", delivery=sent)


def check_inputs(view: View, values: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Why Slack's client would keep the modal from being submitted, per input block."""
    invalid: dict[str, str] = {}
    for block in view.blocks:
        if block.get("type") != "input":
            continue
        block_id = str(block.get("block_id"))
        element = block.get("element", {})
        given = values.get(block_id, {}).get(str(element.get("action_id")))
        empty = given is None or (isinstance(given, str) and not given.strip()) or given == []
        if empty:
            if not block.get("optional"):
                invalid[block_id] = REQUIRED
            continue
        if isinstance(given, str):
            least, most = element.get("min_length"), element.get("max_length")
            if isinstance(least, int) and len(given) < least:
                invalid[block_id] = f"Please enter at least {least} characters."
            elif isinstance(most, int) and len(given) > most:
                invalid[block_id] = f"Please enter at most {most} characters."
    return invalid


def _filled(view: View, values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The values to submit: inputs left empty are sent as Slack sends them, empty."""
    known = {
        (str(b.get("block_id")), str(b.get("element", {}).get("action_id")))
        for b in view.blocks
        if b.get("type") == "input"
    }
    filled: dict[str, dict[str, Any]] = {}
    for block_id, by_action in values.items():
        for action_id, value in by_action.items():
            if (block_id, action_id) not in known:
                raise BadAction(f"the view has no input {block_id}/{action_id}")
            if value not in (None, "", []):
                filled.setdefault(block_id, {})[action_id] = value
    return filled


def _values(raw: object) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) for v in raw.values()):
        raise BadAction("values must be {block_id: {action_id: value}}")
    return {str(b): {str(a): v for a, v in by.items()} for b, by in raw.items()}


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadAction(f"`{key}` is missing")
    return value


def _optional(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None
