"""Events: the App Home tab, published whenever someone opens it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.bootstrap import Gatekeeper
from bot.domain.approvals import is_member
from bot.domain.promotion import CandidateState
from bot.services.candidates import summaries
from bot.services.views import CandidateSummary
from handlers.blocks import home_view
from handlers.context import slack_id
from handlers.errors import guarded

logger = logging.getLogger(__name__)

#: Slack's answers to a Home tab published for someone it does not know (any more).
_GONE = frozenset({"invalid_arguments", "user_not_found"})
_RECENT = frozenset({CandidateState.PROMOTED, CandidateState.ROLLED_BACK, CandidateState.FAILED})


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, gatekeeper: Gatekeeper) -> None:
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        user = slack_id(event.get("user"))
        if user is None:
            return  # no person named as Slack names them: nobody to show the tab to

        def mine(candidate: CandidateSummary) -> bool:
            policy = gatekeeper.policy_for(candidate.target_env)
            return user not in candidate.approvals and is_member(
                user, policy.approvers | candidate.override_by, gatekeeper.membership
            )

        waiting = [
            c
            for c in summaries(
                gatekeeper.unit_of_work,
                gatekeeper.policy_for,
                frozenset({CandidateState.PENDING, CandidateState.BLOCKED}),
            )
            if mine(c)
        ]
        recent = list(summaries(gatekeeper.unit_of_work, gatekeeper.policy_for, _RECENT))[-20:]
        champions: dict[tuple[str, str], str] = {}
        with gatekeeper.unit_of_work().reading() as uow:
            for model in sorted(gatekeeper.config.models):
                for environment in gatekeeper.config.promotion_path:
                    current = uow.champions.current(model, environment)
                    if current is not None:
                        champions[(model, environment)] = current.version
        try:
            client.views_publish(
                user_id=user, view=home_view(waiting, list(reversed(recent)), champions)
            )
        except SlackApiError as refused:
            # Slack names only its own people; one it refuses has left (or been deactivated)
            # since opening the tab, and there is no channel to tell them in.
            if refused.response.get("error") not in _GONE:
                raise
            logger.warning("Slack refused %s's Home tab: %s", user, refused.response["error"])

    app.event("app_home_opened")(ack=_ack, lazy=[guarded(gatekeeper, publish_home)])
