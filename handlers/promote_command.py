"""The `/promote` grammar: a slash command's text in, one typed command (or a UsageError) out.

    /promote [help]                                      -> Help
    /promote <model> [<version> | @<alias>] [to <env>]   -> Request
    /promote status [<model>]                            -> Status
    /promote list                                        -> List
    /promote plan <model> <version> to <env>             -> Plan
    /promote rollback <model> <env> [to <version>]       -> Rollback

Words are separated by whitespace, so a model name cannot hold a space here; MLflow names
with spaces (or with any character besides letters, digits, `-`, `_` and `.`) cannot be
promoted from Slack. Subcommand names and `to` are keywords, matched case-insensitively. A
subcommand name in first place wins over a model of that name, and `to` is never read as a
model: such a model is written with the `model:` prefix (`/promote model:status 3`), which
is unambiguous because MLflow forbids `:` in model names and is accepted wherever a model is.
Environment names are lowercased (gatekeeper.yaml only has lowercase ones). Whether a model or
environment exists is for the caller to check: this module knows nothing of the configuration.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.domain.errors import GatekeeperError

MAX_TEXT_LENGTH = 500
MAX_MODEL_NAME_LENGTH = 256  # MLflow's registered_models.name column
MAX_ALIAS_LENGTH = 255  # MLflow's MAX_REGISTERED_MODEL_ALIAS_LENGTH
MODEL_PREFIX = "model:"

# Kept equal to bot.config.values.ENVIRONMENT_NAME (a test holds them together) without
# importing the config layer into a pure parser.
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MODEL_NAME = re.compile(r"[\w.-]+")
_ALIAS = re.compile(r"[\w-]+")  # MLflow's _REGISTERED_MODEL_ALIAS_REGEX, non-empty
_VERSION = re.compile(r"[0-9]+")
_VERSION_SPELLED = re.compile(r"(?:v|version|#)([0-9]+)", re.IGNORECASE)
_RESERVED_ALIAS = re.compile(r"[vV][0-9]+")  # MLflow keeps @v7 for version 7
_NUMBER_LIKE = re.compile(r"[+-]?[0-9.]")
# Slack turns a domain-like word such as `churn.ai` into a link; the label is what was typed.
_SLACK_LINK = re.compile(r"<(?:https?://|mailto:)[^<>|]*\|([^<>]*)>")


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: The syntax lines every UsageError ends with (Slack mrkdwn).
SYNTAX = _mrkdwn(
    "*Usage*\n"
    "`/promote <model> [<version> | @<alias>] [to <environment>]`  request a promotion\n"
    "`/promote plan <model> <version> to <environment>`  dry run: what would happen\n"
    "`/promote status [<model>]`  where candidates and champions stand\n"
    "`/promote list`  candidates waiting for a decision\n"
    "`/promote rollback <model> <environment> [to <version>]`  put the previous champion back\n"
    "`/promote help`  all of this, with examples"
)

#: The reply to `/promote help` (Slack mrkdwn, fits one section block).
USAGE = (
    SYNTAX
    + "\n\n"
    + _mrkdwn(
        "*Examples*\n"
        "`/promote churn-classifier`  its latest version, to the next environment on the path\n"
        "`/promote churn-classifier 7 to staging`\n"
        "`/promote churn-classifier @challenger to production`\n"
        "`/promote plan churn-classifier 7 to production`\n"
        "`/promote rollback churn-classifier production`\n"
        "`/promote rollback churn-classifier production to 5`\n"
        "\n"
        "*Notes*\n"
        "• Versions are numbers: write `7`, not `v7`. Leave the version out for the latest.\n"
        "• Model names are written as in MLflow, without spaces: letters, digits, `-`, `_`, `.`.\n"
        "• A model named like a subcommand (`help`, `status`, `list`, `plan`, `rollback`) or "
        "`to` is written with a `model:` prefix, e.g. `/promote model:status 3 to staging`.\n"
        "• Keywords are case-insensitive; environments are named as in gatekeeper.yaml."
    )
)


class UsageError(GatekeeperError):
    """Text `/promote` cannot read; the message says what was wrong, then how to write it."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{_mrkdwn(problem)}\n\n{SYNTAX}")
        self.problem = problem  # plain text; the message is Slack mrkdwn


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Request:
    """Promote a version (None with no alias: the latest) to target (None: the next one)."""

    model: str
    version: str | None = None
    alias: str | None = None
    target: str | None = None

    def __post_init__(self) -> None:
        if self.version is not None and self.alias is not None:
            raise ValueError("a request names a version or an alias, not both")


@dataclass(frozen=True)
class Status:
    model: str | None = None


@dataclass(frozen=True)
class List:
    pass


@dataclass(frozen=True)
class Plan:
    """What promoting this version to target would do, without doing it."""

    model: str
    version: str
    target: str


@dataclass(frozen=True)
class Rollback:
    """Give env's champion alias back to to_version (None: the previous champion)."""

    model: str
    env: str
    to_version: str | None = None


PromoteCommand = Help | Request | Status | List | Plan | Rollback

_HELP_WORDS = frozenset({"help", "-h", "--help", "?"})
_SUBCOMMANDS = ("help", "status", "list", "plan", "rollback")
_KEYWORDS = frozenset({*_SUBCOMMANDS, "to"})

# Phones and macOS "smart punctuation" rewrite what people type; read it back as typed.
_SMART = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2212", "-"),
        **dict.fromkeys("\u2014\u2015", "--"),  # what a typed `--` becomes
        # Invisible characters that ride along when text is pasted from documents.
        **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", None),
    }
)


def parse_promote(text: str) -> PromoteCommand:
    """Read the text of a `/promote` slash command; raise UsageError saying what is wrong."""
    if len(text.strip()) > MAX_TEXT_LENGTH:
        raise UsageError(
            f"That is {len(text.strip())} characters; `/promote` reads at most {MAX_TEXT_LENGTH}."
        )
    words = _words(text)
    if not words:
        return Help()
    head, rest = words[0].lower(), words[1:]
    if head in _HELP_WORDS:
        _nothing_after(rest, "`help` takes nothing more.")
        return Help()
    if head == "status":
        return _status(rest)
    if head == "list":
        _nothing_after(rest, "`list` takes nothing more.")
        return List()
    if head == "plan":
        return _plan(rest)
    if head == "rollback":
        return _rollback(rest)
    return _request(words)


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).translate(_SMART)
    text = _SLACK_LINK.sub(r"\1", text)
    # Slack escapes these three in every text it sends, even with should_escape off.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = _unquote(text.strip(), ("```", "`"))
    words = (_unquote(word, ('"', "'", "`")) for word in text.split())
    return [word for word in words if word]


def _unquote(text: str, quotes: tuple[str, ...]) -> str:
    """Drop one pair of quotes or code ticks around text, if nothing inside needs them."""
    for quote in quotes:
        inner = text[len(quote) : -len(quote)]
        if (
            len(text) >= 2 * len(quote)
            and text.startswith(quote)
            and text.endswith(quote)
            and quote not in inner
        ):
            return inner.strip()
    return text


def _request(words: list[str]) -> Request:
    model = _model(words[0])
    rest = words[1:]
    version = alias = target = None
    if rest and not _is_to(rest[0]):
        version, alias = _version_or_alias(rest[0])
        rest = rest[1:]
    if rest and _is_to(rest[0]):
        target = _environment_after_to(rest)
        rest = rest[2:]
    elif rest and (rest[0].startswith("@") or _VERSION.fullmatch(rest[0])):
        raise UsageError(f"Unexpected {_shown(rest[0])}: name one version or one `@alias`.")
    elif rest:
        raise UsageError(f"Unexpected {_shown(rest[0])}{_to_hint(rest[0])}.")
    _nothing_after(rest, "the request ends with `to <environment>`.")
    return Request(model, version, alias, target)


def _status(rest: list[str]) -> Status:
    if not rest:
        return Status()
    _nothing_after(rest[1:], "`status` takes at most one model.")
    return Status(_model(rest[0]))


def _plan(rest: list[str]) -> Plan:
    shape = "`plan <model> <version> to <environment>`"
    if not rest:
        raise UsageError(f"`plan` needs a model, a version and an environment: {shape}.")
    model = _model(rest[0])
    if len(rest) < 2 or _is_to(rest[1]):
        raise UsageError(f"`plan` needs the version to try: {shape}.")
    if rest[1].startswith("@"):
        raise UsageError(f"`plan` takes a version number, not {_shown(rest[1])}: {shape}.")
    version = _version(rest[1])
    if len(rest) < 3:
        raise UsageError(f"`plan` needs the target environment: {shape}.")
    if not _is_to(rest[2]):
        raise UsageError(f"Unexpected {_shown(rest[2])}{_to_hint(rest[2])}: {shape}.")
    target = _environment_after_to(rest[2:])
    _nothing_after(rest[4:], f"{shape} ends with the environment.")
    return Plan(model, version, target)


def _rollback(rest: list[str]) -> Rollback:
    shape = "`rollback <model> <environment> [to <version>]`"
    if not rest:
        raise UsageError(f"`rollback` needs a model and an environment: {shape}.")
    model = _model(rest[0])
    if len(rest) < 2 or _is_to(rest[1]):
        raise UsageError(f"`rollback` needs the environment to roll back: {shape}.")
    env = _environment(rest[1])
    if len(rest) == 2:
        return Rollback(model, env)
    if not _is_to(rest[2]):
        hint = f" (write `to {rest[2]}`)" if _VERSION.fullmatch(rest[2]) else ""
        raise UsageError(f"Unexpected {_shown(rest[2])}{hint}: {shape}.")
    if len(rest) < 4:
        raise UsageError(f"`to` must be followed by the version to go back to: {shape}.")
    to_version = _version(rest[3])
    _nothing_after(rest[4:], f"{shape} ends with the version.")
    return Rollback(model, env, to_version)


def _model(word: str) -> str:
    prefixed = word[: len(MODEL_PREFIX)].lower() == MODEL_PREFIX
    name = word[len(MODEL_PREFIX) :] if prefixed else word
    if prefixed:
        if not name:
            raise UsageError("`model:` must be followed by a model name, e.g. `model:status`.")
    elif word.lower() == "to":
        raise UsageError(
            "The model name is missing before `to` (a model named `to` is written `model:to`)."
        )
    elif word.startswith("@"):
        raise UsageError(
            f"{_shown(word)} is not a model: the model comes first, e.g. "
            "`/promote churn-classifier @champion`."
        )
    if "/" in name or ":" in name:
        problem = "MLflow model names cannot contain `/` or `:`."
    elif len(name) > MAX_MODEL_NAME_LENGTH:
        problem = f"MLflow model names are at most {MAX_MODEL_NAME_LENGTH} characters."
    elif not _MODEL_NAME.fullmatch(name):
        problem = "model names here are letters, digits, `-`, `_` and `.`, without spaces."
    elif name == "." or name.startswith(".."):
        problem = "MLflow does not allow a name that reads as a path like `.` or `..`."
    else:
        return name
    raise UsageError(f"{_shown(word)} is not a model name: {problem}")


def _version_or_alias(word: str) -> tuple[str | None, str | None]:
    if word.startswith("@"):
        return None, _alias(word)
    if _VERSION.fullmatch(word) or _NUMBER_LIKE.match(word) or _VERSION_SPELLED.fullmatch(word):
        return _version(word), None
    if word.lower() == "latest":
        raise UsageError("Leave the version out to promote the latest version.")
    raise UsageError(
        f"Expected a version (such as `7`), an `@alias` or `to <environment>` after the model,"
        f" not {_shown(word)}{_to_hint(word)}."
    )


def _version(word: str) -> str:
    if _VERSION.fullmatch(word):
        number = word.lstrip("0")
        if not number:
            raise UsageError("Versions start at 1; `0` is not a version.")
        return number
    spelled = _VERSION_SPELLED.fullmatch(word) or _VERSION_SPELLED.fullmatch(word.lstrip("@"))
    if spelled:
        number = spelled.group(1).lstrip("0") or "0"
        raise UsageError(f"Versions are plain numbers: write {number}, not {word}.")
    if word.lower() == "latest":
        raise UsageError("`latest` is not a version number here; give one, such as `7`.")
    raise UsageError(
        f"{_shown(word)} is not a version: versions are whole numbers from 1, such as `7`."
    )


def _alias(word: str) -> str:
    alias = word[1:]
    if not alias:
        raise UsageError("`@` must be followed by an alias, e.g. `@champion`.")
    if alias.lower() == "latest":
        raise UsageError("Leave the version out to promote the latest version (not `@latest`).")
    if _RESERVED_ALIAS.fullmatch(alias):
        return _version(word)  # raises: "write 7, not @v7"
    if len(alias) > MAX_ALIAS_LENGTH or not _ALIAS.fullmatch(alias):
        raise UsageError(
            f"{_shown(word)} is not an alias: MLflow aliases are letters, digits, `-` and `_`"
            f" (at most {MAX_ALIAS_LENGTH})."
        )
    return alias


def _environment_after_to(rest: list[str]) -> str:
    if len(rest) < 2:
        raise UsageError("`to` must be followed by an environment, e.g. `to staging`.")
    return _environment(rest[1])


def _environment(word: str) -> str:
    env = word.lower()
    if env == "to":
        raise UsageError("Expected an environment, not another `to`.")
    if not ENVIRONMENT_NAME.fullmatch(env):
        raise UsageError(
            f"{_shown(word)} is not an environment name: environments are lowercase letters,"
            " digits, `-` and `_`, start with a letter and are at most 32 characters."
        )
    return env


def _is_to(word: str) -> bool:
    return word.lower() == "to"


def _to_hint(word: str) -> str:
    env = word.lower()
    if ENVIRONMENT_NAME.fullmatch(env) and env not in _KEYWORDS:
        return f" (to name the environment, write `to {env}`)"
    return ""


def _nothing_after(rest: list[str], shape: str) -> None:
    if rest:
        raise UsageError(f"Unexpected {_shown(rest[0])}: {shape}")


def _shown(word: str, limit: int = 40) -> str:
    """The word as inline code, short, and unable to break out of it."""
    if len(word) > limit:
        word = word[: limit - 1] + "…"
    word = "".join(c if c.isprintable() else "\ufffd" for c in word).replace("`", "'")
    return f"`{word}`"
