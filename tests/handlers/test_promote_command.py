"""Pins the `/promote` grammar: what each text means, and what a person reads when it is wrong."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.values import ENVIRONMENT_NAME as CONFIG_ENVIRONMENT_NAME
from bot.domain.errors import GatekeeperError
from handlers.promote_command import (
    ENVIRONMENT_NAME,
    MAX_TEXT_LENGTH,
    SYNTAX,
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

SECTION_TEXT_LIMIT = 3000  # Block Kit: text of one section block


def fullwidth(text: str) -> str:
    """Text as an East Asian input method types it: fullwidth letters, ideographic spaces."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in text)


def outcome(text: str) -> PromoteCommand | UsageError:
    try:
        return parse_promote(text)
    except UsageError as error:
        return error


VALID = [
    # help
    pytest.param("", Help(), id="empty"),
    pytest.param("   \t\n ", Help(), id="only-whitespace"),
    pytest.param("help", Help(), id="help"),
    pytest.param("HELP", Help(), id="help-upper"),
    pytest.param("  Help  ", Help(), id="help-padded"),
    pytest.param("--help", Help(), id="dash-dash-help"),
    pytest.param("—help", Help(), id="em-dash-help-from-smart-dashes"),
    pytest.param("-h", Help(), id="dash-h"),
    pytest.param("?", Help(), id="question-mark"),
    # request
    pytest.param("churn-classifier", Request("churn-classifier"), id="latest-next"),
    pytest.param("churn-classifier 7", Request("churn-classifier", version="7"), id="version"),
    pytest.param(
        "churn-classifier 007", Request("churn-classifier", version="7"), id="leading-zeros"
    ),
    pytest.param(
        "churn-classifier 120", Request("churn-classifier", version="120"), id="version-120"
    ),
    pytest.param(
        "churn-classifier @champion", Request("churn-classifier", alias="champion"), id="alias"
    ),
    pytest.param(
        "churn-classifier @Challenger_2-b",
        Request("churn-classifier", alias="Challenger_2-b"),
        id="alias-mixed",
    ),
    pytest.param(
        "churn-classifier @v7x",
        Request("churn-classifier", alias="v7x"),
        id="alias-like-version-but-not",
    ),
    pytest.param(
        "churn-classifier @version7",
        Request("churn-classifier", alias="version7"),
        id="alias-version7-not-reserved",
    ),
    pytest.param(
        "churn-classifier to staging", Request("churn-classifier", target="staging"), id="target"
    ),
    pytest.param(
        "churn-classifier 7 to staging",
        Request("churn-classifier", "7", None, "staging"),
        id="version-target",
    ),
    pytest.param(
        "churn-classifier @challenger to production",
        Request("churn-classifier", None, "challenger", "production"),
        id="alias-target",
    ),
    pytest.param(
        "churn-classifier 7 TO Staging",
        Request("churn-classifier", "7", None, "staging"),
        id="keyword-and-env-case",
    ),
    pytest.param(
        "churn-classifier 7 To prod_eu-2",
        Request("churn-classifier", "7", None, "prod_eu-2"),
        id="env-with-digits-dash-underscore",
    ),
    pytest.param(
        "Churn_Classifier.v2 3",
        Request("Churn_Classifier.v2", version="3"),
        id="model-case-kept-dot-underscore",
    ),
    pytest.param("7", Request("7"), id="numeric-model"),
    pytest.param("7 8 to a", Request("7", "8", None, "a"), id="numeric-model-and-version"),
    pytest.param(".hidden", Request(".hidden"), id="model-leading-dot"),
    pytest.param("modèle 2", Request("modèle", version="2"), id="model-non-ascii-letters"),
    pytest.param("statuses", Request("statuses"), id="model-starting-like-keyword"),
    pytest.param("churn to " + "a" * 32, Request("churn", target="a" * 32), id="env-32-chars"),
    # the model: escape for names that are keywords
    pytest.param("model:status", Request("status"), id="escape-status"),
    pytest.param(
        "model:list 3 to staging", Request("list", "3", None, "staging"), id="escape-list"
    ),
    pytest.param("model:help @champion", Request("help", alias="champion"), id="escape-help"),
    pytest.param("model:plan", Request("plan"), id="escape-plan"),
    pytest.param("model:rollback", Request("rollback"), id="escape-rollback"),
    pytest.param("model:to to staging", Request("to", target="staging"), id="escape-to"),
    pytest.param("MODEL:Status", Request("Status"), id="escape-prefix-case-insensitive"),
    pytest.param("model:churn 3", Request("churn", version="3"), id="escape-on-ordinary-name"),
    pytest.param("status model:list", Status("list"), id="escape-in-status"),
    pytest.param("plan model:plan 1 to b", Plan("plan", "1", "b"), id="escape-in-plan"),
    pytest.param("rollback model:to prod", Rollback("to", "prod"), id="escape-in-rollback"),
    pytest.param("status list", Status("list"), id="keyword-as-model-after-subcommand"),
    # status, list
    pytest.param("status", Status(), id="status"),
    pytest.param("STATUS", Status(), id="status-upper"),
    pytest.param("status churn-classifier", Status("churn-classifier"), id="status-model"),
    pytest.param("list", List(), id="list"),
    pytest.param("List", List(), id="list-title"),
    # plan
    pytest.param(
        "plan churn-classifier 7 to production",
        Plan("churn-classifier", "7", "production"),
        id="plan",
    ),
    pytest.param(
        "PLAN churn-classifier 07 TO Production",
        Plan("churn-classifier", "7", "production"),
        id="plan-cases",
    ),
    # rollback
    pytest.param(
        "rollback churn-classifier production",
        Rollback("churn-classifier", "production"),
        id="rollback",
    ),
    pytest.param(
        "rollback churn-classifier production to 5",
        Rollback("churn-classifier", "production", "5"),
        id="rollback-to",
    ),
    pytest.param(
        "Rollback churn-classifier Production TO 05",
        Rollback("churn-classifier", "production", "5"),
        id="rollback-cases",
    ),
    # what Slack and keyboards do to text
    pytest.param(
        "  churn-classifier   7\tto \n staging  ",
        Request("churn-classifier", "7", None, "staging"),
        id="runs-of-whitespace",
    ),
    pytest.param(
        "\u00a0churn-classifier\u00a0\u00a07\u00a0to\u00a0staging\u00a0",
        Request("churn-classifier", "7", None, "staging"),
        id="non-breaking-spaces",
    ),
    pytest.param(
        "churn-classifier\u20037\u3000to\u2009staging",
        Request("churn-classifier", "7", None, "staging"),
        id="unicode-spaces",
    ),
    pytest.param(
        "churn\u200b-classifier\ufeff 7",
        Request("churn-classifier", version="7"),
        id="zero-width-characters",
    ),
    pytest.param("churn\u2011classifier", Request("churn-classifier"), id="non-breaking-hyphen"),
    pytest.param("churn\u2013classifier", Request("churn-classifier"), id="en-dash"),
    pytest.param(
        "churn\u2014classifier", Request("churn--classifier"), id="em-dash-is-two-hyphens"
    ),
    pytest.param(
        fullwidth("churn 7 to staging"), Request("churn", "7", None, "staging"), id="fullwidth"
    ),
    pytest.param(
        fullwidth("churn @champion"), Request("churn", alias="champion"), id="fullwidth-at"
    ),
    pytest.param(
        "\u201cchurn-classifier\u201d 7",
        Request("churn-classifier", version="7"),
        id="smart-double-quotes",
    ),
    pytest.param(
        "\u2018churn-classifier\u2019 7",
        Request("churn-classifier", version="7"),
        id="smart-single-quotes",
    ),
    pytest.param(
        '"churn-classifier" "7" to "staging"',
        Request("churn-classifier", "7", None, "staging"),
        id="straight-quotes",
    ),
    pytest.param(
        "`churn-classifier` 7", Request("churn-classifier", version="7"), id="inline-code-word"
    ),
    pytest.param(
        "`churn-classifier 7 to staging`",
        Request("churn-classifier", "7", None, "staging"),
        id="inline-code-text",
    ),
    pytest.param(
        "```churn-classifier 7```", Request("churn-classifier", version="7"), id="code-block-text"
    ),
    pytest.param(
        "<http://churn.ai|churn.ai> 3", Request("churn.ai", version="3"), id="slack-linkified-name"
    ),
    pytest.param("churn '' 7", Request("churn", version="7"), id="empty-quotes-dropped"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_text_parses_to_its_command(text: str, expected: PromoteCommand) -> None:
    assert parse_promote(text) == expected


INVALID = [
    # length
    pytest.param("x" * (MAX_TEXT_LENGTH + 1), "reads at most 500", id="too-long"),
    pytest.param("churn " + "7 " * 300, "reads at most 500", id="too-long-many-words"),
    # extra words name the word
    pytest.param("help me", "Unexpected `me`", id="help-extra"),
    pytest.param("list pending", "Unexpected `pending`", id="list-extra"),
    pytest.param("status churn staging", "Unexpected `staging`", id="status-extra"),
    pytest.param("churn 7 to staging now", "Unexpected `now`", id="request-extra"),
    pytest.param("plan churn 7 to staging please", "Unexpected `please`", id="plan-extra"),
    pytest.param("rollback churn prod to 5 now", "Unexpected `now`", id="rollback-extra"),
    pytest.param("churn 7 8", "Unexpected `8`", id="two-versions"),
    pytest.param(
        "churn 7 @champion",
        "Unexpected `@champion`: name one version or one `@alias`",
        id="version-and-alias",
    ),
    pytest.param("churn @a @b", "Unexpected `@b`", id="two-aliases"),
    # versions
    pytest.param("churn v7", "write 7, not v7", id="v7"),
    pytest.param("churn V7", "write 7, not V7", id="V7"),
    pytest.param("churn version7", "write 7, not version7", id="version7"),
    pytest.param("churn #7", "write 7, not #7", id="hash7"),
    pytest.param("churn @v7", "write 7, not @v7", id="at-v7-reserved-alias"),
    pytest.param("churn v07", "write 7, not v07", id="v07"),
    pytest.param("churn 0", "Versions start at 1", id="zero"),
    pytest.param("churn 000", "Versions start at 1", id="zeros"),
    pytest.param("churn -1", "`-1` is not a version", id="negative"),
    pytest.param("churn +7", "`+7` is not a version", id="plus"),
    pytest.param("churn 7.0", "`7.0` is not a version", id="decimal"),
    pytest.param("churn 1e3", "`1e3` is not a version", id="scientific"),
    pytest.param("churn ٣", "not `٣`", id="non-ascii-digit"),
    pytest.param("churn latest", "Leave the version out", id="latest-word"),
    pytest.param("churn @latest", "Leave the version out", id="latest-alias"),
    pytest.param("churn @LATEST", "Leave the version out", id="latest-alias-upper"),
    pytest.param("plan churn latest to prod", "`latest` is not a version number", id="plan-latest"),
    pytest.param("rollback churn prod to v5", "write 5, not v5", id="rollback-v5"),
    pytest.param(
        "rollback churn prod to @champion", "`@champion` is not a version", id="rollback-to-alias"
    ),
    # aliases
    pytest.param("churn @", "`@` must be followed by an alias", id="bare-at"),
    pytest.param("churn @champ!on", "`@champ!on` is not an alias", id="alias-bad-char"),
    pytest.param("churn @a.b", "`@a.b` is not an alias", id="alias-dot"),
    pytest.param("churn @@champion", "`@@champion` is not an alias", id="alias-double-at"),
    pytest.param("churn @" + "a" * 256, "at most 255", id="alias-too-long"),
    # environments
    pytest.param("churn to", "`to` must be followed by an environment", id="to-without-env"),
    pytest.param(
        "churn 7 to", "`to` must be followed by an environment", id="version-to-without-env"
    ),
    pytest.param("churn to to", "not another `to`", id="to-to"),
    pytest.param("churn to 1prod", "`1prod` is not an environment name", id="env-leading-digit"),
    pytest.param("churn to prod!", "`prod!` is not an environment name", id="env-bad-char"),
    pytest.param("churn to " + "a" * 33, "at most 32 characters", id="env-too-long"),
    pytest.param("churn to prod.eu", "`prod.eu` is not an environment name", id="env-dot"),
    pytest.param("churn staging", "write `to staging`", id="env-without-to"),
    pytest.param("churn 7 staging", "write `to staging`", id="version-env-without-to"),
    pytest.param("churn to staging production", "Unexpected `production`", id="two-envs"),
    # models
    pytest.param("team/churn 3", "cannot contain `/` or `:`", id="model-slash"),
    pytest.param("team:churn", "cannot contain `/` or `:`", id="model-colon"),
    pytest.param("model:a:b", "cannot contain `/` or `:`", id="escape-with-colon-inside"),
    pytest.param("churn!", "`churn!` is not a model name", id="model-bang"),
    pytest.param("churn,", "`churn,` is not a model name", id="model-comma"),
    pytest.param("chu'rn", "`chu'rn` is not a model name", id="model-inner-quote"),
    pytest.param('"churn', "is not a model name", id="model-unbalanced-quote"),
    pytest.param(".", "reads as a path", id="model-dot"),
    pytest.param("..", "reads as a path", id="model-dotdot"),
    pytest.param("..churn", "reads as a path", id="model-leading-dotdot"),
    pytest.param("m" * 257, "at most 256 characters", id="model-too-long"),
    pytest.param("@champion to staging", "the model comes first", id="alias-first"),
    pytest.param("to staging", "The model name is missing before `to`", id="to-first"),
    pytest.param("TO staging", "The model name is missing before `to`", id="to-first-upper"),
    pytest.param("model:", "`model:` must be followed by a model name", id="empty-escape"),
    pytest.param("status to", "missing before `to`", id="status-to"),
    # plan
    pytest.param("plan", "`plan` needs a model, a version and an environment", id="plan-alone"),
    pytest.param("plan churn", "`plan` needs the version", id="plan-no-version"),
    pytest.param("plan churn to prod", "`plan` needs the version", id="plan-to-without-version"),
    pytest.param("plan churn 7", "`plan` needs the target environment", id="plan-no-target"),
    pytest.param("plan churn 7 to", "`to` must be followed by an environment", id="plan-to-no-env"),
    pytest.param("plan churn 7 prod", "write `to prod`", id="plan-env-without-to"),
    pytest.param(
        "plan churn @champion to prod", "takes a version number, not `@champion`", id="plan-alias"
    ),
    pytest.param("plan churn v7 to prod", "write 7, not v7", id="plan-v7"),
    # rollback
    pytest.param("rollback", "`rollback` needs a model and an environment", id="rollback-alone"),
    pytest.param("rollback churn", "needs the environment to roll back", id="rollback-no-env"),
    pytest.param(
        "rollback churn to 5", "needs the environment to roll back", id="rollback-to-before-env"
    ),
    pytest.param("rollback churn prod 5", "write `to 5`", id="rollback-version-without-to"),
    pytest.param(
        "rollback churn prod to",
        "`to` must be followed by the version",
        id="rollback-to-no-version",
    ),
    pytest.param(
        "rollback churn Prod! to 5", "`Prod!` is not an environment name", id="rollback-bad-env"
    ),
    # pasted or mangled input
    pytest.param("churn\x00 7", "is not a model name", id="control-character"),
    pytest.param("churn <!channel>", "not `&lt;!channel&gt;`", id="mention-echoed-escaped"),
    pytest.param("churn &lt;script&gt;", "not `&lt;script&gt;`", id="entities-echoed-escaped"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_text_says_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_promote(text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_every_usage_error_shows_the_usage_lines_within_one_section(
    text: str, fragment: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_promote(text)
    message = str(caught.value)
    assert message.endswith("\n\n" + SYNTAX)
    assert caught.value.problem
    assert len(message) < SECTION_TEXT_LIMIT


def test_usage_error_is_a_gatekeeper_error_so_the_boundary_shows_it() -> None:
    with pytest.raises(GatekeeperError):
        parse_promote("list everything")


def test_echoed_words_cannot_mention_anyone_or_break_out_of_code() -> None:
    with pytest.raises(UsageError) as caught:
        parse_promote("churn <!here>`*bold*`")
    message = str(caught.value)
    assert "<!here>" not in message
    assert "`&lt;!here&gt;'*bold*'`" in message


def test_long_words_are_shortened_when_echoed() -> None:
    with pytest.raises(UsageError) as caught:
        parse_promote("churn " + "q" * 300)
    assert "q" * 39 + "…`" in caught.value.problem
    assert "q" * 40 not in caught.value.problem


def test_the_length_limit_counts_what_was_typed_not_surrounding_whitespace() -> None:
    text = "churn" + " " * (MAX_TEXT_LENGTH - 6) + "7"
    assert len(text) == MAX_TEXT_LENGTH
    assert parse_promote(text) == Request("churn", version="7")
    assert parse_promote(" " * 1000 + "help" + " " * 1000) == Help()
    with pytest.raises(UsageError, match="501 characters"):
        parse_promote(text + "0")


def test_usage_fits_one_section_and_is_escaped_mrkdwn() -> None:
    assert len(USAGE) < SECTION_TEXT_LIMIT
    assert USAGE.startswith(SYNTAX)
    for text in (USAGE, SYNTAX):
        assert "<" not in text
        assert ">" not in text
    assert "&lt;model&gt;" in SYNTAX


def test_usage_names_every_subcommand_and_the_model_escape() -> None:
    for subcommand in ("plan", "status", "list", "rollback", "help"):
        assert f"`/promote {subcommand}" in SYNTAX
    assert "`model:`" in USAGE
    assert "not `v7`" in USAGE


def test_the_examples_in_usage_parse() -> None:
    examples = [line.split("`")[1] for line in USAGE.splitlines() if line.startswith("`/promote")]
    concrete = [example for example in examples if "&lt;" not in example]
    assert len(concrete) >= 6
    for example in concrete:
        parse_promote(example.removeprefix("/promote").replace("[", "").replace("]", ""))


def test_environment_names_follow_the_config_rule() -> None:
    assert ENVIRONMENT_NAME.pattern == CONFIG_ENVIRONMENT_NAME.pattern


def test_a_request_cannot_name_both_a_version_and_an_alias() -> None:
    with pytest.raises(ValueError, match="not both"):
        Request("churn", version="7", alias="champion")


def test_commands_are_frozen() -> None:
    command = Request("churn")
    with pytest.raises(FrozenInstanceError):
        command.model = "other"  # type: ignore[misc]


@given(st.text())
def test_any_text_gives_a_command_or_a_usage_error(text: str) -> None:
    result = outcome(text)
    if isinstance(result, UsageError):
        assert len(str(result)) < SECTION_TEXT_LIMIT
    else:
        assert isinstance(result, Help | Request | Status | List | Plan | Rollback)


WORDS = st.sampled_from(
    [
        "help",
        "status",
        "list",
        "plan",
        "rollback",
        "to",
        "TO",
        "model:",
        "model:to",
        "churn",
        "a/b",
        "@champion",
        "@",
        "@v7",
        "@latest",
        "7",
        "0",
        "v7",
        "latest",
        "staging",
        "Prod",
        "1prod",
        "-1",
        "7.0",
        "\u00a0",
        "\u2014",
        "\u201c",
        "`",
        "<",
        "&lt;",
    ]
)


@given(st.lists(WORDS, max_size=7).map(" ".join))
def test_any_sequence_of_grammar_words_gives_a_command_or_a_usage_error(text: str) -> None:
    result = outcome(text)
    assert not isinstance(result, UsageError) or result.problem


MODELS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True).filter(
    lambda name: name.lower() not in {"help", "status", "list", "plan", "rollback", "to"}
)
ENVIRONMENTS = st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True).filter(lambda e: e != "to")
VERSIONS = st.integers(min_value=1, max_value=10**9).map(str)


@given(MODELS, st.none() | VERSIONS, st.none() | ENVIRONMENTS)
def test_written_requests_read_back(model: str, version: str | None, target: str | None) -> None:
    text = " ".join([model, version or "", f"to {target}" if target else ""])
    assert parse_promote(text) == Request(model, version, None, target)


@given(MODELS, ENVIRONMENTS, st.none() | VERSIONS)
def test_written_rollbacks_read_back(model: str, env: str, version: str | None) -> None:
    text = f"rollback {model} {env}" + (f" to {version}" if version else "")
    assert parse_promote(text) == Rollback(model, env, version)
