"""conversations.* methods: what the app may read about a channel and a thread."""

from __future__ import annotations

import base64
import binascii

from bot.emulator.arguments import Call
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON

_REPLIES_LIMIT_DEFAULT = 1000


def info(call: Call) -> JSON:
    channel = call.workspace.channel(call.args.required("channel"))
    if channel is None:
        raise SlackError("channel_not_found")
    shown = channel.to_slack()
    if call.args.flag("include_num_members"):
        everyone = len([u for u in call.workspace.users if not u.is_bot])
        shown["num_members"] = len(channel.members) if channel.members is not None else everyone
    return {"channel": shown}


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        decoded = base64.b64decode(cursor, validate=True).decode("ascii")
        return int(decoded.removeprefix("offset:"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackError("invalid_cursor") from None


def replies(call: Call) -> JSON:
    channel = call.workspace.channel(call.args.required("channel"))
    if channel is None:
        raise SlackError("channel_not_found")
    message = call.workspace.message(channel.id, call.args.required("ts"))
    if message is None:
        raise SlackError("thread_not_found")
    root_ts = message.thread_ts or message.ts
    root = call.workspace.message(channel.id, root_ts)
    thread = ([root] if root is not None else []) + call.workspace.thread(channel.id, root_ts)

    oldest, latest = call.args.string("oldest"), call.args.string("latest")
    inclusive = call.args.flag("inclusive")
    for name, bound in (("oldest", oldest), ("latest", latest)):
        if bound is not None:
            try:
                float(bound)
            except ValueError:
                raise SlackError(f"invalid_ts_{name}") from None
    if oldest is not None:
        thread = [
            m for m in thread if float(m.ts) > float(oldest) or (inclusive and m.ts == oldest)
        ]
    if latest is not None:
        thread = [
            m for m in thread if float(m.ts) < float(latest) or (inclusive and m.ts == latest)
        ]

    limit = call.args.integer("limit", "invalid_arguments") or _REPLIES_LIMIT_DEFAULT
    start = _cursor_offset(call.args.string("cursor"))
    page = thread[start : start + limit]
    has_more = start + limit < len(thread)
    next_cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if has_more else ""
    return {
        "messages": [m.to_slack() for m in page],
        "has_more": has_more,
        "response_metadata": {"next_cursor": next_cursor},
    }
