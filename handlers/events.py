"""Events: the App Home tab, published whenever someone opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.bootstrap import Gatekeeper
from bot.domain.approvals import is_member
from bot.domain.promotion import CandidateState
from bot.services.candidates import summaries
from bot.services.views import CandidateSummary
from handlers.blocks import home_view
from handlers.errors import guarded

_RECENT = frozenset({CandidateState.PROMOTED, CandidateState.ROLLED_BACK, CandidateState.FAILED})


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, gatekeeper: Gatekeeper) -> None:
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        user = event["user"]

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
        client.views_publish(
            user_id=user, view=home_view(waiting, list(reversed(recent)), champions)
        )

    app.event("app_home_opened")(ack=_ack, lazy=[guarded(gatekeeper, publish_home)])
