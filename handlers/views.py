"""Modal submissions: the reason a candidate is rejected."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.bootstrap import Gatekeeper
from bot.domain.approvals import Decision
from bot.domain.errors import GatekeeperError
from bot.services.voting import cast_vote
from handlers.blocks import Action, BlockId, ButtonValue, submitted_reason
from handlers.context import Origin


def register(app: App, gatekeeper: Gatekeeper) -> None:
    @app.view(Action.REJECT_MODAL)
    def reject(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        state = view.get("state")
        try:
            value = ButtonValue.decode(view.get("private_metadata"))
            cast_vote(
                gatekeeper.unit_of_work,
                gatekeeper.policy_for,
                gatekeeper.membership,
                value.candidate_id,
                Origin.of(body).user,
                Decision.REJECT,
                gatekeeper.now(),
                reason=submitted_reason(state.get("values") if isinstance(state, dict) else None),
                notifier=gatekeeper.notifier,
            )
        except GatekeeperError as refused:
            # Shown under the reason field, in the modal the person is looking at.
            ack(response_action="errors", errors={BlockId.REJECT_REASON: str(refused)[:150]})
            return
        ack()
        gatekeeper.delivery.wake()
