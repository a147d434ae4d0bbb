"""The one exception the emulator raises to answer a Web API call the way Slack refuses it."""

from __future__ import annotations


class SlackError(Exception):
    """A refusal Slack would send: `{"ok": false, "error": code}` plus optional detail lines.

    ``messages`` become ``response_metadata.messages``, the place where Slack explains
    Block Kit and argument errors (``"[ERROR] ... [json-pointer:/blocks/0/text]"``).
    """

    def __init__(self, code: str, messages: list[str] | None = None) -> None:
        super().__init__(code if not messages else f"{code}: {'; '.join(messages)}")
        self.code = code
        self.messages = list(messages or [])
