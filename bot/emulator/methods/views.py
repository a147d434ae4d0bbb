"""views.* methods: modals opened from a trigger_id, updated in place, and Home tabs."""

from __future__ import annotations

from bot.emulator import blockkit
from bot.emulator import facts as f
from bot.emulator.arguments import Call
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON


def _view(call: Call, kind: str) -> JSON:
    """The `view` argument, checked against Block Kit's limits for a view of `kind`."""
    view = call.args.json("view", "invalid_arguments")
    if not isinstance(view, dict):
        raise SlackError(
            "invalid_arguments", ["[ERROR] must provide an object [json-pointer:/view]"]
        )
    if blockkit.view_size(view) > f.VIEW_BYTES_MAX:
        raise SlackError("view_too_large")
    problems = blockkit.view_problems(view, kind)
    if problems:
        raise SlackError("invalid_arguments", [str(p) for p in problems])
    return view


def open_view(call: Call) -> JSON:
    trigger_id = call.args.string("trigger_id") or call.args.string("interactivity_pointer")
    if not trigger_id:
        raise SlackError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
    definition = _view(call, "modal")
    trigger = call.workspace.exchange_trigger(trigger_id)
    view = call.workspace.open_view(trigger.user, definition)
    return {"view": view.to_slack()}


def update_view(call: Call) -> JSON:
    view_id, external_id = call.args.string("view_id"), call.args.string("external_id")
    if not view_id and not external_id:
        raise SlackError("invalid_arguments", ["[ERROR] missing required field: view_id"])
    current = call.workspace.view(view_id) if view_id else None
    kind = current.type if current is not None else "modal"
    definition = _view(call, kind)
    view = call.workspace.update_view(
        definition,
        view_id=view_id,
        external_id=external_id,
        expected_hash=call.args.string("hash") or None,
    )
    return {"view": view.to_slack()}


def publish(call: Call) -> JSON:
    user_id = call.args.required("user_id")
    user = call.workspace.user(user_id)
    if user is None or user.is_bot or user.deleted:
        raise SlackError("invalid_arguments", ["invalid `user_id`"])
    definition = _view(call, "home")
    view = call.workspace.publish_home(user_id, definition, call.args.string("hash") or None)
    return {"view": view.to_slack()}
