"""`/promote`: parse the text, answer what can be answered at once, hand the rest to services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, App

from bot.bootstrap import Gatekeeper
from bot.domain.errors import GatekeeperError
from bot.domain.promotion import CandidateState
from bot.services.candidates import summaries, summary
from bot.services.requests import Wanted
from bot.services.views import CandidateSummary
from handlers.context import Origin
from handlers.errors import guarded, tell
from handlers.promote_command import (
    USAGE,
    Help,
    List,
    Plan,
    PromoteCommand,
    Request,
    Rollback,
    Status,
    UsageError,
    parse_promote,
)

_LIST_LIMIT = 30


def register(app: App, gatekeeper: Gatekeeper) -> None:
    def parse_and_ack(ack: Ack, body: dict[str, Any]) -> None:
        try:
            command = parse_promote(body.get("text", ""))
            ack(text=answer(gatekeeper, command))
        except GatekeeperError as error:
            # A slash command's ack text is shown only to whoever typed it.
            ack(text=str(error))

    def carry_out(body: dict[str, Any]) -> None:
        try:
            command = parse_promote(body.get("text", ""))
        except UsageError:
            return  # the ack said what was wrong
        if isinstance(command, Request | Plan | Rollback):
            tell(gatekeeper, Origin.of(body), carry(gatekeeper, command, Origin.of(body).user))

    # Requests, plans and rollbacks read MLflow and move things: after the ack, told privately.
    app.command("/promote")(ack=parse_and_ack, lazy=[guarded(gatekeeper, carry_out)])


def answer(gatekeeper: Gatekeeper, command: PromoteCommand) -> str:
    """The ack's text: the whole answer for quick subcommands, a receipt for slow ones."""
    match command:
        case Help():
            return USAGE
        case List():
            return _listing(summaries(gatekeeper.unit_of_work, gatekeeper.policy_for))
        case Status(model=model):
            if model is not None:
                gatekeeper.channel_for(model)  # an unknown model is named as such
            return _status(gatekeeper, model)
        case Request(model=model):
            return f":hourglass_flowing_sand: Looking up {model} in MLflow…"
        case Plan(model=model, version=version, target=target):
            return f":hourglass_flowing_sand: Planning {model} v{version} into {target}…"
        case Rollback(model=model, env=env):
            return f":hourglass_flowing_sand: Rolling back {model} in {env}…"


def carry(gatekeeper: Gatekeeper, command: Request | Plan | Rollback, user: str) -> str:
    """Do what a slow subcommand asks; the text the person is told afterwards."""
    now = gatekeeper.now()
    match command:
        case Request(model=model, version=version, alias=alias, target=target):
            wanted = Wanted(model, version, alias, target)
            candidate_id = gatekeeper.requests.request(wanted, requester=user, actor=user, now=now)
            shown = summary(gatekeeper.unit_of_work, gatekeeper.policy_for, candidate_id)
            if shown.state is CandidateState.APPROVED:
                gatekeeper.promote_later(candidate_id)
            channel = gatekeeper.channel_for(model)
            return (
                f"Candidate #{candidate_id}: {model} v{shown.version} "
                f"`{shown.source_env}` → `{shown.target_env}` is {shown.state.value} "
                f"(card in <#{channel}>)."
            )
        case Plan(model=model, version=version, target=target):
            resolved, verdict, actions = gatekeeper.requests.plan(
                Wanted(model, version, None, target), now
            )
            lines = [
                f"*Plan: {model} v{version} `{resolved.source.name}` → `{target}`* (dry run, "
                f"nothing changed) — verdict: {verdict.kind.value.replace('_', ' ')}",
                *(f"• {reason}" for reason in verdict.reasons),
                *(f"{n}. {action.description}" for n, action in enumerate(actions, 1)),
            ]
            return "\n".join(lines)[:3000]
        case Rollback(model=model, env=env, to_version=to_version):
            if gatekeeper.promotions is None:
                raise NotYetAvailable(
                    "rolling back needs the promotion engine, which is not configured"
                )
            version = gatekeeper.promotions.roll_back_environment(model, env, user, to_version)
            return f"{model} in {env} is back on v{version}."


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
    with gatekeeper.unit_of_work().reading() as uow:
        for name in models:
            champions = []
            for environment in gatekeeper.config.promotion_path:
                current = uow.champions.current(name, environment)
                champions.append(f"`{environment}` v{current.version if current else '—'}")
            lines.append(f"*{name}*  champions: " + ", ".join(champions))
    live = summaries(gatekeeper.unit_of_work, gatekeeper.policy_for, model=model)
    lines += [_line(c) for c in live[:_LIST_LIMIT]] or ["No live candidates."]
    return "\n".join(lines)
