"""Facts about Slack that its method references do not state, gathered where one edit fixes them.

Sources: Slack's Block Kit reference (limits), Slack's docs on interactivity (trigger and
response_url lifetimes), and replies observed from Slack where the docs are silent or stale
(each such number says so).
"""

from __future__ import annotations

from typing import Final

# --- Block Kit -------------------------------------------------------------------------------
MESSAGE_BLOCKS_MAX: Final = 50
VIEW_BLOCKS_MAX: Final = 100
SECTION_TEXT_MAX: Final = 3000
SECTION_FIELDS_MAX: Final = 10
SECTION_FIELD_TEXT_MAX: Final = 2000
HEADER_TEXT_MAX: Final = 150
MARKDOWN_BLOCK_TEXT_MAX: Final = 12000
CONTEXT_ELEMENTS_MAX: Final = 10
ACTIONS_ELEMENTS_MAX: Final = 25
INPUT_LABEL_MAX: Final = 2000
INPUT_HINT_MAX: Final = 2000
IMAGE_URL_MAX: Final = 3000
IMAGE_ALT_TEXT_MAX: Final = 2000
BUTTON_TEXT_MAX: Final = 75
BUTTON_VALUE_MAX: Final = 2000
URL_MAX: Final = 3000
ID_MAX: Final = 255
"""action_id, block_id, callback_id and external_id."""
PLACEHOLDER_MAX: Final = 150
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
OPTIONS_MAX: Final = 100
OVERFLOW_OPTIONS_MIN: Final = 2
OVERFLOW_OPTIONS_MAX: Final = 5
CONFIRM_TITLE_MAX: Final = 100
CONFIRM_TEXT_MAX: Final = 300
CONFIRM_BUTTON_MAX: Final = 30
PLAIN_TEXT_INPUT_LENGTH_MAX: Final = 3000

BLOCK_TYPES: Final = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
ELEMENT_TYPES: Final = frozenset(
    {
        "button",
        "channels_select",
        "checkboxes",
        "conversations_select",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "external_select",
        "file_input",
        "image",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "timepicker",
        "url_text_input",
        "users_select",
        "workflow_button",
    }
)
TEXT_OBJECT_TYPES: Final = frozenset({"plain_text", "mrkdwn"})

# --- Views -----------------------------------------------------------------------------------
VIEW_TITLE_MAX: Final = 24
VIEW_BUTTON_MAX: Final = 24
"""The submit and close labels of a modal."""
PRIVATE_METADATA_MAX: Final = 3000
VIEW_BYTES_MAX: Final = 250_000
"""`view_too_large`: "the provided view is greater than 250kb"."""

# --- Messages --------------------------------------------------------------------------------
MESSAGE_TEXT_MAX: Final = 4000
"""`msg_too_long`. chat.update's reference states 4,000; Slack staff confirmed in 2024 that
chat.postMessage now refuses past it too (its docs still speak of truncation at 40,000)."""
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
