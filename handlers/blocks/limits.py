"""Block Kit's limits checked on finished payloads, because Slack rejects what breaks them.

slack_sdk's model classes check most lengths while a payload is built, but not the block count,
field lengths, duplicate IDs or the fallback text; this checks all of them on plain dicts, so
tests can hold every renderer to it and a sender can use it as a last guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000
TEXT = 3000
FIELD = 2000
HEADER = 150
FIELDS = 10
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
ID = 255
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
LABEL = 2000
PLACEHOLDER = 150
CONFIRM_TITLE, CONFIRM_TEXT, CONFIRM_BUTTON = 100, 300, 30
VIEW_TYPES = ("modal", "home")


@dataclass(frozen=True)
class Problem:
    """One thing Slack would reject, located by JSON pointer."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class BlockKitLimitExceeded(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = tuple(problems)


def check(payload: Mapping[str, Any]) -> None:
    """Raise ``BlockKitLimitExceeded`` listing every problem of a message or view payload."""
    found = problems(payload)
    if found:
        raise BlockKitLimitExceeded(found)


def problems(payload: Mapping[str, Any]) -> list[Problem]:
    """Every limit a message (``text`` + ``blocks``) or view (``type`` modal/home) breaks."""
    checker = _Checker()
    if payload.get("type") in VIEW_TYPES:
        checker.view(payload)
    else:
        checker.string(payload.get("text"), "/text", MESSAGE_TEXT, required=True)
        checker.blocks(payload.get("blocks", []), "/blocks", MESSAGE_BLOCKS)
    return checker.found


class _Checker:
    def __init__(self) -> None:
        self.found: list[Problem] = []
        self.block_ids: set[str] = set()

    def add(self, pointer: str, message: str) -> None:
        self.found.append(Problem(pointer, message))

    def string(self, value: object, pointer: str, limit: int, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.add(pointer, "missing")
        elif not isinstance(value, str):
            self.add(pointer, "must be a string")
        elif required and not value.strip():
            self.add(pointer, "must not be empty")
        elif len(value) > limit:
            self.add(pointer, f"{len(value)} characters, more than {limit}")

    def text(self, obj: object, pointer: str, limit: int, *, plain: bool = False) -> None:
        if not isinstance(obj, Mapping):
            self.add(pointer, "must be a text object")
            return
        allowed = ("plain_text",) if plain else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            self.add(f"{pointer}/type", f"must be {' or '.join(allowed)}")
        self.string(obj.get("text"), f"{pointer}/text", limit, required=True)

    def view(self, view: Mapping[str, Any]) -> None:
        modal = view.get("type") == "modal"
        for key in ("title", "submit", "close"):
            if view.get(key) is not None:
                if not modal:
                    self.add(f"/{key}", "a home tab has no title, submit or close")
                self.text(view[key], f"/{key}", VIEW_TITLE, plain=True)
        if modal and view.get("title") is None:
            self.add("/title", "missing")
        self.string(view.get("private_metadata"), "/private_metadata", PRIVATE_METADATA)
        self.string(view.get("callback_id"), "/callback_id", ID)
        blocks = view.get("blocks")
        self.blocks(blocks, "/blocks", VIEW_BLOCKS)
        has_input = isinstance(blocks, list) and any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
        )
        if modal and has_input and view.get("submit") is None:
            self.add("/submit", "a modal with inputs needs a submit button")

    def blocks(self, blocks: object, pointer: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.add(pointer, "must be a list of blocks")
            return
        if len(blocks) > limit:
            self.add(pointer, f"{len(blocks)} blocks, more than {limit}")
        for index, block in enumerate(blocks):
            if isinstance(block, Mapping):
                self.block(block, f"{pointer}/{index}")
            else:
                self.add(f"{pointer}/{index}", "must be a block object")

    def block(self, block: Mapping[str, Any], at: str) -> None:
        block_id = block.get("block_id")
        self.string(block_id, f"{at}/block_id", ID)
        if isinstance(block_id, str):
            if block_id in self.block_ids:
                self.add(f"{at}/block_id", f"duplicate block_id {block_id!r}")
            self.block_ids.add(block_id)
        kind = block.get("type")
        if kind == "header":
            self.text(block.get("text"), f"{at}/text", HEADER, plain=True)
        elif kind == "section":
            self.section(block, at)
        elif kind == "context":
            self.elements(block.get("elements"), f"{at}/elements", CONTEXT_ELEMENTS)
        elif kind == "actions":
            self.elements(block.get("elements"), f"{at}/elements", ACTIONS_ELEMENTS)
        elif kind == "input":
            self.text(block.get("label"), f"{at}/label", LABEL, plain=True)
            if block.get("hint") is not None:
                self.text(block["hint"], f"{at}/hint", LABEL, plain=True)
            self.element(block.get("element"), f"{at}/element")

    def section(self, block: Mapping[str, Any], at: str) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            self.add(at, "a section needs text or fields")
        if text is not None:
            self.text(text, f"{at}/text", TEXT)
        if fields is not None:
            if not isinstance(fields, list):
                self.add(f"{at}/fields", "must be a list")
                return
            if len(fields) > FIELDS:
                self.add(f"{at}/fields", f"{len(fields)} fields, more than {FIELDS}")
            for index, field in enumerate(fields):
                self.text(field, f"{at}/fields/{index}", FIELD)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{at}/accessory")

    def elements(self, elements: object, at: str, limit: int) -> None:
        if not isinstance(elements, list) or not elements:
            self.add(at, "must be a non-empty list")
            return
        if len(elements) > limit:
            self.add(at, f"{len(elements)} elements, more than {limit}")
        action_ids: set[str] = set()
        for index, element in enumerate(elements):
            self.element(element, f"{at}/{index}")
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self.add(f"{at}/{index}/action_id", f"duplicate action_id {action_id!r}")
                action_ids.add(action_id)

    def element(self, element: object, at: str) -> None:
        if not isinstance(element, Mapping):
            self.add(at, "must be an element object")
            return
        kind = element.get("type")
        if kind in ("plain_text", "mrkdwn"):
            self.text(element, at, TEXT)
            return
        self.string(element.get("action_id"), f"{at}/action_id", ID)
        if kind == "button":
            self.text(element.get("text"), f"{at}/text", BUTTON_TEXT, plain=True)
            self.string(element.get("value"), f"{at}/value", BUTTON_VALUE)
            self.string(element.get("url"), f"{at}/url", URL)
            if element.get("style") not in (None, "primary", "danger"):
                self.add(f"{at}/style", "must be primary or danger")
        elif kind == "plain_text_input":
            if element.get("placeholder") is not None:
                self.text(element["placeholder"], f"{at}/placeholder", PLACEHOLDER, plain=True)
            self.string(element.get("initial_value"), f"{at}/initial_value", TEXT)
            for key in ("min_length", "max_length"):
                bound = element.get(key)
                if bound is not None and not (isinstance(bound, int) and 0 <= bound <= TEXT):
                    self.add(f"{at}/{key}", f"must be a whole number from 0 to {TEXT}")
        if element.get("confirm") is not None:
            self.confirm(element["confirm"], f"{at}/confirm")

    def confirm(self, confirm: object, at: str) -> None:
        if not isinstance(confirm, Mapping):
            self.add(at, "must be a confirm object")
            return
        self.text(confirm.get("title"), f"{at}/title", CONFIRM_TITLE, plain=True)
        self.text(confirm.get("text"), f"{at}/text", CONFIRM_TEXT)
        self.text(confirm.get("confirm"), f"{at}/confirm", CONFIRM_BUTTON, plain=True)
        self.text(confirm.get("deny"), f"{at}/deny", CONFIRM_BUTTON, plain=True)
