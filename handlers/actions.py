"""Button presses on a candidate's card: approve, reject (opens a modal), details."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.bootstrap import Gatekeeper
from bot.domain.approvals import Decision
from bot.domain.errors import GatekeeperError
from bot.domain.promotion import CandidateState
from bot.services.candidates import summary
from bot.services.voting import cast_vote
from bot.store.repositories import UnitOfWork
from handlers.blocks import Action, ButtonValue, details_modal, reject_modal
from handlers.context import Origin
from handlers.errors import guarded


class NoEngine(GatekeeperError):
    pass


class PressExpired(GatekeeperError):
    pass


#: Slack's answers to a modal opened with a trigger_id used, expired (3 s) or never issued.
_SPENT = frozenset({"expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id"})


def _pressed(body: dict[str, Any]) -> ButtonValue:
    return ButtonValue.decode(body["actions"][0].get("value"))


def _ack(ack: Ack) -> None:
    ack()


def _open(client: WebClient, body: dict[str, Any], view: dict[str, Any]) -> None:
    """Open ``view`` for the press in ``body``, within the 3 seconds its trigger_id lasts."""
    spent = PressExpired(
        "Slack no longer lets Gatekeeper open a dialog for that press; press the button again."
    )
    trigger_id = body.get("trigger_id")
    if not isinstance(trigger_id, str) or not trigger_id:
        raise spent
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as refused:
        if refused.response.get("error") in _SPENT:
            raise spent from None
        raise


def register(app: App, gatekeeper: Gatekeeper) -> None:
    @app.action(Action.APPROVE)
    def approve(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        value = _pressed(body)
        origin = Origin.of(body)

        def refusal(uow: UnitOfWork, why: str) -> None:
            if origin.channel:
                gatekeeper.notifier.privately(
                    uow, origin.channel, origin.user, f":no_entry_sign: {why}", gatekeeper.now()
                )

        cast = cast_vote(
            gatekeeper.unit_of_work,
            gatekeeper.policy_for,
            gatekeeper.membership,
            value.candidate_id,
            Origin.of(body).user,
            Decision.APPROVE,
            gatekeeper.now(),
            notifier=gatekeeper.notifier,
            tell=refusal,
        )
        gatekeeper.delivery.wake()
        if cast.state is CandidateState.APPROVED:
            gatekeeper.promote_later(value.candidate_id)

    def open_reject_modal(body: dict[str, Any], client: WebClient) -> None:
        shown = summary(gatekeeper.unit_of_work, gatekeeper.policy_for, _pressed(body).candidate_id)
        _open(client, body, reject_modal(shown))

    def open_details(body: dict[str, Any], client: WebClient) -> None:
        shown = summary(gatekeeper.unit_of_work, gatekeeper.policy_for, _pressed(body).candidate_id)
        _open(client, body, details_modal(shown))

    def roll_back(body: dict[str, Any]) -> None:
        if gatekeeper.promotions is None:
            raise NoEngine("rolling back needs the promotion engine, which is not configured")
        gatekeeper.promotions.roll_back(_pressed(body).candidate_id, Origin.of(body).user)
        gatekeeper.delivery.wake()

    app.action(Action.ROLLBACK)(ack=_ack, lazy=[guarded(gatekeeper, roll_back)])
    # Opening a modal is a Web API call: it runs after the ack, within the trigger's 3 seconds.
    app.action(Action.REJECT)(ack=_ack, lazy=[guarded(gatekeeper, open_reject_modal)])
    app.action(Action.DETAILS)(ack=_ack, lazy=[guarded(gatekeeper, open_details)])
