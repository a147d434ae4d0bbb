"""A message as renderers return it: the fallback text Slack requires, and the blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    #: Shown in notifications, screen readers and clients without Block Kit; never empty.
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The arguments ``chat.postMessage``, ``chat.update`` and ``chat.postEphemeral`` take."""
        return {"text": self.text, "blocks": self.blocks}
