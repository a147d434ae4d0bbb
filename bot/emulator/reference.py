"""Slack's own per-method references, loaded so the emulator refuses what Slack refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.emulator.facts import MISSING_ARGUMENT_ERRORS


@dataclass(frozen=True)
class MethodReference:
    """What one Web API method accepts and how it may fail, as Slack documents it."""

    name: str
    http_method: str
    json_input_supported: bool
    required: tuple[str, ...]
    """Required arguments, `token` left out (authentication is checked first, separately)."""
    arguments: frozenset[str]
    errors: frozenset[str]
    examples: dict[str, Any]

    def missing_argument_error(self, argument: str) -> str:
        """The code Slack answers when `argument` is missing or empty."""
        code = MISSING_ARGUMENT_ERRORS.get(self.name, {}).get(argument)
        return code if code in self.errors else "invalid_arguments"

    def example(self, name: str = "success") -> dict[str, Any]:
        """One of the reference's example responses (a fresh copy, safe to change)."""
        found = self.examples.get(name, {}).get("example", {})
        copied: dict[str, Any] = json.loads(json.dumps(found))
        return copied


def _parse(name: str, document: dict[str, Any]) -> MethodReference:
    args = document.get("args", {})
    return MethodReference(
        name=name,
        http_method=str(document.get("http_method", "POST")),
        json_input_supported=bool(document.get("json_input_supported", False)),
        required=tuple(a for a in args.get("required", []) if a != "token"),
        arguments=frozenset(args.get("properties", {})),
        errors=frozenset(document.get("errors", {})),
        examples=dict(document.get("examples", {})),
    )


def load_references(directory: Path | None = None) -> dict[str, MethodReference]:
    """Every `<method>.json` in `directory`, or in the copy shipped with this package."""
    if directory is not None:
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.json"))}
        where = str(directory)
    else:
        shipped = resources.files("bot.emulator") / "slack_ref"
        files = {
            entry.name: entry.read_text(encoding="utf-8")
            for entry in shipped.iterdir()
            if entry.name.endswith(".json")
        }
        where = "bot/emulator/slack_ref (package data)"
    if not files:
        raise FileNotFoundError(f"no Slack method references (*.json) found in {where}")
    return {
        name.removesuffix(".json"): _parse(name.removesuffix(".json"), json.loads(text))
        for name, text in files.items()
    }
