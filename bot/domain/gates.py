"""Quality gates written as text (``accuracy >= champion - 0.005``), parsed once and judged often.

Grammar::

    gate      := metric comparator threshold
    threshold := number | "champion" [ ("+" | "-" | "*" | "/") number ]
    comparator:= ">=" | "<=" | ">" | "<" | "==" | "!="

``champion`` stands for the champion's value of the same metric.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.errors import InvalidGate

CHAMPION = "champion"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# Thresholds are computed in binary floating point (100 * 1.10 == 110.00000000000001), so every
# comparator treats values within rounding error as equal, not only == and !=.
_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b or _close(a, b),
    "<=": lambda a, b: a <= b or _close(a, b),
    ">": lambda a, b: a > b and not _close(a, b),
    "<": lambda a, b: a < b and not _close(a, b),
    "==": _close,
    "!=": lambda a, b: not _close(a, b),
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_GATE = re.compile(
    rf"""^\s*
    (?P<metric>[A-Za-z_][\w./-]*)\s*
    (?P<comparator>>=|<=|==|!=|>|<)\s*
    (?:
        (?P<number>{_NUMBER})
      | (?P<champion>{CHAMPION})(?:\s*(?P<arith>[-+*/])\s*(?P<operand>{_NUMBER}))?
    )\s*$""",
    re.VERBOSE,
)


class GateOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    MISSING_METRIC = "missing_metric"  # the candidate did not log the metric
    NO_CHAMPION = "no_champion"  # a relative gate, and nothing holds the champion alias yet
    CHAMPION_MISSING_METRIC = "champion_missing_metric"  # the champion never logged the metric


@dataclass(frozen=True)
class Gate:
    metric: str
    comparator: str
    #: Absolute threshold, or the operand applied to the champion's value when ``relative``.
    number: float
    relative: bool = False
    arithmetic: str | None = None
    expression: str = ""

    def __str__(self) -> str:
        return self.expression or self._canonical()

    def _canonical(self) -> str:
        if not self.relative:
            return f"{self.metric} {self.comparator} {self.number:g}"
        if self.arithmetic is None:
            return f"{self.metric} {self.comparator} {CHAMPION}"
        return f"{self.metric} {self.comparator} {CHAMPION} {self.arithmetic} {self.number:g}"

    def threshold(self, champion_value: float) -> float:
        """The value the candidate's metric is compared with, given the champion's."""
        if not self.relative:
            return self.number
        if self.arithmetic is None:
            return champion_value
        return _ARITHMETIC[self.arithmetic](champion_value, self.number)


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    outcome: GateOutcome
    value: float | None = None
    threshold: float | None = None
    champion_value: float | None = None

    @property
    def passed(self) -> bool:
        return self.outcome is GateOutcome.PASSED

    def explain(self) -> str:
        """One line a person reads beside the gate: what was compared and how it came out."""
        gate = self.gate
        match self.outcome:
            case GateOutcome.MISSING_METRIC:
                return f"{gate}: the candidate has no metric {gate.metric!r}"
            case GateOutcome.NO_CHAMPION:
                return f"{gate}: there is no champion to compare with"
            case GateOutcome.CHAMPION_MISSING_METRIC:
                return f"{gate}: the champion has no metric {gate.metric!r}"
        assert self.value is not None
        assert self.threshold is not None
        verb = "passes" if self.passed else "fails"
        basis = "" if self.champion_value is None else f" (champion {self.champion_value:.6g})"
        return f"{gate}: {gate.metric} {self.value:.6g} {verb} against {self.threshold:.6g}{basis}"


def parse_gate(expression: str) -> Gate:
    """Parse one gate; ``InvalidGate`` says what is wrong and what a gate looks like."""
    match = _GATE.match(expression)
    if match is None:
        raise InvalidGate(
            expression,
            "expected '<metric> <op> <number>' or '<metric> <op> champion [+-*/ <number>]', "
            "with <op> one of >= <= > < == != (e.g. 'accuracy >= champion - 0.005')",
        )
    metric = match["metric"]
    if metric == CHAMPION:
        raise InvalidGate(expression, "the metric's name cannot be 'champion'")
    if match["number"] is not None:
        number = float(match["number"])
        relative, arithmetic = False, None
    else:
        relative, arithmetic = True, match["arith"]
        number = float(match["operand"]) if arithmetic else 0.0
        if arithmetic == "/" and number == 0:
            raise InvalidGate(expression, "division by zero")
    if not math.isfinite(number):
        raise InvalidGate(expression, "the number must be finite")
    return Gate(
        metric=metric,
        comparator=match["comparator"],
        number=number,
        relative=relative,
        arithmetic=arithmetic,
        expression=" ".join(expression.split()),
    )


def evaluate_gate(
    gate: Gate,
    metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
) -> GateResult:
    """Judge one gate; ``champion_metrics`` is None when no version holds the champion alias."""
    value = metrics.get(gate.metric)
    if value is None:
        return GateResult(gate, GateOutcome.MISSING_METRIC)
    champion_value: float | None = None
    if gate.relative:
        if champion_metrics is None:
            return GateResult(gate, GateOutcome.NO_CHAMPION, value=value)
        champion_value = champion_metrics.get(gate.metric)
        if champion_value is None:
            return GateResult(gate, GateOutcome.CHAMPION_MISSING_METRIC, value=value)
    threshold = gate.threshold(champion_value if champion_value is not None else 0.0)
    passed = _COMPARATORS[gate.comparator](value, threshold)
    return GateResult(
        gate,
        GateOutcome.PASSED if passed else GateOutcome.FAILED,
        value=value,
        threshold=threshold,
        champion_value=champion_value,
    )
