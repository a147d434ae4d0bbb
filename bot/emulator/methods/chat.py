"""chat.* methods: how the app posts, edits, deletes, whispers and schedules messages."""

from __future__ import annotations

import re

from bot.emulator import facts
from bot.emulator.arguments import Call
from bot.emulator.content import MessageParts, read_message_parts
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON
from bot.emulator.team import Channel

_TS = re.compile(r"^\d{10}\.\d{6}$")


def _channel_for_posting(call: Call, *, by_name: bool) -> Channel:
    reference = call.args.required("channel")
    workspace = call.workspace
    channel = workspace.resolve_channel(reference) if by_name else workspace.channel(reference)
    if channel is None:
        raise SlackError("channel_not_found")
    if channel.is_archived:
        raise SlackError(call.error("is_archived", "channel_not_found"))
    if not channel.bot_is_member:
        raise SlackError(call.error("not_in_channel", "channel_not_found"))
    return channel


def _parts(call: Call) -> MessageParts:
    args = call.args
    return read_message_parts(
        text=args.string("text"),
        blocks=args.values.get("blocks"),
        attachments=args.values.get("attachments"),
        markdown_text=args.string("markdown_text"),
        code=call.error,
        warnings=call.warnings,
    )


def _metadata(call: Call) -> JSON | None:
    metadata = call.args.json("metadata", call.error("invalid_metadata_format"))
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise SlackError(call.error("invalid_metadata_format"))
    if metadata and ("event_type" not in metadata or "event_payload" not in metadata):
        raise SlackError(call.error("invalid_metadata_schema"))
    return metadata


def _thread_ts(call: Call) -> str | None:
    thread_ts = call.args.string("thread_ts")
    return thread_ts or None


def post_message(call: Call) -> JSON:
    channel = _channel_for_posting(call, by_name=True)
    parts = _parts(call)
    if parts.empty:
        raise SlackError("no_text")
    message = call.workspace.post(
        channel.id,
        parts.as_content(),
        via="chat.postMessage",
        thread_ts=_thread_ts(call),
        reply_broadcast=call.args.flag("reply_broadcast"),
        metadata=_metadata(call),
    )
    return {"channel": channel.id, "ts": message.ts, "message": message.to_slack()}


def _own_message(call: Call, not_ours: str) -> tuple[str, str]:
    """The channel and ts of a message the bot itself posted, or the error Slack gives."""
    channel = call.workspace.channel(call.args.required("channel"))
    if channel is None:
        raise SlackError("channel_not_found")
    ts = call.args.required("ts")
    existing = call.workspace.message(channel.id, ts)
    if existing is None or existing.tombstone:
        raise SlackError("message_not_found")
    if existing.user != call.workspace.identity.bot_user_id:
        raise SlackError(not_ours)
    return channel.id, ts


def update(call: Call) -> JSON:
    channel_id, ts = _own_message(call, "cant_update_message")
    parts = _parts(call)
    if parts.empty:
        raise SlackError("no_text")
    message = call.workspace.update(
        channel_id,
        ts,
        text=parts.text,
        blocks=parts.blocks,
        attachments=parts.attachments,
        metadata=_metadata(call),
    )
    return {"channel": channel_id, "ts": ts, "text": message.text, "message": message.to_slack()}


def delete(call: Call) -> JSON:
    channel_id, ts = _own_message(call, "cant_delete_message")
    call.workspace.delete(channel_id, ts)
    return {"channel": channel_id, "ts": ts}


def post_ephemeral(call: Call) -> JSON:
    channel = _channel_for_posting(call, by_name=False)
    user = call.args.required("user")
    if call.workspace.user(user) is None or not channel.has_member(user):
        raise SlackError("user_not_in_channel")
    parts = _parts(call)
    if parts.empty:
        raise SlackError("no_text")
    ephemeral = call.workspace.post_ephemeral(
        channel.id, user, parts.as_content(), via="chat.postEphemeral", thread_ts=_thread_ts(call)
    )
    return {"message_ts": ephemeral.ts}


def get_permalink(call: Call) -> JSON:
    channel = call.workspace.channel(call.args.required("channel"))
    if channel is None:
        raise SlackError("channel_not_found")
    message = call.workspace.message(channel.id, call.args.required("message_ts"))
    if message is None:
        raise SlackError("message_not_found")
    link = f"{call.workspace.base_url}archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def schedule_message(call: Call) -> JSON:
    channel = _channel_for_posting(call, by_name=True)
    post_at = call.args.integer("post_at", "invalid_time")
    assert post_at is not None
    now = call.workspace.clock()
    if post_at < now:
        raise SlackError("time_in_past")
    if post_at > now + facts.SCHEDULE_AHEAD_MAX_SECONDS:
        raise SlackError("time_too_far")
    parts = _parts(call)
    if parts.empty:
        raise SlackError("no_text")
    thread_ts = _thread_ts(call)
    if thread_ts is not None and call.workspace.message(channel.id, thread_ts) is None:
        raise SlackError("invalid_arguments", [f"no message {thread_ts} to reply to"])
    scheduled = call.workspace.schedule(channel.id, post_at, parts.as_content(), thread_ts)
    message: JSON = {
        "text": scheduled.content.text,
        "bot_id": call.workspace.identity.bot_id,
        "type": "delayed_message",
        "subtype": "bot_message",
    }
    if scheduled.content.blocks:
        message["blocks"] = scheduled.content.blocks
    return {
        "channel": channel.id,
        "scheduled_message_id": scheduled.id,
        "post_at": str(post_at),
        "message": message,
    }


def _reaction_target(call: Call) -> tuple[str, str, str]:
    name = call.args.required("name").strip(":")
    if not re.fullmatch(r"[a-z0-9_+'\-]+(::skin-tone-[2-6])?", name):
        raise SlackError("invalid_name")
    if not call.args.present("channel") or not call.args.present("timestamp"):
        raise SlackError("no_item_specified")
    channel = call.workspace.channel(call.args.required("channel"))
    if channel is None:
        raise SlackError("channel_not_found")
    timestamp = call.args.required("timestamp")
    if not _TS.match(timestamp):
        raise SlackError("bad_timestamp")
    return channel.id, timestamp, name


def add_reaction(call: Call) -> JSON:
    channel, timestamp, name = _reaction_target(call)
    call.workspace.react(channel, timestamp, name, call.workspace.identity.bot_user_id, add=True)
    return {}


def remove_reaction(call: Call) -> JSON:
    channel, timestamp, name = _reaction_target(call)
    call.workspace.react(channel, timestamp, name, call.workspace.identity.bot_user_id, add=False)
    return {}
