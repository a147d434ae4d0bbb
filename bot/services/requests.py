"""Turning "promote this model version" into a candidate, or into a plan of what would happen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.config import GatekeeperConfig
from bot.domain.candidates import Candidate, parse_bundle
from bot.domain.errors import GatekeeperError
from bot.domain.plan import Action, Place, plan
from bot.domain.policy import Verdict, evaluate
from bot.services.candidates import Champion, propose
from bot.services.notify import Notifier
from bot.services.registry import ModelNotFound, ModelRegistry
from bot.store.repositories import UnitOfWork


class BadRequest(GatekeeperError):
    pass


@dataclass(frozen=True)
class Wanted:
    """What a person or a pipeline asked for; None leaves the choice to the promotion path."""

    model: str
    version: str | None = None
    alias: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Resolved:
    candidate: Candidate
    champion: Champion | None
    source: Place
    target: Place
    champion_alias: str


@dataclass
class Requests:
    config: GatekeeperConfig
    registries: Mapping[str, ModelRegistry]
    unit_of_work: Callable[[], UnitOfWork]
    notifier: Notifier

    def resolve(self, wanted: Wanted, requester: str | None) -> Resolved:
        """Find the version in its environment's MLflow and the champion it would replace."""
        registered = self.config.model(wanted.model)
        path = self.config.promotion_path
        target = wanted.target or path[1]
        if target not in path:
            raise BadRequest(f"{target!r} is not on the promotion path ({' → '.join(path)})")
        source = self.config.previous_environment(target)
        if source is None:
            raise BadRequest(f"{target} is where models start; nothing is promoted into it")
        registry = self.registries[source]
        if wanted.version is not None:
            info = registry.get_version(wanted.model, wanted.version)
        elif wanted.alias is not None:
            found = registry.get_by_alias(wanted.model, wanted.alias)
            if found is None:
                raise BadRequest(f"{wanted.model}@{wanted.alias} is not set in {source}")
            info = found
        else:
            info = registry.latest_version(wanted.model)
        try:
            held = self.registries[target].champion(wanted.model, registered.champion_alias)
        except ModelNotFound:
            held = None  # the first promotion into the target creates the model there
        candidate = Candidate(
            model=wanted.model,
            version=info.version,
            source_env=source,
            target_env=target,
            metrics=dict(info.metrics),
            bundle=parse_bundle(info.tags),
            requester=requester,
        )
        champion = Champion(held.version, dict(held.metrics)) if held else None
        return Resolved(
            candidate, champion, self._place(source), self._place(target),
            registered.champion_alias,
        )  # fmt: skip

    def request(self, wanted: Wanted, requester: str | None, actor: str, now: datetime) -> int:
        """Propose the version for its target: the card appears in the model's channel."""
        resolved = self.resolve(wanted, requester)
        return propose(
            self.unit_of_work, self.config.policy_for, self.notifier, resolved.candidate,
            resolved.champion, actor=actor, now=now,
        )  # fmt: skip

    def plan(self, wanted: Wanted, now: datetime) -> tuple[Resolved, Verdict, list[Action]]:
        """The verdict and every action a promotion would take; nothing is written anywhere."""
        resolved = self.resolve(wanted, requester=None)
        policy = self.config.policy_for(resolved.candidate.target_env)
        champion = resolved.champion.metrics if resolved.champion else None
        verdict = evaluate(policy, resolved.candidate, champion, now)
        actions = plan(
            resolved.candidate, resolved.source, resolved.target, resolved.champion_alias
        )
        return resolved, verdict, actions

    def _place(self, name: str) -> Place:
        spec = self.config.environments[name]
        return Place(name, spec.images, spec.snapshots, spec.kfp, spec.model_name)
