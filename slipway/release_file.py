"""Read a release file (YAML or JSON) the way a person wrote it."""

from pathlib import Path
from typing import Any

import yaml


class ReleaseInputError(Exception):
    """The release file or flags cannot be turned into a request (exit code 2)."""


class _TextLoader(yaml.SafeLoader):
    """Plain scalars stay text (`version: 1.10` is not the number 1.1); pydantic converts numeric fields."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag.rsplit(":", 1)[-1] not in ("int", "float", "timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# The envelope is the CLI's to fill: a reused file must not repeat an event_id (it would be deduplicated).
ENVELOPE_FIELDS = ("event_id", "type", "occurred_at", "correlation_id", "causation_id", "schema_version")


def load_release_file(path: Path) -> dict[str, Any]:
    """A YAML (or JSON, which is YAML) release file as a dict, with a clear error when it is not one."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReleaseInputError(f"cannot read release file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=_TextLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ReleaseInputError(f"release file {path} is not valid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ReleaseInputError(f"release file {path} must be a mapping of fields, got {type(data).__name__}")
    return {key: value for key, value in data.items() if key not in ENVELOPE_FIELDS}
