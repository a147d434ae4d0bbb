"""Block Kit validation for plain dicts, because slack_sdk checks none of Slack's limits on them.

Problems read as Slack writes them in `response_metadata.messages`:
``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.emulator import facts as f


@dataclass(frozen=True)
class Problem:
    """One thing Slack would reject, located by JSON pointer."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"[ERROR] {self.message} [json-pointer:{self.pointer}]"


def is_block_list(blocks: object) -> bool:
    """Whether `blocks` is what Slack parses at all: a JSON array of objects."""
    return isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, message))

    def string(self, value: object, pointer: str, limit: int, *, required: bool = True) -> None:
        if value is None:
            if required:
                self.add(pointer, "missing required field")
            return
        if not isinstance(value, str):
            self.add(pointer, "must be a string")
        elif len(value) > limit:
            self.add(pointer, f"must be less than {limit + 1} characters")

    def text(
        self,
        obj: object,
        pointer: str,
        limit: int,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.add(pointer, "missing required field")
            return
        if not isinstance(obj, dict):
            self.add(pointer, "must provide an object")
            return
        kind = obj.get("type")
        allowed = {"plain_text"} if plain_only else f.TEXT_OBJECT_TYPES
        if kind not in allowed:
            self.add(f"{pointer}/type", "must be a valid enum value")
        text = obj.get("text")
        if not isinstance(text, str):
            self.add(f"{pointer}/text", "missing required field")
        elif not text:
            self.add(f"{pointer}/text", "must be more than 0 characters")
        elif len(text) > limit:
            self.add(f"{pointer}/text", f"must be less than {limit + 1} characters")

    def items(self, value: object, pointer: str, low: int, high: int) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            self.add(pointer, "must provide an array")
            return []
        if len(value) < low:
            self.add(pointer, f"must provide at least {low} items")
        if len(value) > high:
            self.add(pointer, f"no more than {high} items allowed")
        good = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                good.append(item)
            else:
                self.add(f"{pointer}/{i}", "must provide an object")
        return good

    def confirm(self, obj: object, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.add(pointer, "must provide an object")
            return
        self.text(obj.get("title"), f"{pointer}/title", f.CONFIRM_TITLE_MAX, plain_only=True)
        self.text(obj.get("text"), f"{pointer}/text", f.CONFIRM_TEXT_MAX)
        self.text(obj.get("confirm"), f"{pointer}/confirm", f.CONFIRM_BUTTON_MAX, plain_only=True)
        self.text(obj.get("deny"), f"{pointer}/deny", f.CONFIRM_BUTTON_MAX, plain_only=True)

    def options(self, value: object, pointer: str, low: int, high: int) -> None:
        for i, option in enumerate(self.items(value, pointer, low, high)):
            self.text(option.get("text"), f"{pointer}/{i}/text", f.OPTION_TEXT_MAX)
            self.string(option.get("value"), f"{pointer}/{i}/value", f.OPTION_VALUE_MAX)

    def element(self, element: dict[str, Any], pointer: str) -> None:
        kind = element.get("type")
        if kind not in f.ELEMENT_TYPES:
            self.add(f"{pointer}/type", "must be a valid enum value")
            return
        if kind == "image":
            self.string(element.get("image_url"), f"{pointer}/image_url", f.IMAGE_URL_MAX)
            self.string(element.get("alt_text"), f"{pointer}/alt_text", f.IMAGE_ALT_TEXT_MAX)
            return
        self.string(element.get("action_id"), f"{pointer}/action_id", f.ID_MAX, required=False)
        self.confirm(element.get("confirm"), f"{pointer}/confirm")
        if "placeholder" in element:
            self.text(
                element["placeholder"], f"{pointer}/placeholder", f.PLACEHOLDER_MAX, plain_only=True
            )
        if kind == "button":
            self.text(element.get("text"), f"{pointer}/text", f.BUTTON_TEXT_MAX, plain_only=True)
            self.string(
                element.get("value"), f"{pointer}/value", f.BUTTON_VALUE_MAX, required=False
            )
            self.string(element.get("url"), f"{pointer}/url", f.URL_MAX, required=False)
            if element.get("style") not in (None, "primary", "danger"):
                self.add(f"{pointer}/style", "must be a valid enum value")
        elif kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes"):
            if "option_groups" not in element:
                self.options(element.get("options"), f"{pointer}/options", 1, f.OPTIONS_MAX)
        elif kind == "overflow":
            self.options(
                element.get("options"),
                f"{pointer}/options",
                f.OVERFLOW_OPTIONS_MIN,
                f.OVERFLOW_OPTIONS_MAX,
            )
        elif kind == "plain_text_input":
            for bound in ("min_length", "max_length"):
                value = element.get(bound)
                if value is not None and (
                    not isinstance(value, int) or not 0 <= value <= f.PLAIN_TEXT_INPUT_LENGTH_MAX
                ):
                    self.add(
                        f"{pointer}/{bound}", f"must be at most {f.PLAIN_TEXT_INPUT_LENGTH_MAX}"
                    )

    def block(self, block: dict[str, Any], pointer: str) -> None:
        kind = block.get("type")
        if kind not in f.BLOCK_TYPES:
            self.add(
                f"{pointer}/type" if "type" in block else pointer, "must be a valid enum value"
            )
            return
        self.string(block.get("block_id"), f"{pointer}/block_id", f.ID_MAX, required=False)
        if kind == "section":
            has_text, has_fields = "text" in block, "fields" in block
            if not has_text and not has_fields:
                self.add(pointer, "must provide either text or fields")
            if has_text:
                self.text(block["text"], f"{pointer}/text", f.SECTION_TEXT_MAX)
            if has_fields:
                fields = self.items(block["fields"], f"{pointer}/fields", 1, f.SECTION_FIELDS_MAX)
                for i, field in enumerate(fields):
                    self.text(field, f"{pointer}/fields/{i}", f.SECTION_FIELD_TEXT_MAX)
            if isinstance(block.get("accessory"), dict):
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", f.HEADER_TEXT_MAX, plain_only=True)
        elif kind == "markdown":
            self.string(block.get("text"), f"{pointer}/text", f.MARKDOWN_BLOCK_TEXT_MAX)
        elif kind == "actions":
            elements = self.items(
                block.get("elements"), f"{pointer}/elements", 1, f.ACTIONS_ELEMENTS_MAX
            )
            self.unique_action_ids(elements, f"{pointer}/elements")
            for i, element in enumerate(elements):
                self.element(element, f"{pointer}/elements/{i}")
        elif kind == "context":
            elements = self.items(
                block.get("elements"), f"{pointer}/elements", 1, f.CONTEXT_ELEMENTS_MAX
            )
            for i, element in enumerate(elements):
                if element.get("type") == "image":
                    self.element(element, f"{pointer}/elements/{i}")
                else:
                    self.text(element, f"{pointer}/elements/{i}", f.SECTION_TEXT_MAX)
        elif kind == "image":
            self.string(
                block.get("image_url"),
                f"{pointer}/image_url",
                f.IMAGE_URL_MAX,
                required="slack_file" not in block,
            )
            self.string(block.get("alt_text"), f"{pointer}/alt_text", f.IMAGE_ALT_TEXT_MAX)
        elif kind == "input":
            self.text(block.get("label"), f"{pointer}/label", f.INPUT_LABEL_MAX, plain_only=True)
            if "hint" in block:
                self.text(block["hint"], f"{pointer}/hint", f.INPUT_HINT_MAX, plain_only=True)
            input_element = block.get("element")
            if not isinstance(input_element, dict):
                self.add(f"{pointer}/element", "missing required field")
            else:
                self.element(input_element, f"{pointer}/element")

    def unique_action_ids(self, elements: list[dict[str, Any]], pointer: str) -> None:
        seen: set[str] = set()
        for i, element in enumerate(elements):
            action_id = element.get("action_id")
            if isinstance(action_id, str):
                if action_id in seen:
                    self.add(f"{pointer}/{i}/action_id", "action_id must be unique within a block")
                seen.add(action_id)

    def blocks(self, blocks: list[dict[str, Any]], pointer: str, limit: int) -> None:
        if len(blocks) > limit:
            self.add(pointer, f"no more than {limit} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{pointer}/{i}")
            block_id = block.get("block_id")
            if isinstance(block_id, str):
                if block_id in seen:
                    self.add(f"{pointer}/{i}/block_id", "block_id must be unique within blocks")
                seen.add(block_id)


def block_problems(blocks: list[dict[str, Any]], pointer: str, limit: int) -> list[Problem]:
    """Every Block Kit limit that `blocks` (already a list of objects) breaks."""
    checker = _Checker()
    checker.blocks(blocks, pointer, limit)
    return checker.problems


def view_problems(view: dict[str, Any], kind: str) -> list[Problem]:
    """Every limit a modal (`kind="modal"`) or Home tab (`kind="home"`) view breaks."""
    checker = _Checker()
    if view.get("type") != kind:
        checker.add("/view/type", f"must be {kind!r} for this method")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", f.VIEW_TITLE_MAX, plain_only=True)
        for button in ("submit", "close"):
            if view.get(button) is not None:
                checker.text(view[button], f"/view/{button}", f.VIEW_BUTTON_MAX, plain_only=True)
    for name in ("callback_id", "external_id"):
        checker.string(view.get(name), f"/view/{name}", f.ID_MAX, required=False)
    checker.string(
        view.get("private_metadata"),
        "/view/private_metadata",
        f.PRIVATE_METADATA_MAX,
        required=False,
    )
    blocks = view.get("blocks")
    if not is_block_list(blocks):
        checker.add("/view/blocks", "must provide an array of objects")
        return checker.problems
    assert isinstance(blocks, list)
    checker.blocks(blocks, "/view/blocks", f.VIEW_BLOCKS_MAX)
    has_input = any(b.get("type") == "input" for b in blocks)
    if kind == "modal" and has_input and view.get("submit") is None:
        checker.add("/view/submit", "submit is required when an input block is present")
    return checker.problems


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def blocks_text_length(blocks: list[dict[str, Any]]) -> int:
    """Characters of text the blocks carry, the measure behind `msg_blocks_too_long`."""
    return sum(len(text) for text in _texts(blocks))


def view_size(view: dict[str, Any]) -> int:
    """Bytes of the view as JSON, the measure behind `view_too_large`."""
    return len(json.dumps(view, ensure_ascii=False).encode("utf-8"))


_BLOCK_ID_ALPHABET = string.ascii_letters + string.digits


def with_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy where every block has a block_id, as Slack stores it (it makes up short ones)."""
    stored = copy.deepcopy(blocks)
    for block in stored:
        if "block_id" not in block:
            block["block_id"] = "".join(secrets.choice(_BLOCK_ID_ALPHABET) for _ in range(5))
    return stored
