"""The emulator's web page: a Slack window onto the emulated workspace, acting as its people.

`SlackEmulator.open_page(request_url=..., people=[Person(...), ...])` mounts it on the
emulator's own server and returns its URL. Presses, submissions and commands reach the bot as
signed requests (or over Socket Mode), exactly as Slack sends them.
"""

from __future__ import annotations

from bot.emulator.page.app import Page
from bot.emulator.page.directory import Person

__all__ = ["Page", "Person"]
