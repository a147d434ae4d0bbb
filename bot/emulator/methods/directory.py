"""Who is who: auth.test, users.info, usergroups.*, and Socket Mode's apps.connections.open."""

from __future__ import annotations

from bot.emulator.arguments import Call
from bot.emulator.errors import SlackError
from bot.emulator.records import JSON
from bot.emulator.socket_mode import SocketMode


def auth_test(call: Call) -> JSON:
    identity = call.workspace.identity
    return {
        "url": call.workspace.base_url,
        "team": identity.team_name,
        "user": identity.bot_name,
        "team_id": identity.team_id,
        "user_id": identity.bot_user_id,
        "bot_id": identity.bot_id,
        "is_enterprise_install": False,
    }


def apps_connections_open(call: Call) -> JSON:
    return {"url": SocketMode.of(call.workspace).issue_url(call.workspace.base_url)}


def users_info(call: Call) -> JSON:
    user = call.workspace.user(call.args.required("user"))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.to_slack()}


def usergroups_list(call: Call) -> JSON:
    include_disabled = call.args.flag("include_disabled")
    include_users = call.args.flag("include_users")
    include_count = call.args.flag("include_count")
    return {
        "usergroups": [
            group.to_slack(include_users=include_users, include_count=include_count)
            for group in call.workspace.usergroups
            if include_disabled or not group.disabled
        ]
    }


def usergroups_users_list(call: Call) -> JSON:
    group = call.workspace.usergroup(call.args.required("usergroup"))
    if group is None or (group.disabled and not call.args.flag("include_disabled")):
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}
