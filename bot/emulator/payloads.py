"""The payloads Slack sends an app, built from the workspace so they carry what Slack would.

Pure builders (no I/O), so a synchronous test client and a future web page share them.
"""

from __future__ import annotations

import secrets
from typing import Any

from bot.emulator.records import JSON, View
from bot.emulator.workspace import Workspace

_SINGLE_OPTION = {"static_select", "radio_buttons", "external_select", "overflow"}
_MANY_OPTIONS = {"multi_static_select", "checkboxes", "multi_external_select"}
_VALUE_KEYS = {
    "plain_text_input": ("value", "initial_value"),
    "email_text_input": ("value", "initial_value"),
    "url_text_input": ("value", "initial_value"),
    "number_input": ("value", "initial_value"),
    "users_select": ("selected_user", "initial_user"),
    "multi_users_select": ("selected_users", "initial_users"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "channels_select": ("selected_channel", "initial_channel"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "datetimepicker": ("selected_date_time", "initial_date_time"),
}


def user_of(workspace: Workspace, user_id: str, team_id: str) -> JSON:
    user = workspace.user(user_id)
    name = user.name if user is not None else user_id
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def team_of(workspace: Workspace, team_id: str) -> JSON:
    return {"id": team_id, "domain": workspace.identity.team_domain}


def _options(element: JSON) -> list[JSON]:
    options: list[JSON] = list(element.get("options", []))
    for group in element.get("option_groups", []):
        options.extend(group.get("options", []))
    return options


def _option(element: JSON, value: str) -> JSON:
    for option in _options(element):
        if option.get("value") == value:
            return option
    raise ValueError(f"{element.get('action_id')!r} offers no option with value {value!r}")


def element_state(element: JSON, given: Any = None) -> JSON:
    """What Slack reports for an input element: the person's choice, else the initial one."""
    kind = str(element.get("type"))
    state: JSON = {"type": kind}
    if kind in _SINGLE_OPTION:
        if given is not None:
            state["selected_option"] = _option(element, str(given))
        else:
            state["selected_option"] = element.get("initial_option")
    elif kind in _MANY_OPTIONS:
        if given is not None:
            state["selected_options"] = [_option(element, str(v)) for v in given]
        else:
            state["selected_options"] = element.get("initial_options", [])
    elif kind in _VALUE_KEYS:
        key, initial = _VALUE_KEYS[kind]
        state[key] = given if given is not None else element.get(initial)
    else:
        raise ValueError(f"the emulator cannot fill in a {kind} element")
    return state


def find_element(
    blocks: list[JSON], action_id: str, block_id: str | None = None
) -> tuple[str, JSON]:
    """The (block_id, element) with this action_id, as a person would find it on screen."""
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates = list(block.get("elements", []))
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id")), element
    where = f" in block {block_id!r}" if block_id else ""
    raise LookupError(f"no element with action_id {action_id!r}{where}")


def action(element: JSON, block_id: str, action_ts: str, given: Any = None) -> JSON:
    """One entry of a block_actions payload's `actions`."""
    shown: JSON = {"action_id": element.get("action_id"), "block_id": block_id}
    if element.get("type") == "button":
        shown["text"] = element.get("text")
        for key in ("value", "style", "url"):
            if key in element:
                shown[key] = element[key]
        shown["type"] = "button"
    else:
        shown.update(element_state(element, given))
    shown["action_ts"] = action_ts
    return shown


def view_state(view: View, values: dict[str, dict[str, Any]]) -> JSON:
    """`state.values` of a submitted view: every input block, filled in from `values`
    ({block_id: {action_id: value}}) or left as it was."""
    state: JSON = {}
    known = set()
    for block in view.blocks:
        if block.get("type") != "input":
            continue
        block_id = str(block.get("block_id"))
        element = block["element"]
        action_id = str(element.get("action_id"))
        known.add((block_id, action_id))
        given = values.get(block_id, {}).get(action_id)
        filled = element_state(element, given)
        empty = all(v in (None, [], "") for k, v in filled.items() if k != "type")
        if empty and not block.get("optional", False):
            raise ValueError(f"input {block_id!r} is required: Slack would not let it be submitted")
        state.setdefault(block_id, {})[action_id] = filled
    unknown = {(b, a) for b, by_action in values.items() for a in by_action} - known
    if unknown:
        raise ValueError(f"the view has no inputs {sorted(unknown)}")
    return state


def interaction_envelope(workspace: Workspace, kind: str, user: str, team_id: str) -> JSON:
    """Fields every interaction payload starts with."""
    identity = workspace.identity
    return {
        "type": kind,
        "team": team_of(workspace, team_id),
        "user": user_of(workspace, user, team_id),
        "api_app_id": identity.app_id,
        "token": identity.verification_token,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def event_envelope(workspace: Workspace, event: JSON, team_id: str) -> JSON:
    """An `event_callback` as the Events API delivers it."""
    identity = workspace.identity
    return {
        "token": identity.verification_token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": identity.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(float(str(event.get("event_ts", workspace.clock())))),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": identity.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_hex(16),
    }
