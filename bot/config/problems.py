"""What is wrong with a gatekeeper.yaml, said as a key path, the problem and the fix.

Pydantic's errors are written for programmers ("Input should be a valid dictionary"); this module
turns them, and the checks that span sections, into lines an operator can act on.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic_core import ErrorDetails, ValidationError

from bot.config.schema import PolicySpec
from bot.config.values import PROBLEM
from bot.domain.approvals import is_user_group
from bot.domain.policy import OnFail

#: The key path of problems with the file as a whole.
FILE = "(file)"


@dataclass(frozen=True)
class ConfigProblem:
    path: str  # dotted key path, e.g. "policies.production.approvers.1", or FILE
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} — {self.fix}"


class ConfigError(Exception):
    """gatekeeper.yaml is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the Gatekeeper config:\n{lines}")


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list, e.g. [a, b]",
    "tuple_type": "a list, e.g. [a, b]",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def problems_from(error: ValidationError, prefix: str, annotation: Any) -> list[ConfigProblem]:
    """Each of pydantic's errors as a problem at its key path under ``prefix``.

    ``annotation`` is the type that was validated; it names the keys a misspelled key could be.
    """
    return [_problem(details, prefix, annotation) for details in error.errors()]


def _problem(details: ErrorDetails, prefix: str, annotation: Any) -> ConfigProblem:
    keys, model = _locate(annotation, details["loc"])
    path = ".".join([prefix, *keys])
    kind, context, got = details["type"], details.get("ctx", {}), _shown(details["input"])
    if kind == PROBLEM:
        return ConfigProblem(path, str(context["message"]), str(context["fix"]))
    if kind == "missing":
        return ConfigProblem(path, "missing", "add it")
    if kind == "extra_forbidden":
        known = ", ".join(_keys(model)) if model is not None else "see gatekeeper.example.yaml"
        return ConfigProblem(
            path, "unknown key", f"remove it or fix its spelling; known keys: {known}"
        )
    if kind in _EXPECTED:
        return ConfigProblem(path, f"wrong type: got {got}", f"expected {_EXPECTED[kind]}")
    if kind in ("literal_error", "enum"):
        return ConfigProblem(path, f"{got} is not allowed", f"expected {context['expected']}")
    if kind == "greater_than_equal":
        return ConfigProblem(path, f"{got} is too small", f"use {context['ge']} or more")
    return ConfigProblem(path, details["msg"], "see gatekeeper.example.yaml for the expected form")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _locate(annotation: Any, loc: Sequence[int | str]) -> tuple[list[str], type[BaseModel] | None]:
    """The key path a person wrote for ``loc``, and the model the last key belongs to.

    Walking the validated type is what drops the union tags pydantic puts into ``loc``.
    """
    keys: list[str] = []
    owner: type[BaseModel] | None = None
    current = annotation
    for part in loc:
        current = _bare(current)
        if get_origin(current) in (Union, types.UnionType):
            members = [_bare(m) for m in get_args(current) if m is not type(None)]
            tagged = _tagged(current, part)
            if tagged is not None:
                current = tagged
                continue
            current = members[0] if len(members) == 1 else None
        keys.append(str(part))
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            current = _field(current, part)
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            current = None
    return keys, owner


def _bare(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _tagged(union: Any, tag: int | str) -> Any:
    """The member of a discriminated union that pydantic named ``tag``, if any."""
    for member in get_args(union):
        if get_origin(member) is Annotated and any(
            isinstance(meta, Tag) and meta.tag == tag for meta in member.__metadata__
        ):
            return _bare(member)
    return None


def _field(model: type[BaseModel], key: int | str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info.annotation
    return None


def _keys(model: type[BaseModel]) -> Iterator[str]:
    return (info.alias or name for name, info in model.model_fields.items())


def check_consistency(
    environments: Sequence[str] | None,
    promotion_path: Sequence[str] | None,
    policy_names: Sequence[str] | None,
    policies: Mapping[str, PolicySpec],
) -> list[ConfigProblem]:
    """Problems no single section shows: names that do not match up, rules that cannot be met.

    ``environments`` and ``policy_names`` are every name written, valid or not, so that one bad
    entry is reported once rather than again as "not defined". None stands for a section that is
    missing or unreadable as a whole: already a problem, so checks that need it are skipped.
    """
    problems: list[ConfigProblem] = []
    if promotion_path is not None:
        problems += _path_problems(environments, promotion_path)
    if promotion_path and policy_names is not None:
        problems += _policies_along(environments, promotion_path, policy_names)
    if environments is not None and policy_names is not None:
        known = ", ".join(environments)
        problems += [
            ConfigProblem(
                f"policies.{name}",
                f"{name!r} is not a defined environment",
                f"rename it to one of: {known}; or remove it",
            )
            for name in policy_names
            if name not in environments
        ]
    for name, policy in policies.items():
        problems += _policy_problems(f"policies.{name}", policy)
    return problems


def _path_problems(
    environments: Sequence[str] | None, promotion_path: Sequence[str]
) -> Iterator[ConfigProblem]:
    seen: set[str] = set()
    for index, name in enumerate(promotion_path):
        if name in seen:
            yield ConfigProblem(
                f"promotion_path.{index}",
                f"{name} appears twice",
                "list each environment once, in the order models are promoted",
            )
        elif environments is not None and name not in environments:
            yield ConfigProblem(
                f"promotion_path.{index}",
                f"{name!r} is not a defined environment",
                f"define environments.{name}, or use one of: {', '.join(environments)}",
            )
        seen.add(name)


def _policies_along(
    environments: Sequence[str] | None, promotion_path: Sequence[str], policy_names: Sequence[str]
) -> Iterator[ConfigProblem]:
    first, *promoted_into = promotion_path
    if first in policy_names:
        yield ConfigProblem(
            f"policies.{first}",
            f"nothing is promoted into {first}: it is first in promotion_path",
            f"remove policies.{first}, or move {first} later in promotion_path",
        )
    for name in promoted_into:
        # An undefined name is already a promotion_path problem.
        if name not in policy_names and (environments is None or name in environments):
            yield ConfigProblem(
                f"policies.{name}",
                f"{name} is promoted into but has no policy",
                f"every environment promoted into needs a policy: add policies.{name}",
            )


def _policy_problems(path: str, policy: PolicySpec) -> Iterator[ConfigProblem]:
    if policy.approvals > 0 and not policy.approvers:
        yield ConfigProblem(
            f"{path}.approvers",
            f"approvals is {policy.approvals} but nobody may approve",
            "list approvers (Slack user or user-group IDs), or set approvals: 0 to let the gates "
            "decide",
        )
    elif not any(is_user_group(approver) for approver in policy.approvers) and (
        policy.approvals > len(policy.approvers)
    ):
        yield ConfigProblem(
            f"{path}.approvals",
            f"{policy.approvals} approvals needed but only {len(policy.approvers)} approver(s)",
            f"lower approvals to {len(policy.approvers)} or fewer, or add approvers",
        )
    if policy.on_fail is OnFail.OVERRIDE and not policy.override_by:
        yield ConfigProblem(
            f"{path}.override_by",
            "on_fail is override but nobody may override",
            "list override_by (Slack user or user-group IDs), or set on_fail: block",
        )
    if policy.on_fail is OnFail.BLOCK and policy.override_by:
        yield ConfigProblem(
            f"{path}.override_by",
            "override_by has no effect while on_fail is block",
            "set on_fail: override, or remove override_by",
        )
