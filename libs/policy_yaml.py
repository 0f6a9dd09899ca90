"""YAML policy files read into strict pydantic models, with errors that name file, line and field.

A person edits these files by hand; "risk.yaml:14: levels.medium: Input should be a valid integer"
takes them to the mistake, where pydantic alone would only say `levels.medium`. The document is
composed once to remember the line of every key and item, then each validation error's location is
mapped to the deepest line known for it.
"""

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PolicyError(ValueError):
    """Policy files that cannot be used; `.problems` lists every one found, each with file, line and field."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def line_map(node: yaml.Node | None, at: KeyPath = (), lines: dict[KeyPath, int] | None = None) -> dict[KeyPath, int]:
    """1-based line of every mapping key and sequence item, by its path of (stringified) keys and indexes."""
    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*at, str(key.value))
            lines[path] = key.start_mark.line + 1
            line_map(value, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*at, str(index))
            lines[path] = item.start_mark.line + 1
            line_map(item, path, lines)
    return lines


def line_of(lines: dict[KeyPath, int], loc: Iterable[Any]) -> int | None:
    """The line of the deepest part of `loc` the document has (a missing field: its parent's line)."""
    path = tuple(str(part) for part in loc)
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1 if lines else None


def field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every field name reachable from `model`: what an unknown key is compared with to suggest a spelling."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for info in model.model_fields.values():
        for candidate in _models_in(info.annotation):
            names |= field_names(candidate, seen)
    return names


def _models_in(annotation: Any) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _models_in(arg)


def suggestion(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def problems_of(invalid: ValidationError, file: str, lines: dict[KeyPath, int], known: set[str]) -> list[Problem]:
    found = []
    for error in invalid.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        field = ".".join(str(part) for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field{suggestion(str(loc[-1]), known)}"
        elif error["type"] == "enum":
            allowed = re.findall(r"'([^']+)'", error.get("ctx", {}).get("expected", ""))
            message = f"{error['input']!r} is not one of {', '.join(allowed)}{suggestion(str(error['input']), allowed)}"
        found.append(Problem(file, line_of(lines, loc), field, message))
    return found


def parse(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """The document in `path` and the line of each of its keys; a YAML syntax error names its line."""
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyError([Problem(str(path), line, "", f"not valid YAML: {exc.problem or exc}")]) from None
    return ({} if data is None else data), line_map(node)


def load_model(path: Path, model: type[M]) -> tuple[M, dict[KeyPath, int]]:
    """`path` validated as `model`, and its line map (for checks that span files)."""
    data, lines = parse(path)
    if not isinstance(data, dict):
        raise PolicyError([Problem(str(path), 1, "", f"expected a mapping of fields, got {type(data).__name__}")])
    try:
        return model.model_validate(data), lines
    except ValidationError as invalid:
        raise PolicyError(problems_of(invalid, str(path), lines, field_names(model))) from None
