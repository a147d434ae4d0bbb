"""Facts about Slack that its method references do not state, gathered where one edit fixes them.

Sources: Slack's docs on interactivity (trigger and response_url lifetimes), and replies
observed from Slack where the docs are silent or stale (each such number says so). Block Kit's
limits are in `bot.blockkit`, shared with the bot's own guard.
"""

from __future__ import annotations

from typing import Final

# Re-exported so the message checks read every message limit from one module.
from bot.blockkit import MESSAGE_BLOCKS_MAX as MESSAGE_BLOCKS_MAX
from bot.blockkit import MESSAGE_TEXT_MAX as MESSAGE_TEXT_MAX

# --- Views -----------------------------------------------------------------------------------
VIEW_BYTES_MAX: Final = 250_000
"""`view_too_large`: "the provided view is greater than 250kb"."""

# --- Messages --------------------------------------------------------------------------------
MARKDOWN_TEXT_MAX: Final = 12000
MESSAGE_BLOCKS_TEXT_MAX: Final = 13000
"""`msg_blocks_too_long`: undocumented; Slack was observed refusing messages whose blocks carry
about 13,200 characters of text in total (slackapi/bolt-js#2509). Kept a little under it."""
ATTACHMENTS_MAX: Final = 100
SCHEDULE_AHEAD_MAX_SECONDS: Final = 120 * 24 * 3600

# --- Interactivity ---------------------------------------------------------------------------
TRIGGER_TTL_SECONDS: Final = 3.0
RESPONSE_URL_TTL_SECONDS: Final = 30 * 60
RESPONSE_URL_USES_MAX: Final = 5
REQUEST_TIMEOUT_SECONDS: Final = 3.0
"""Slack waits this long for the app to acknowledge a request."""

# --- Which error Slack answers for a missing required argument --------------------------------
# Slack seldom says `invalid_arguments` for a missing argument: it looks the empty value up and
# reports what it did not find. A code is used only if that method's reference lists it (a test
# holds every one here to that); an argument not listed falls back to `invalid_arguments`.
MISSING_ARGUMENT_ERRORS: Final[dict[str, dict[str, str]]] = {
    "chat.postMessage": {"channel": "channel_not_found"},
    "chat.update": {"channel": "channel_not_found", "ts": "message_not_found"},
    "chat.delete": {"channel": "channel_not_found", "ts": "message_not_found"},
    "chat.postEphemeral": {"channel": "channel_not_found", "user": "user_not_in_channel"},
    "chat.getPermalink": {"channel": "channel_not_found", "message_ts": "message_not_found"},
    "chat.scheduleMessage": {"channel": "channel_not_found", "post_at": "invalid_time"},
    "conversations.info": {"channel": "channel_not_found"},
    "conversations.replies": {"channel": "channel_not_found", "ts": "thread_not_found"},
    "reactions.add": {
        "name": "invalid_name",
        "channel": "no_item_specified",
        "timestamp": "no_item_specified",
    },
    "reactions.remove": {"name": "invalid_name"},
    "usergroups.users.list": {"usergroup": "no_such_subteam"},
    "users.info": {"user": "user_not_found"},
}
