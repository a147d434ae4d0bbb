"""Block Kit problems worded the way Slack answers them, and the sizes behind its refusals."""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Iterator
from typing import Any

from bot import blockkit
from bot.blockkit import Kind, Problem


def slack_message(problem: Problem) -> str:
    """`problem` as Slack writes it in `response_metadata.messages`.

    For example ``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
    """
    limit = problem.limit or 0
    match problem.kind:
        case Kind.MISSING:
            words = "missing required field"
        case Kind.EMPTY:
            words = "must be more than 0 characters"
        case Kind.TOO_LONG:
            words = f"must be less than {limit + 1} characters"
        case Kind.TOO_MANY:
            words = f"no more than {limit} items allowed"
        case Kind.TOO_FEW:
            words = f"must provide at least {limit} items"
        case Kind.OUT_OF_RANGE:
            words = f"must be at most {limit}"
        case Kind.NOT_STRING:
            words = "must be a string"
        case Kind.NOT_OBJECT:
            words = "must provide an object"
        case Kind.NOT_ARRAY:
            words = "must provide an array"
        case Kind.NOT_ALLOWED:
            words = "must be a valid enum value"
        case Kind.DUPLICATE | Kind.RULE:
            words = problem.message
    return f"[ERROR] {words} [json-pointer:{problem.pointer}]"


def is_block_list(blocks: object) -> bool:
    """Whether `blocks` is what Slack parses at all: a JSON array of objects."""
    return isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks)


def block_problems(blocks: list[dict[str, Any]], pointer: str, limit: int) -> list[str]:
    """Slack's messages for every Block Kit limit `blocks` (at most `limit` of them) break."""
    return [slack_message(p) for p in blockkit.block_problems(blocks, pointer, limit)]


def view_problems(view: dict[str, Any], kind: str) -> list[str]:
    """Slack's messages for every limit a modal (`kind="modal"`) or Home tab view breaks."""
    return [slack_message(p) for p in blockkit.view_problems(view, kind, at="/view")]


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
