"""Pins how gate expressions parse, how they judge metrics, and what a person reads about them."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from bot.domain.errors import InvalidGate
from bot.domain.gates import GateOutcome, GateResult, evaluate_gate, parse_gate


def judge(
    expression: str, metrics: Mapping[str, float], champion: Mapping[str, float] | None = None
) -> GateResult:
    return evaluate_gate(parse_gate(expression), metrics, champion)


# expression, metric, comparator, number, relative, arithmetic
PARSED = [
    pytest.param("accuracy >= 0.90", "accuracy", ">=", 0.9, False, None, id="ge-absolute"),
    pytest.param("accuracy <= 0.9", "accuracy", "<=", 0.9, False, None, id="le-absolute"),
    pytest.param("accuracy > 0.9", "accuracy", ">", 0.9, False, None, id="gt-absolute"),
    pytest.param("accuracy < 0.9", "accuracy", "<", 0.9, False, None, id="lt-absolute"),
    pytest.param("accuracy == 0.9", "accuracy", "==", 0.9, False, None, id="eq-absolute"),
    pytest.param("accuracy != 0.9", "accuracy", "!=", 0.9, False, None, id="ne-absolute"),
    pytest.param("accuracy >= champion", "accuracy", ">=", 0.0, True, None, id="ge-champion"),
    pytest.param("accuracy <= champion", "accuracy", "<=", 0.0, True, None, id="le-champion"),
    pytest.param("accuracy > champion", "accuracy", ">", 0.0, True, None, id="gt-champion"),
    pytest.param("accuracy < champion", "accuracy", "<", 0.0, True, None, id="lt-champion"),
    pytest.param("accuracy == champion", "accuracy", "==", 0.0, True, None, id="eq-champion"),
    pytest.param("accuracy != champion", "accuracy", "!=", 0.0, True, None, id="ne-champion"),
    pytest.param(
        "accuracy >= champion - 0.005", "accuracy", ">=", 0.005, True, "-", id="champion-minus"
    ),
    pytest.param(
        "latency_p95_ms <= champion * 1.10",
        "latency_p95_ms",
        "<=",
        1.1,
        True,
        "*",
        id="champion-times",
    ),
    pytest.param(
        "accuracy >= champion + 0.01", "accuracy", ">=", 0.01, True, "+", id="champion-plus"
    ),
    pytest.param("loss <= champion / 2", "loss", "<=", 2.0, True, "/", id="champion-divided"),
    pytest.param("accuracy>=0.9", "accuracy", ">=", 0.9, False, None, id="no-spaces"),
    pytest.param(
        "  accuracy   >=\t0.9  ", "accuracy", ">=", 0.9, False, None, id="extra-spaces-and-tab"
    ),
    pytest.param(
        "accuracy>=champion-0.005", "accuracy", ">=", 0.005, True, "-", id="champion-no-spaces"
    ),
    pytest.param(
        "latency <=champion*  1.1", "latency", "<=", 1.1, True, "*", id="champion-odd-spaces"
    ),
    pytest.param("loss <= 1e-3", "loss", "<=", 0.001, False, None, id="scientific"),
    pytest.param("loss <= 1.5E+2", "loss", "<=", 150.0, False, None, id="scientific-upper"),
    pytest.param(
        "accuracy >= champion - 5e-3", "accuracy", ">=", 0.005, True, "-", id="scientific-operand"
    ),
    pytest.param("accuracy >= .9", "accuracy", ">=", 0.9, False, None, id="leading-dot"),
    pytest.param("accuracy >= 9.", "accuracy", ">=", 9.0, False, None, id="trailing-dot"),
    pytest.param("delta >= -0.01", "delta", ">=", -0.01, False, None, id="negative"),
    pytest.param("drift <= +0.5", "drift", "<=", 0.5, False, None, id="explicit-plus"),
    pytest.param(
        "accuracy >= champion + -0.01", "accuracy", ">=", -0.01, True, "+", id="negative-operand"
    ),
    pytest.param(
        "eval/accuracy >= 0.9", "eval/accuracy", ">=", 0.9, False, None, id="name-with-slash"
    ),
    pytest.param("val.auc >= 0.8", "val.auc", ">=", 0.8, False, None, id="name-with-dot"),
    pytest.param(
        "_private_metric >= 1", "_private_metric", ">=", 1.0, False, None, id="name-underscores"
    ),
    pytest.param(
        "test/f1.macro_avg-v2 >= 0.7",
        "test/f1.macro_avg-v2",
        ">=",
        0.7,
        False,
        None,
        id="name-mixed",
    ),
]


@pytest.mark.parametrize(
    ("expression", "metric", "comparator", "number", "relative", "arithmetic"), PARSED
)
def test_parse_gate(
    expression: str,
    metric: str,
    comparator: str,
    number: float,
    relative: bool,
    arithmetic: str | None,
) -> None:
    gate = parse_gate(expression)

    assert gate.metric == metric
    assert gate.comparator == comparator
    assert gate.number == pytest.approx(number)
    assert gate.relative is relative
    assert gate.arithmetic == arithmetic


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        pytest.param("accuracy >= 0.9", "accuracy >= 0.9", id="as-written"),
        pytest.param("  accuracy   >=\t0.9  ", "accuracy >= 0.9", id="runs-of-space-collapsed"),
        pytest.param("accuracy>=champion-0.005", "accuracy>=champion-0.005", id="no-spaces-kept"),
    ],
)
def test_gate_shows_the_expression_with_whitespace_collapsed(expression: str, shown: str) -> None:
    assert str(parse_gate(expression)) == shown


P, F = GateOutcome.PASSED, GateOutcome.FAILED

# expression, candidate metrics, champion metrics, outcome
JUDGED = [
    pytest.param("accuracy >= 0.9", {"accuracy": 0.95}, None, P, id="ge-above"),
    pytest.param("accuracy >= 0.9", {"accuracy": 0.9}, None, P, id="ge-equal-passes"),
    pytest.param("accuracy >= 0.9", {"accuracy": 0.89}, None, F, id="ge-below"),
    pytest.param("accuracy > 0.9", {"accuracy": 0.91}, None, P, id="gt-above"),
    pytest.param("accuracy > 0.9", {"accuracy": 0.9}, None, F, id="gt-equal-fails"),
    pytest.param("accuracy <= 0.9", {"accuracy": 0.9}, None, P, id="le-equal-passes"),
    pytest.param("accuracy <= 0.9", {"accuracy": 0.91}, None, F, id="le-above"),
    pytest.param("accuracy < 0.9", {"accuracy": 0.89}, None, P, id="lt-below"),
    pytest.param("accuracy < 0.9", {"accuracy": 0.9}, None, F, id="lt-equal-fails"),
    pytest.param("accuracy == 0.9", {"accuracy": 0.9}, None, P, id="eq-equal"),
    pytest.param("accuracy == 0.9", {"accuracy": 0.91}, None, F, id="eq-differs"),
    pytest.param("accuracy == 0.3", {"accuracy": 0.1 + 0.2}, None, P, id="eq-float-error"),
    pytest.param("accuracy != 0.9", {"accuracy": 0.9}, None, F, id="ne-equal"),
    pytest.param("accuracy != 0.9", {"accuracy": 0.91}, None, P, id="ne-differs"),
    pytest.param("accuracy != 0.3", {"accuracy": 0.1 + 0.2}, None, F, id="ne-float-error"),
    pytest.param("delta >= -0.01", {"delta": -0.005}, None, P, id="negative-above"),
    pytest.param("delta >= -0.01", {"delta": -0.02}, None, F, id="negative-below"),
    pytest.param("loss <= 1e-3", {"loss": 0.0005}, None, P, id="scientific-below"),
    pytest.param("loss <= 1e-3", {"loss": 0.002}, None, F, id="scientific-above"),
    pytest.param("eval/acc.top_1 >= 0.5", {"eval/acc.top_1": 0.6}, None, P, id="odd-name"),
    pytest.param("accuracy >= 0.9", {"accuracy": 0.95}, {}, P, id="absolute-with-empty-champion"),
    pytest.param(
        "accuracy >= 0.9", {"accuracy": 0.8}, {"accuracy": 0.1}, F, id="absolute-ignores-champion"
    ),
    pytest.param(
        "accuracy >= champion", {"accuracy": 0.92}, {"accuracy": 0.92}, P, id="ge-champion-equal"
    ),
    pytest.param(
        "accuracy >= champion", {"accuracy": 0.91}, {"accuracy": 0.92}, F, id="ge-champion-below"
    ),
    pytest.param(
        "accuracy > champion", {"accuracy": 0.92}, {"accuracy": 0.92}, F, id="gt-champion-equal"
    ),
    pytest.param(
        "accuracy > champion",
        {"accuracy": 0.1 + 0.2},
        {"accuracy": 0.3},
        F,
        id="gt-champion-rounding-is-not-better",
    ),
    pytest.param("loss < champion", {"loss": 0.1}, {"loss": 0.2}, P, id="lt-champion-below"),
    pytest.param("loss <= champion", {"loss": 0.3}, {"loss": 0.2}, F, id="le-champion-above"),
    pytest.param(
        "accuracy == champion", {"accuracy": 0.3}, {"accuracy": 0.1 + 0.2}, P, id="eq-champion"
    ),
    pytest.param("accuracy != champion", {"accuracy": 0.4}, {"accuracy": 0.3}, P, id="ne-champion"),
    pytest.param(
        "accuracy >= champion - 0.005",
        {"accuracy": 0.916},
        {"accuracy": 0.92},
        P,
        id="minus-above",
    ),
    pytest.param(
        "accuracy >= champion - 0.005",
        {"accuracy": 0.915},
        {"accuracy": 0.92},
        P,
        id="minus-boundary-passes",
    ),
    pytest.param(
        "accuracy > champion - 0.005",
        {"accuracy": 0.915},
        {"accuracy": 0.92},
        F,
        id="minus-boundary-strict-fails",
    ),
    pytest.param(
        "accuracy >= champion - 0.005",
        {"accuracy": 0.914},
        {"accuracy": 0.92},
        F,
        id="minus-below",
    ),
    pytest.param(
        "accuracy >= champion - 0.05",
        {"accuracy": 0.47},
        {"accuracy": 0.52},
        P,
        id="minus-float-error-ge",  # 0.52 - 0.05 == 0.47000000000000003
    ),
    pytest.param(
        "loss <= champion - 0.005",
        {"loss": 0.808},
        {"loss": 0.813},
        P,
        id="minus-float-error-le",  # 0.813 - 0.005 == 0.8079999999999999
    ),
    pytest.param(
        "latency_p95_ms <= champion * 1.10",
        {"latency_p95_ms": 110.0},
        {"latency_p95_ms": 100.0},
        P,
        id="times-boundary",
    ),
    pytest.param(
        "latency_p95_ms <= champion * 1.10",
        {"latency_p95_ms": 111.0},
        {"latency_p95_ms": 100.0},
        F,
        id="times-above",
    ),
    pytest.param(
        "throughput >= champion * 1.1",
        {"throughput": 110.0},
        {"throughput": 100.0},
        P,
        id="times-float-error-ge",  # 100 * 1.1 == 110.00000000000001
    ),
    pytest.param(
        "accuracy >= champion + 0.2",
        {"accuracy": 0.3},
        {"accuracy": 0.1},
        P,
        id="plus-float-error",  # 0.1 + 0.2 == 0.30000000000000004
    ),
    pytest.param(
        "accuracy >= champion + 0.01",
        {"accuracy": 0.905},
        {"accuracy": 0.9},
        F,
        id="plus-below",
    ),
    pytest.param("loss <= champion / 2", {"loss": 0.2}, {"loss": 0.4}, P, id="divided-boundary"),
    pytest.param("loss <= champion / 2", {"loss": 0.21}, {"loss": 0.4}, F, id="divided-above"),
    pytest.param(
        "delta >= champion - 0.01",
        {"delta": -0.025},
        {"delta": -0.01},
        F,
        id="negative-champion",
    ),
]


@pytest.mark.parametrize(("expression", "metrics", "champion", "outcome"), JUDGED)
def test_evaluate_gate(
    expression: str,
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    outcome: GateOutcome,
) -> None:
    result = judge(expression, metrics, champion)

    assert result.outcome is outcome
    assert result.passed is (outcome is GateOutcome.PASSED)


# expression, candidate metrics, champion metrics, outcome
UNJUDGEABLE = [
    pytest.param(
        "accuracy >= 0.9", {"loss": 0.1}, None, GateOutcome.MISSING_METRIC, id="missing-absolute"
    ),
    pytest.param(
        "accuracy >= champion",
        {"loss": 0.1},
        {"accuracy": 0.9},
        GateOutcome.MISSING_METRIC,
        id="missing-relative",
    ),
    pytest.param(
        "accuracy >= champion",
        {},
        None,
        GateOutcome.MISSING_METRIC,
        id="missing-wins-over-no-champion",
    ),
    pytest.param(
        "accuracy >= champion - 0.005",
        {"accuracy": 0.9},
        None,
        GateOutcome.NO_CHAMPION,
        id="no-champion",
    ),
    pytest.param(
        "latency <= champion * 1.1",
        {"latency": 10.0},
        {"accuracy": 0.9},
        GateOutcome.CHAMPION_MISSING_METRIC,
        id="champion-lacks-metric",
    ),
    pytest.param(
        "accuracy >= champion",
        {"accuracy": 0.9},
        {},
        GateOutcome.CHAMPION_MISSING_METRIC,
        id="champion-with-no-metrics",
    ),
]


@pytest.mark.parametrize(("expression", "metrics", "champion", "outcome"), UNJUDGEABLE)
def test_a_gate_that_cannot_be_judged_says_why(
    expression: str,
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    outcome: GateOutcome,
) -> None:
    result = judge(expression, metrics, champion)

    assert result.outcome is outcome
    assert not result.passed
    assert result.threshold is None


def test_a_relative_result_carries_value_threshold_and_champion_value() -> None:
    result = judge("accuracy >= champion - 0.005", {"accuracy": 0.916}, {"accuracy": 0.92})

    assert result.value == 0.916
    assert result.threshold == pytest.approx(0.915)
    assert result.champion_value == 0.92


def test_an_absolute_result_has_no_champion_value() -> None:
    result = judge("accuracy >= 0.9", {"accuracy": 0.95}, {"accuracy": 0.99})

    assert result.threshold == 0.9
    assert result.champion_value is None


INVALID = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("accuracy", id="metric-only"),
    pytest.param("accuracy >= ", id="no-threshold"),
    pytest.param(">= 0.9", id="no-metric"),
    pytest.param("accuracy => 0.9", id="reversed-comparator"),
    pytest.param("accuracy = 0.9", id="single-equals"),
    pytest.param("accuracy >== 0.9", id="triple-comparator"),
    pytest.param("accuracy >= champion ** 2", id="power"),
    pytest.param("champion >= 0.9", id="metric-named-champion"),
    pytest.param("accuracy >= champion / 0", id="division-by-zero"),
    pytest.param("accuracy >= champion / 0.0", id="division-by-zero-float"),
    pytest.param("accuracy >= champion / 1e-400", id="division-by-underflow"),
    pytest.param("accuracy >= nan", id="nan"),
    pytest.param("accuracy >= inf", id="inf"),
    pytest.param("accuracy >= 1e999", id="overflow"),
    pytest.param("accuracy >= champion * 1e999", id="overflow-operand"),
    pytest.param("accuracy >= champion - x", id="name-as-operand"),
    pytest.param("accuracy >= champion - 0.005 + 1", id="two-operations"),
    pytest.param("accuracy >= 0.9 and loss <= 1", id="conjunction"),
    pytest.param("accuracy >= 90%", id="percent"),
    pytest.param("accuracy >= 0,9", id="decimal-comma"),
    pytest.param("accuracy >= Champion", id="champion-capitalised"),
    pytest.param("9accuracy >= 0.9", id="name-starts-with-digit"),
]


@pytest.mark.parametrize("expression", INVALID)
def test_invalid_gate_names_the_expression(expression: str) -> None:
    with pytest.raises(InvalidGate) as raised:
        parse_gate(expression)

    assert raised.value.expression == expression
    assert repr(expression) in str(raised.value)
    assert raised.value.problem


# expression, candidate metrics, champion metrics, fragments the explanation must contain
EXPLAINED = [
    pytest.param(
        "accuracy >= 0.9",
        {"accuracy": 0.95},
        None,
        ["accuracy >= 0.9", "0.95", "passes", "0.9"],
        id="passed-absolute",
    ),
    pytest.param(
        "accuracy >= 0.9",
        {"accuracy": 0.85},
        None,
        ["accuracy >= 0.9", "0.85", "fails", "0.9"],
        id="failed-absolute",
    ),
    pytest.param(
        "accuracy >= champion - 0.005",
        {"accuracy": 0.91},
        {"accuracy": 0.92},
        ["accuracy >= champion - 0.005", "0.91 ", "fails", "0.915", "champion 0.92"],
        id="failed-relative",
    ),
    pytest.param(
        "latency_p95_ms <= champion * 1.10",
        {"latency_p95_ms": 104.5},
        {"latency_p95_ms": 100.0},
        ["104.5", "passes", "110", "champion 100"],
        id="passed-relative",
    ),
    pytest.param(
        "accuracy >= 0.9", {}, None, ["accuracy >= 0.9", "no metric 'accuracy'"], id="missing"
    ),
    pytest.param(
        "accuracy >= champion",
        {"accuracy": 0.9},
        None,
        ["accuracy >= champion", "no champion"],
        id="no-champion",
    ),
    pytest.param(
        "accuracy >= champion",
        {"accuracy": 0.9},
        {"loss": 0.1},
        ["champion has no metric 'accuracy'"],
        id="champion-missing-metric",
    ),
]


@pytest.mark.parametrize(("expression", "metrics", "champion", "fragments"), EXPLAINED)
def test_explain_says_what_was_compared(
    expression: str,
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    fragments: list[str],
) -> None:
    text = judge(expression, metrics, champion).explain()

    for fragment in fragments:
        assert fragment in text
