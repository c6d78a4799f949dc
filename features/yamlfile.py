"""Reading the human-edited YAML files, with errors that name the file and the line.

Every config file (`features.yaml`, `training.yaml`, `sql_criteria.yaml`, `routing.yaml`, a
flat file's mapping) is read here: YAML is parsed safely, validated by a pydantic model, and
each problem is reported as ``FILE line N: key.path: what was wrong (got VALUE)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from leadscore.features.errors import LeadscoreError

M = TypeVar("M", bound=BaseModel)
Loc = Sequence[str | int]


class ConfigError(LeadscoreError, ValueError):
    """A configuration file is missing or does not say what it must."""

    def __init__(self, origin: str, problems: list[str]):
        self.origin = origin
        self.problems = problems
        super().__init__(f"{origin}: " + "; ".join(problems))

    def lines(self) -> list[str]:
        """One line per problem, each starting with the file."""
        return [f"{self.origin} {p}" if p.startswith("line ") else f"{self.origin}: {p}"
                for p in self.problems]  # fmt: skip


class YamlError(ConfigError):
    """The text is not YAML, or not the mapping a config file must be."""


# libyaml's loader when PyYAML was built with it (the wheels are): the same safe subset, faster
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, origin: str) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree (for line numbers) of YAML text, parsed once."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (None if node is None else loader.construct_document(node)), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(origin, [f"{at}not valid YAML ({problem})"]) from None
    finally:
        loader.dispose()


def line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line where `loc` (keys and list indices) starts; the nearest known parent's
    line when the key itself is missing."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:
                if key.value == str(part):
                    found = (key, value)
                    break
            if found is None:
                return line
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def pydantic_problems(
    exc: ValidationError, node: yaml.Node | None, prefix: Loc = ()
) -> list[str]:
    """``line N: key.path: message (got VALUE)`` for every error of a validation."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [*prefix, *err["loc"]]
        line = line_of(node, loc)
        where = ".".join(str(p) for p in loc) or "(top level)"
        at = f"line {line}: " if line else ""
        if err["type"] == "extra_forbidden":
            problems.append(f"{at}{where}: unknown key")
        elif err["type"] == "missing":
            problems.append(f"{at}{where}: missing key")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{at}{where}: {msg} (got {_shown(err['input'])})")
    return problems


def read_text(path: Path, what: str) -> str:
    """The file's text, or a :class:`ConfigError` saying it is missing."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), [f"{what} not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read the {what}: {exc}"]) from None


def validate_yaml(text: str, model: type[M], origin: str) -> M:
    """Parse YAML text and validate it as `model`; errors name the lines."""
    data, node = parse_yaml(text, origin)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise YamlError(origin, ["expected a mapping of keys at the top level"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(origin, pydantic_problems(exc, node)) from None


def load_yaml(path: Path, model: type[M], what: str) -> M:
    """Read a YAML config file and validate it as `model`."""
    return validate_yaml(read_text(path, what), model, str(path))


def load_config(
    path: Path | str | None,
    name: str,
    model: type[M],
    what: str,
    error: type[ConfigError] = ConfigError,
) -> M:
    """Read the config file `path`, else `name` in the config directory, validated as `model`;
    every problem raised as `error` (a :class:`ConfigError` of the file's own kind)."""
    from leadscore.features.configdir import config_file

    file = Path(path) if path is not None else config_file(name)
    try:
        return load_yaml(file, model, what)
    except ConfigError as exc:
        if isinstance(exc, error):
            raise
        raise error(exc.origin, exc.problems) from None
