"""The Web API methods the emulator answers: exactly those with a reference in slack_ref/."""

from __future__ import annotations

from bot.emulator.arguments import Handler
from bot.emulator.methods import chat, conversations, directory, views

HANDLERS: dict[str, Handler] = {
    "apps.connections.open": directory.apps_connections_open,
    "auth.test": directory.auth_test,
    "chat.delete": chat.delete,
    "chat.getPermalink": chat.get_permalink,
    "chat.postEphemeral": chat.post_ephemeral,
    "chat.postMessage": chat.post_message,
    "chat.scheduleMessage": chat.schedule_message,
    "chat.update": chat.update,
    "conversations.info": conversations.info,
    "conversations.replies": conversations.replies,
    "reactions.add": chat.add_reaction,
    "reactions.remove": chat.remove_reaction,
    "usergroups.list": directory.usergroups_list,
    "usergroups.users.list": directory.usergroups_users_list,
    "users.info": directory.users_info,
    "views.open": views.open_view,
    "views.publish": views.publish,
    "views.update": views.update_view,
}

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
"""Methods that take an app-level (xapp-) token and refuse every other kind."""
