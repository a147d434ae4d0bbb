"""One Web API call as a method sees it: arguments read Slack's lenient way, workspace, warnings."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.errors import SlackError
from bot.emulator.records import JSON
from bot.emulator.reference import MethodReference
from bot.emulator.workspace import Workspace

_TRUE = {"true", "1", "yes"}


class Arguments:
    """Arguments from a query string, a form or a JSON body: strings or JSON values alike."""

    def __init__(self, values: JSON) -> None:
        self.values = values

    def present(self, name: str) -> bool:
        """Given and not empty: Slack treats `channel=` like no channel at all."""
        return self.values.get(name) not in (None, "")

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)

    def required(self, name: str) -> str:
        """An argument the dispatcher has already checked is present."""
        value = self.string(name)
        assert value is not None, f"{name} should have been checked as required"
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in _TRUE

    def integer(self, name: str, error: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise SlackError(error)
        try:
            return int(value)
        except (TypeError, ValueError):
            try:
                return int(float(value))
            except (TypeError, ValueError):
                raise SlackError(error) from None

    def json(self, name: str, error: str) -> Any:
        """A JSON argument: form bodies carry it as a string, JSON bodies as the value itself."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error, [f"[ERROR] {name} is not valid JSON"]) from None


@dataclass
class Call:
    """What a method handler gets: the reference, the arguments and the workspace."""

    reference: MethodReference
    args: Arguments
    workspace: Workspace
    warnings: list[str] = field(default_factory=list)

    def error(self, preferred: str, fallback: str = "invalid_arguments") -> str:
        """`preferred` if this method's reference lists it, else `fallback` (Slack's catch-all)."""
        return preferred if preferred in self.reference.errors else fallback


Handler = Callable[[Call], JSON]
"""A Web API method: returns the response body without `ok`, or raises SlackError."""
