"""Slack's Block Kit limits stated once, and the one checker both the bot and the stand-in trust."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

MESSAGE_BLOCKS_MAX: Final = 50
VIEW_BLOCKS_MAX: Final = 100
MESSAGE_TEXT_MAX: Final = 4000
"""The top-level `text` (`msg_too_long`). chat.update's reference states 4,000; Slack staff
confirmed in 2024 that chat.postMessage refuses past it too (its docs still speak of 40,000)."""
SECTION_TEXT_MAX: Final = 3000
SECTION_FIELDS_MAX: Final = 10
SECTION_FIELD_TEXT_MAX: Final = 2000
HEADER_TEXT_MAX: Final = 150
MARKDOWN_BLOCK_TEXT_MAX: Final = 12000
CONTEXT_ELEMENTS_MAX: Final = 10
ACTIONS_ELEMENTS_MAX: Final = 25
INPUT_LABEL_MAX: Final = 2000
INPUT_HINT_MAX: Final = 2000
IMAGE_URL_MAX: Final = 3000
IMAGE_ALT_TEXT_MAX: Final = 2000
BUTTON_TEXT_MAX: Final = 75
BUTTON_VALUE_MAX: Final = 2000
URL_MAX: Final = 3000
ID_MAX: Final = 255
"""action_id, block_id, callback_id and external_id."""
PLACEHOLDER_MAX: Final = 150
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
OPTIONS_MAX: Final = 100
OVERFLOW_OPTIONS_MIN: Final = 2
OVERFLOW_OPTIONS_MAX: Final = 5
CONFIRM_TITLE_MAX: Final = 100
CONFIRM_TEXT_MAX: Final = 300
CONFIRM_BUTTON_MAX: Final = 30
PLAIN_TEXT_INPUT_LENGTH_MAX: Final = 3000
"""The most a plain_text_input's initial_value, min_length and max_length may say."""
VIEW_TITLE_MAX: Final = 24
VIEW_BUTTON_MAX: Final = 24
"""The submit and close labels of a modal."""
PRIVATE_METADATA_MAX: Final = 3000

VIEW_TYPES: Final = ("modal", "home")
TEXT_OBJECT_TYPES: Final = ("plain_text", "mrkdwn")
BUTTON_STYLES: Final = ("primary", "danger")
CONTEXT_ELEMENT_TYPES: Final = ("plain_text", "mrkdwn", "image")
OPTION_ELEMENT_TYPES: Final = frozenset(
    {"static_select", "multi_static_select", "radio_buttons", "checkboxes"}
)
BLOCK_TYPES: Final = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
ELEMENT_TYPES: Final = frozenset(
    {
        "button",
        "channels_select",
        "checkboxes",
        "conversations_select",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "external_select",
        "file_input",
        "image",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "timepicker",
        "url_text_input",
        "users_select",
        "workflow_button",
    }
)


class Kind(StrEnum):
    """Which sort of rule a problem breaks, so a caller can word or route it."""

    MISSING = "missing"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    TOO_MANY = "too_many"
    TOO_FEW = "too_few"
    OUT_OF_RANGE = "out_of_range"
    NOT_STRING = "not_string"
    NOT_OBJECT = "not_object"
    NOT_ARRAY = "not_array"
    NOT_ALLOWED = "not_allowed"
    DUPLICATE = "duplicate"
    RULE = "rule"
    """A rule tying fields together, such as a modal with inputs needing a submit button."""


@dataclass(frozen=True)
class Problem:
    """One thing Slack would reject, located by JSON pointer; `limit` is the bound it broke."""

    pointer: str
    kind: Kind
    message: str
    limit: int | None = None

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def message_problems(message: Mapping[str, Any]) -> list[Problem]:
    """Every limit a message payload (a `text` fallback and optional `blocks`) breaks."""
    checker = _Checker()
    checker.string(message.get("text"), "/text", MESSAGE_TEXT_MAX, required=True, nonblank=True)
    checker.blocks(message.get("blocks", []), "/blocks", MESSAGE_BLOCKS_MAX)
    return checker.found


def view_problems(view: Mapping[str, Any], kind: str, at: str = "") -> list[Problem]:
    """Every limit a view breaks when it must be a `kind` ("modal" or "home") view."""
    checker = _Checker()
    checker.view(view, kind, at)
    return checker.found


def block_problems(blocks: object, at: str, limit: int) -> list[Problem]:
    """Every limit a list of at most `limit` blocks, found at pointer `at`, breaks."""
    checker = _Checker()
    checker.blocks(blocks, at, limit)
    return checker.found


class _Checker:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, pointer: str, kind: Kind, message: str, limit: int | None = None) -> None:
        self.found.append(Problem(pointer, kind, message, limit))

    def string(
        self,
        value: object,
        at: str,
        limit: int,
        *,
        required: bool = False,
        nonblank: bool = False,
    ) -> None:
        if value is None:
            if required:
                self.add(at, Kind.MISSING, "missing")
        elif not isinstance(value, str):
            self.add(at, Kind.NOT_STRING, "must be a string")
        elif nonblank and not value.strip():
            self.add(at, Kind.EMPTY, "must not be empty")
        elif len(value) > limit:
            self.add(at, Kind.TOO_LONG, f"{len(value)} characters, more than {limit}", limit)

    def one_of(self, value: object, at: str, allowed: Collection[str]) -> None:
        if value not in allowed:
            wanted = " or ".join(allowed) if len(allowed) <= 3 else "a type Slack knows"
            self.add(at, Kind.NOT_ALLOWED, f"must be {wanted}")

    def items(
        self, value: object, at: str, low: int, high: int, noun: str
    ) -> list[tuple[str, Mapping[str, Any]]]:
        if not isinstance(value, list):
            self.add(at, Kind.NOT_ARRAY, "must be a list")
            return []
        if len(value) < low:
            few = (
                "must be a non-empty list" if low == 1 else f"{len(value)} {noun}, fewer than {low}"
            )
            self.add(at, Kind.TOO_FEW, few, low)
        if len(value) > high:
            self.add(at, Kind.TOO_MANY, f"{len(value)} {noun}, more than {high}", high)
        objects = []
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                objects.append((f"{at}/{index}", item))
            else:
                self.add(f"{at}/{index}", Kind.NOT_OBJECT, "must be an object")
        return objects

    def unique(self, value: object, at: str, seen: set[str], name: str) -> None:
        if isinstance(value, str):
            if value in seen:
                self.add(at, Kind.DUPLICATE, f"duplicate {name} {value!r}")
            seen.add(value)

    def text(self, obj: object, at: str, limit: int, *, plain: bool = False) -> None:
        if obj is None:
            self.add(at, Kind.MISSING, "missing")
            return
        if not isinstance(obj, Mapping):
            self.add(at, Kind.NOT_OBJECT, "must be a text object")
            return
        self.one_of(obj.get("type"), f"{at}/type", ("plain_text",) if plain else TEXT_OBJECT_TYPES)
        self.string(obj.get("text"), f"{at}/text", limit, required=True, nonblank=True)

    def view(self, view: Mapping[str, Any], kind: str, at: str) -> None:
        if view.get("type") != kind:
            self.add(f"{at}/type", Kind.NOT_ALLOWED, f"must be {kind!r}")
        modal = kind == "modal"
        for key in ("title", "submit", "close"):
            if view.get(key) is not None:
                if not modal:
                    self.add(f"{at}/{key}", Kind.RULE, "a home tab has no title, submit or close")
                limit = VIEW_TITLE_MAX if key == "title" else VIEW_BUTTON_MAX
                self.text(view[key], f"{at}/{key}", limit, plain=True)
        if modal and view.get("title") is None:
            self.add(f"{at}/title", Kind.MISSING, "missing")
        for name in ("callback_id", "external_id"):
            self.string(view.get(name), f"{at}/{name}", ID_MAX)
        self.string(view.get("private_metadata"), f"{at}/private_metadata", PRIVATE_METADATA_MAX)
        blocks = view.get("blocks")
        self.blocks(blocks, f"{at}/blocks", VIEW_BLOCKS_MAX)
        has_input = isinstance(blocks, list) and any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
        )
        if modal and has_input and view.get("submit") is None:
            self.add(f"{at}/submit", Kind.RULE, "a modal with inputs needs a submit button")

    def blocks(self, blocks: object, at: str, limit: int) -> None:
        block_ids: set[str] = set()
        for pointer, block in self.items(blocks, at, 0, limit, "blocks"):
            self.block(block, pointer)
            self.unique(block.get("block_id"), f"{pointer}/block_id", block_ids, "block_id")

    def block(self, block: Mapping[str, Any], at: str) -> None:
        self.string(block.get("block_id"), f"{at}/block_id", ID_MAX)
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            # Slack points at the block itself when it names no type at all.
            self.one_of(kind, f"{at}/type" if "type" in block else at, BLOCK_TYPES)
        elif kind == "section":
            self.section(block, at)
        elif kind == "header":
            self.text(block.get("text"), f"{at}/text", HEADER_TEXT_MAX, plain=True)
        elif kind == "markdown":
            self.string(block.get("text"), f"{at}/text", MARKDOWN_BLOCK_TEXT_MAX, required=True)
        elif kind in ("actions", "context"):
            self.elements(block, at)
        elif kind == "image":
            self.image(block, at, url_required="slack_file" not in block)
        elif kind == "input":
            self.text(block.get("label"), f"{at}/label", INPUT_LABEL_MAX, plain=True)
            if "hint" in block:
                self.text(block["hint"], f"{at}/hint", INPUT_HINT_MAX, plain=True)
            self.element(block.get("element"), f"{at}/element")

    def section(self, block: Mapping[str, Any], at: str) -> None:
        if block.get("text") is None and not block.get("fields"):
            self.add(at, Kind.RULE, "a section needs text or fields")
        if "text" in block:
            self.text(block["text"], f"{at}/text", SECTION_TEXT_MAX)
        if "fields" in block:
            fields = self.items(block["fields"], f"{at}/fields", 1, SECTION_FIELDS_MAX, "fields")
            for pointer, field in fields:
                self.text(field, pointer, SECTION_FIELD_TEXT_MAX)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{at}/accessory")

    def elements(self, block: Mapping[str, Any], at: str) -> None:
        context = block.get("type") == "context"
        limit = CONTEXT_ELEMENTS_MAX if context else ACTIONS_ELEMENTS_MAX
        action_ids: set[str] = set()
        for pointer, element in self.items(
            block.get("elements"), f"{at}/elements", 1, limit, "elements"
        ):
            if context and element.get("type") in TEXT_OBJECT_TYPES:
                self.text(element, pointer, SECTION_TEXT_MAX)
            else:
                self.element(element, pointer, CONTEXT_ELEMENT_TYPES if context else ELEMENT_TYPES)
            self.unique(element.get("action_id"), f"{pointer}/action_id", action_ids, "action_id")

    def image(self, image: Mapping[str, Any], at: str, *, url_required: bool = True) -> None:
        self.string(image.get("image_url"), f"{at}/image_url", IMAGE_URL_MAX, required=url_required)
        self.string(image.get("alt_text"), f"{at}/alt_text", IMAGE_ALT_TEXT_MAX, required=True)

    def element(self, element: object, at: str, allowed: Collection[str] = ELEMENT_TYPES) -> None:
        if element is None:
            self.add(at, Kind.MISSING, "missing")
            return
        if not isinstance(element, Mapping):
            self.add(at, Kind.NOT_OBJECT, "must be an element object")
            return
        kind = element.get("type")
        self.one_of(kind, f"{at}/type", allowed)
        if kind == "image":
            self.image(element, at)
        self.string(element.get("action_id"), f"{at}/action_id", ID_MAX)
        if element.get("confirm") is not None:
            self.confirm(element["confirm"], f"{at}/confirm")
        if "placeholder" in element:
            self.text(element["placeholder"], f"{at}/placeholder", PLACEHOLDER_MAX, plain=True)
        if kind == "button":
            self.text(element.get("text"), f"{at}/text", BUTTON_TEXT_MAX, plain=True)
            self.string(element.get("value"), f"{at}/value", BUTTON_VALUE_MAX)
            self.string(element.get("url"), f"{at}/url", URL_MAX)
            if element.get("style") is not None:
                self.one_of(element["style"], f"{at}/style", BUTTON_STYLES)
        elif kind in OPTION_ELEMENT_TYPES and "option_groups" not in element:
            self.options(element.get("options"), f"{at}/options", 1, OPTIONS_MAX)
        elif kind == "overflow":
            low, high = OVERFLOW_OPTIONS_MIN, OVERFLOW_OPTIONS_MAX
            self.options(element.get("options"), f"{at}/options", low, high)
        elif kind == "plain_text_input":
            limit = PLAIN_TEXT_INPUT_LENGTH_MAX
            self.string(element.get("initial_value"), f"{at}/initial_value", limit)
            for key in ("min_length", "max_length"):
                bound = element.get(key)
                if bound is not None and not (isinstance(bound, int) and 0 <= bound <= limit):
                    message = f"must be a whole number from 0 to {limit}"
                    self.add(f"{at}/{key}", Kind.OUT_OF_RANGE, message, limit)

    def options(self, value: object, at: str, low: int, high: int) -> None:
        for pointer, option in self.items(value, at, low, high, "options"):
            self.text(option.get("text"), f"{pointer}/text", OPTION_TEXT_MAX)
            self.string(option.get("value"), f"{pointer}/value", OPTION_VALUE_MAX, required=True)

    def confirm(self, confirm: object, at: str) -> None:
        if not isinstance(confirm, Mapping):
            self.add(at, Kind.NOT_OBJECT, "must be a confirm object")
            return
        self.text(confirm.get("title"), f"{at}/title", CONFIRM_TITLE_MAX, plain=True)
        self.text(confirm.get("text"), f"{at}/text", CONFIRM_TEXT_MAX)
        self.text(confirm.get("confirm"), f"{at}/confirm", CONFIRM_BUTTON_MAX, plain=True)
        self.text(confirm.get("deny"), f"{at}/deny", CONFIRM_BUTTON_MAX, plain=True)
