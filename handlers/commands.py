"""`/promote`: parse the text, answer what can be answered at once, hand the rest to services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, App

from bot.bootstrap import Gatekeeper
from bot.domain.errors import GatekeeperError
from bot.services.candidates import summaries
from bot.services.views import CandidateSummary
from handlers.promote_command import (
    USAGE,
    Help,
    List,
    Plan,
    PromoteCommand,
    Request,
    Rollback,
    Status,
    parse_promote,
)

_LIST_LIMIT = 30


def register(app: App, gatekeeper: Gatekeeper) -> None:
    @app.command("/promote")
    def promote(ack: Ack, body: dict[str, Any]) -> None:
        try:
            command = parse_promote(body.get("text", ""))
            ack(text=answer(gatekeeper, command))
        except GatekeeperError as error:
            # A slash command's ack text is shown only to whoever typed it.
            ack(text=str(error))


def answer(gatekeeper: Gatekeeper, command: PromoteCommand) -> str:
    match command:
        case Help():
            return USAGE
        case List():
            return _listing(summaries(gatekeeper.unit_of_work, gatekeeper.policy_for))
        case Status(model=model):
            if model is not None:
                gatekeeper.channel_for(model)  # an unknown model is named as such
            return _status(gatekeeper, model)
        case Request() | Plan() | Rollback():
            raise NotYetAvailable(
                "requesting, planning and rolling back promotions from Slack arrive with "
                "the promotion engine; until then candidates come from the database"
            )


class NotYetAvailable(GatekeeperError):
    pass


def _listing(candidates: Sequence[CandidateSummary]) -> str:
    if not candidates:
        return "Nothing is waiting: no candidate is pending, blocked, approved or promoting."
    lines = [f"*{len(candidates)} candidate{'s' if len(candidates) != 1 else ''}*"]
    lines += [_line(c) for c in candidates[:_LIST_LIMIT]]
    if len(candidates) > _LIST_LIMIT:
        lines.append(f"… and {len(candidates) - _LIST_LIMIT} more")
    return "\n".join(lines)


def _line(c: CandidateSummary) -> str:
    needs = f", needs {c.missing_approvals} more approval(s)" if c.missing_approvals else ""
    state = c.state.value.replace("_", " ")
    return f"• #{c.id} *{c.model}* v{c.version} `{c.source_env}` → `{c.target_env}`: {state}{needs}"


def _status(gatekeeper: Gatekeeper, model: str | None) -> str:
    models = [model] if model else sorted(gatekeeper.config.models)
    lines: list[str] = []
    with gatekeeper.unit_of_work() as uow:
        for name in models:
            champions = []
            for environment in gatekeeper.config.promotion_path:
                current = uow.champions.current(name, environment)
                champions.append(f"`{environment}` v{current.version if current else '—'}")
            lines.append(f"*{name}*  champions: " + ", ".join(champions))
    live = summaries(gatekeeper.unit_of_work, gatekeeper.policy_for, model=model)
    lines += [_line(c) for c in live[:_LIST_LIMIT]] or ["No live candidates."]
    return "\n".join(lines)
