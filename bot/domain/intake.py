"""Which registry events, and which model versions, ask for a candidate, and for where.

MLflow's webhooks and the polling fallback both end in ``requested_target``: one rule set, so
either way in gives the same candidates. A version asks to be promoted when it carries
``gatekeeper.*`` bundle tags, a ``gatekeeper.promote`` request, or the request alias. The
candidate is always for the next environment on the path; a ``gatekeeper.promote`` naming one
further on travels with the copy Gatekeeper makes there, whose champion then asks again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from bot.domain.candidates import LINEAGE_TAG, PROMOTE_TAG, TAG_PREFIX
from bot.domain.errors import GatekeeperError

VERSION_CREATED = "model_version.created"
TAG_SET = "model_version_tag.set"
ALIAS_CREATED = "model_version_alias.created"
#: The registry events Gatekeeper subscribes to; MLflow sends nothing else to it.
SUBSCRIBED = (VERSION_CREATED, TAG_SET, ALIAS_CREATED)
#: An entity's or an action's name; two of them and a dot fit the 64 characters a kind is kept in.
_NAME = re.compile(r"[a-z][a-z_]{0,30}")


class MalformedEvent(GatekeeperError):
    """A webhook body that is not an MLflow registry event; the message says what is wrong."""


@dataclass(frozen=True)
class RegistryEvent:
    """One MLflow webhook event; ``name`` and ``version`` are set for the events acted on."""

    kind: str  # entity.action, e.g. model_version.created
    name: str | None = None  # the registered model's name in that environment's MLflow
    version: str | None = None
    key: str | None = None  # model_version_tag.set
    value: str | None = None
    alias: str | None = None  # model_version_alias.created

    @property
    def about_a_version(self) -> bool:
        return self.kind in SUBSCRIBED


def parse_event(body: object) -> RegistryEvent:
    """The event in a webhook body, checked field by field; ``MalformedEvent`` says what is off."""
    if not isinstance(body, Mapping):
        raise MalformedEvent("the body is not a JSON object")
    for field in ("entity", "action"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise MalformedEvent(f"'{field}' is missing or not text")
        if not _NAME.fullmatch(body[field]):
            # MLflow's are lowercase words (model_version_tag, set); the pair is stored as the
            # event's kind.
            raise MalformedEvent(f"'{field}' is not an MLflow name, got {body[field][:40]!r}")
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise MalformedEvent("'data' is missing or not an object")
    kind = f"{body['entity']}.{body['action']}"
    if kind not in SUBSCRIBED:
        return RegistryEvent(kind)  # prompts and the rest: well formed, not for Gatekeeper
    needed = {
        VERSION_CREATED: ("name", "version"),
        TAG_SET: ("name", "version", "key", "value"),
        ALIAS_CREATED: ("name", "version", "alias"),
    }[kind]
    fields = {name: _text(data, name, kind) for name in needed}
    if not fields["name"]:
        raise MalformedEvent(f"{kind}: 'name' is empty")
    if not (fields["version"].isascii() and fields["version"].isdigit()):
        raise MalformedEvent(f"{kind}: 'version' must be a whole number, got {fields['version']!r}")
    return RegistryEvent(kind, **fields)


def _text(data: Mapping[str, object], name: str, kind: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise MalformedEvent(f"{kind}: 'data.{name}' is missing or not text")
    return value


def worth_a_look(event: RegistryEvent, request_alias: str | None, champion_alias: str) -> bool:
    """Whether the event may change what a version asks for; the rest are ignored unread."""
    if event.kind == VERSION_CREATED:
        return True
    if event.kind == TAG_SET:
        return event.key == PROMOTE_TAG
    if event.kind == ALIAS_CREATED:
        return event.alias is not None and event.alias in (request_alias, champion_alias)
    return False


@dataclass(frozen=True)
class Asks:
    """The version asks to become a candidate for ``target``."""

    target: str


@dataclass(frozen=True)
class NotAsking:
    """The version asks for nothing (yet); ``reason`` says why it was passed over."""

    reason: str


@dataclass(frozen=True)
class BadAsk:
    """The version asks for something impossible; ``reason`` is meant for a person."""

    reason: str


Answer = Asks | NotAsking | BadAsk


def requested_target(
    path: Sequence[str],
    environment: str,
    tags: Mapping[str, str],
    aliases: Collection[str],
    *,
    request_alias: str | None,
    champion_alias: str,
) -> Answer:
    """What a version in ``environment`` asks for, from its tags and aliases as they are now."""
    position = path.index(environment)
    if position + 1 >= len(path):
        return NotAsking(f"{environment} is the end of the promotion path")
    next_env = path[position + 1]
    own_copy = any(key.startswith(LINEAGE_TAG) for key in tags)
    promote = tags.get(PROMOTE_TAG)
    if promote is not None:
        wanted = promote.strip()
        if own_copy and (not wanted or wanted not in path or path.index(wanted) <= position):
            # The request that brought Gatekeeper's copy here, copied along with the bundle.
            return NotAsking("Gatekeeper's copy; its gatekeeper.promote asked for this environment")
        wanted = wanted or next_env
        if wanted not in path:
            return BadAsk(
                f"{PROMOTE_TAG} is {wanted!r}, which is not on the promotion path "
                f"({' → '.join(path)})"
            )
        if path.index(wanted) <= position:
            return BadAsk(
                f"{PROMOTE_TAG} is {wanted!r}, which is not after {environment} on the "
                f"promotion path ({' → '.join(path)})"
            )
        if own_copy and champion_alias not in aliases:
            return NotAsking(f"Gatekeeper's copy; it goes on once it is the {champion_alias} here")
        return Asks(next_env)
    if request_alias is not None and request_alias in aliases:
        return Asks(next_env)
    if own_copy:
        return NotAsking("Gatekeeper's own copy of a promoted version")
    if any(key.startswith(TAG_PREFIX) for key in tags):
        return Asks(next_env)
    return NotAsking("no gatekeeper.* tags")
