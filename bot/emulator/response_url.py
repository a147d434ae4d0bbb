"""The response_url the emulator hands out with each interaction, applied as Slack applies it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.emulator.content import read_message_parts
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON, ResponseUrl
from bot.emulator.workspace import Workspace


@dataclass(frozen=True)
class ResponseUrlAnswer:
    status: int
    body: JSON
    payload: JSON | None


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _refused(status: int, code: str, payload: JSON | None) -> ResponseUrlAnswer:
    return ResponseUrlAnswer(status, {"ok": False, "error": code}, payload)


def apply_response(workspace: Workspace, url_id: str, raw: bytes) -> ResponseUrlAnswer:
    """Apply one post to a response_url: a new (ephemeral or in-channel) message, or a change to
    the message the interaction came from (`replace_original`, `delete_original`)."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return _refused(400, "invalid_payload", None)
    if not isinstance(payload, dict):
        return _refused(400, "invalid_payload", None)
    try:
        target = workspace.use_response_url(url_id)
    except SlackError as error:
        return _refused(404, error.code, payload)
    try:
        _apply(workspace, target, payload)
    except SlackError as error:
        answer = _refused(400, error.code, payload)
        if error.messages:
            answer.body["response_metadata"] = {"messages": error.messages}
        return answer
    return ResponseUrlAnswer(200, {"ok": True}, payload)


def _apply(workspace: Workspace, target: ResponseUrl, payload: JSON) -> None:
    if _truthy(payload.get("delete_original")):
        if target.original_ts is None or target.channel is None:
            raise SlackError("message_not_found")
        if target.original_is_ephemeral:
            workspace.replace_ephemeral(target.original_ts, None)
        else:
            workspace.delete(target.channel, target.original_ts)
        return
    warnings: list[str] = []
    text = payload.get("text")
    parts = read_message_parts(
        text=text if isinstance(text, str) else None,
        blocks=payload.get("blocks"),
        attachments=payload.get("attachments"),
        markdown_text=None,
        code=lambda code: code,
        warnings=warnings,
    )
    if parts.empty:
        raise SlackError("no_text")
    if target.channel is None:
        raise SlackError("channel_not_found")
    content = parts.as_content()
    if _truthy(payload.get("replace_original")) and target.original_ts is not None:
        if target.original_is_ephemeral:
            workspace.replace_ephemeral(target.original_ts, content)
        else:
            workspace.update(
                target.channel,
                target.original_ts,
                text=content.text,
                blocks=content.blocks or [],
                attachments=content.attachments or [],
            )
        return
    thread_ts = payload.get("thread_ts")
    thread_ts = thread_ts if isinstance(thread_ts, str) and thread_ts else None
    if payload.get("response_type") == "in_channel":
        posted_ts = workspace.post(
            target.channel, content, via="response_url", thread_ts=thread_ts
        ).ts
    else:
        posted_ts = workspace.post_ephemeral(
            target.channel, target.user, content, via="response_url", thread_ts=thread_ts
        ).ts
    ephemeral = payload.get("response_type") != "in_channel"
    workspace.remember_response_original(target.id, posted_ts, ephemeral=ephemeral)
