"""Reading gatekeeper.yaml into plain data, every reading problem a ``ConfigProblem``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.config.problems import FILE, ConfigError, ConfigProblem


def read_yaml(path: Path) -> tuple[object, list[ConfigProblem]]:
    """The file's data, and problems that do not stop reading it (repeated keys).

    ``ConfigError`` when the file cannot be read or is not YAML at all.
    """
    loader = _Loader(_read(path))
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.YAMLError as error:
        raise ConfigError([_syntax_problem(error)]) from None
    finally:
        loader.dispose()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = ConfigProblem(
            FILE,
            f"{path} does not exist",
            "create it, e.g. from gatekeeper.example.yaml, or set GATEKEEPER_CONFIG",
        )
    except UnicodeDecodeError:
        problem = ConfigProblem(FILE, f"{path} is not UTF-8 text", "save it as UTF-8")
    except OSError as error:
        problem = ConfigProblem(
            FILE, f"cannot read {path}: {error.strerror}", "check the path and its permissions"
        )
    raise ConfigError([problem])


def _syntax_problem(error: yaml.YAMLError) -> ConfigProblem:
    fix = "fix the YAML there: indentation, an unclosed quote or bracket, or a ': ' in a value"
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(part for part in (error.context, error.problem) if part)
        return ConfigProblem(FILE, f"YAML syntax error{where}: {what}", fix)
    return ConfigProblem(FILE, f"YAML syntax error: {error}", fix)


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``, without two YAML 1.1 surprises that silently change a config.

    A repeated key would quietly replace the first; it is reported instead. And an unquoted
    ``16:00`` would be read as the base-60 number 960; it stays the text a person wrote.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[ConfigProblem] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                self.duplicates.append(
                    ConfigProblem(
                        FILE,
                        f"key {key_node.value!r} appears twice in one mapping "
                        f"(line {key_node.start_mark.line + 1})",
                        "keep one of them: YAML would silently use the last",
                    )
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _clock_or_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    value = loader.construct_scalar(node)
    return value if ":" in value else loader.construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _clock_or_int)
