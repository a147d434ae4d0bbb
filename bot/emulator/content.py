"""What a message may say: the checks chat.* methods and response_url share, in Slack's order."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.emulator import blockkit
from bot.emulator import facts as f
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON, Content

ErrorCode = Callable[[str], str]
"""Maps the error Slack would prefer to one the method in hand may answer."""

MISSING_TEXT_FALLBACK = "missing_text_fallback"


@dataclass(frozen=True)
class MessageParts:
    """The parts of a message a call gave; None where it gave none (chat.update keeps those)."""

    text: str | None
    blocks: list[JSON] | None
    attachments: list[JSON] | None

    @property
    def empty(self) -> bool:
        return not self.text and not self.blocks and not self.attachments

    def as_content(self) -> Content:
        return Content(self.text or "", self.blocks or None, self.attachments or None)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else None
    return value


def read_message_parts(
    *,
    text: str | None,
    blocks: Any,
    attachments: Any,
    markdown_text: str | None,
    code: ErrorCode,
    warnings: list[str],
) -> MessageParts:
    """Check a message's text, blocks and attachments the way Slack does, or raise SlackError.

    `msg_too_long` and `msg_blocks_too_long` are answered by every message method, whether or
    not its reference lists them (see `facts`); other codes go through `code`.
    """
    try:
        decoded_blocks = _decode(blocks)
    except ValueError:
        raise SlackError(
            code("invalid_blocks_format"), ["[ERROR] blocks is not valid JSON"]
        ) from None
    if decoded_blocks is not None and not blockkit.is_block_list(decoded_blocks):
        raise SlackError(
            code("invalid_blocks_format"),
            ["[ERROR] must provide an array of objects [json-pointer:/blocks]"],
        )
    try:
        decoded_attachments = _decode(attachments)
    except ValueError:
        raise SlackError(code("invalid_attachments")) from None
    if decoded_attachments is not None and not blockkit.is_block_list(decoded_attachments):
        raise SlackError(code("invalid_attachments"))

    if markdown_text is not None and (text or decoded_blocks):
        raise SlackError(code("markdown_text_conflict"))
    if markdown_text is not None:
        if len(markdown_text) > f.MARKDOWN_TEXT_MAX:
            raise SlackError("msg_too_long")
        text = markdown_text

    if decoded_blocks:
        problems = blockkit.block_problems(decoded_blocks, "/blocks", f.MESSAGE_BLOCKS_MAX)
        if problems:
            raise SlackError(code("invalid_blocks"), [str(p) for p in problems])
        if blockkit.blocks_text_length(decoded_blocks) > f.MESSAGE_BLOCKS_TEXT_MAX:
            raise SlackError("msg_blocks_too_long")
    if decoded_attachments is not None and len(decoded_attachments) > f.ATTACHMENTS_MAX:
        raise SlackError(code("too_many_attachments"))
    if text is not None and len(text) > f.MESSAGE_TEXT_MAX and markdown_text is None:
        raise SlackError("msg_too_long")
    if decoded_blocks and not text:
        # Slack accepts it, but notifications and screen readers then have nothing to say.
        warnings.append(MISSING_TEXT_FALLBACK)
    return MessageParts(
        text=text,
        blocks=decoded_blocks,
        attachments=decoded_attachments,
    )
