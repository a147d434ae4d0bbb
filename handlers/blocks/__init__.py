"""Block Kit renderers: pure functions from read models to Slack message and view payloads.

Every renderer builds with slack_sdk's model classes (which check lengths as they build) and
returns plain dicts; ``limits.check`` holds a finished payload to the rest of Slack's limits.
"""

from handlers.blocks.actions import Action, BlockId, ButtonValue, InvalidButtonValue
from handlers.blocks.card import CONFIRM_TARGETS, candidate_card, card_buttons
from handlers.blocks.home import home_view
from handlers.blocks.limits import BlockKitLimitExceeded, Problem, check, problems
from handlers.blocks.message import Message
from handlers.blocks.modals import details_modal, reject_modal, submitted_reason
from handlers.blocks.progress import denial, failed, promoted, rolled_back, step_message

__all__ = [
    "CONFIRM_TARGETS",
    "Action",
    "BlockId",
    "BlockKitLimitExceeded",
    "ButtonValue",
    "InvalidButtonValue",
    "Message",
    "Problem",
    "candidate_card",
    "card_buttons",
    "check",
    "denial",
    "details_modal",
    "failed",
    "home_view",
    "problems",
    "promoted",
    "reject_modal",
    "rolled_back",
    "step_message",
    "submitted_reason",
]
