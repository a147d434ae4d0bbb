"""What Slack does with the app's HTTP answer to a slash command or a view submission."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bot.emulator import blockkit
from bot.emulator.content import read_message_parts
from bot.emulator.errors import SlackError
from bot.emulator.records import Content, View
from bot.emulator.workspace import Workspace

if TYPE_CHECKING:
    from bot.emulator.client import Delivery


def apply_command_reply(
    workspace: Workspace, delivery: Delivery, user: str, channel: str, command: str
) -> str | None:
    """Show the person the command's immediate reply (or Slack's error); a broken rule, if any."""
    if delivery.error is not None:
        # Slack tells the person itself when the app fails to answer.
        notice = f'{command} failed with the error "{delivery.error}"'
        workspace.post_ephemeral(channel, user, Content(notice), via="slack")
        return None
    if not delivery.response_body.strip():
        return None
    content_type = delivery.response_headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        ts = workspace.post_ephemeral(channel, user, Content(delivery.text), via="command_reply").ts
        _remember(workspace, delivery, ts, ephemeral=True)
        return None
    try:
        reply = delivery.json()
        if not isinstance(reply, dict):
            return "invalid_reply: not a JSON object"
        text = reply.get("text")
        parts = read_message_parts(
            text=text if isinstance(text, str) else None,
            blocks=reply.get("blocks"),
            attachments=reply.get("attachments"),
            markdown_text=None,
            code=lambda code: code,
            warnings=[],
        )
    except ValueError:
        return "invalid_reply: not JSON"
    except SlackError as error:
        return str(error)
    if parts.empty:
        return None
    in_channel = reply.get("response_type") == "in_channel"
    if in_channel:
        ts = workspace.post(channel, parts.as_content(), via="command_reply").ts
    else:
        ts = workspace.post_ephemeral(channel, user, parts.as_content(), via="command_reply").ts
    _remember(workspace, delivery, ts, ephemeral=not in_channel)
    return None


def _remember(workspace: Workspace, delivery: Delivery, ts: str, *, ephemeral: bool) -> None:
    if delivery.response_url is not None:
        url_id = delivery.response_url.rsplit("/", 1)[-1]
        workspace.remember_response_original(url_id, ts, ephemeral=ephemeral)


def apply_submission_reply(workspace: Workspace, delivery: Delivery, view: View) -> str | None:
    """Close, update, push or mark errors on the modal as the app's answer says."""
    if delivery.error is not None:
        return None  # Slack keeps the modal open and says it had trouble connecting
    if not delivery.response_body.strip():
        workspace.close_view(view.id)
        return None
    try:
        reply = delivery.json()
    except ValueError:
        return "invalid_reply: not JSON"
    if not isinstance(reply, dict):
        return "invalid_reply: not a JSON object"
    kind = reply.get("response_action")
    if kind is None:
        workspace.close_view(view.id)
    elif kind == "clear":
        workspace.close_view(view.id, whole_stack=True)
    elif kind == "errors":
        errors = reply.get("errors")
        inputs = {b.get("block_id") for b in view.blocks if b.get("type") == "input"}
        if not isinstance(errors, dict) or not errors:
            return "invalid response_action errors: `errors` must be a non-empty object"
        unknown = sorted(str(k) for k in errors if k not in inputs)
        if unknown:
            return f"invalid response_action errors: no input blocks {unknown}"
        workspace.set_view_errors(view.id, {str(k): str(v) for k, v in errors.items()})
    elif kind in ("update", "push"):
        definition = reply.get("view")
        if not isinstance(definition, dict):
            return f"invalid response_action {kind}: `view` must be an object"
        problems = blockkit.view_problems(definition, "modal")
        if problems:
            return f"invalid response_action {kind}: " + "; ".join(str(p) for p in problems)
        if kind == "update":
            workspace.update_view(definition, view_id=view.id)
        else:
            workspace.push_view(view.user, definition)
    else:
        return f"invalid response_action {json.dumps(kind)}"
    return None
