"""Reading the gatekeeper's policy from infra/policies/: one YAML file per concern, all checked together.

`load_policy(directory)` returns a Policy or raises PolicyError listing every problem with file, line
and field; it never returns half a policy, so a caller that keeps its last good Policy when this
raises is safe. A file that is absent means that concern's defaults (policy.py says
what they are); a YAML file that is not one of FILES is an error, since a misspelt file name would
otherwise be ignored.
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from libs.policy_yaml import KeyPath, PolicyError, Problem, line_of, load_model, suggestion
from services.gatekeeper.policy import Policy

# file name -> the Policy field it fills, in the order a person reads them
FILES = {
    "services.yaml": "services",
    "classes.yaml": "classes",
    "risk.yaml": "risk",
    "approvals.yaml": "approvals",
    "windows.yaml": "windows",
    "incidents.yaml": "incidents",
    "concurrency.yaml": "concurrency",
    "promotion.yaml": "promotion",
    "deadlines.yaml": "deadlines",
    "changes.yaml": "changes",
}


def model_of(file_name: str) -> type[BaseModel]:
    return Policy.model_fields[FILES[file_name]].annotation  # type: ignore[return-value]


def load_policy_file(path: Path) -> BaseModel:
    """One policy file on its own (`slipway policy check FILE`): checks that span files are not made."""
    if path.name not in FILES:
        raise PolicyError([_unknown_file(path)])
    return load_model(path, model_of(path.name))[0]


def load_policy(directory: Path, catalogue: Path | None = None) -> Policy:
    """The policy in `directory`; `catalogue` replaces its services.yaml (SLIPWAY_SERVICE_CATALOGUE)."""
    if not directory.is_dir():
        raise PolicyError([Problem(str(directory), None, "", "no such policy directory")])
    problems: list[Problem] = []
    parts: dict[str, Any] = {}
    lines: dict[str, tuple[Path, dict[KeyPath, int]]] = {}
    paths = sorted(directory.iterdir())
    if catalogue is not None:
        paths = [p for p in paths if p.name != "services.yaml"] + ([catalogue] if catalogue.is_file() else [])
    for path in paths:
        if path.suffix not in (".yaml", ".yml"):
            continue
        if path == catalogue:
            name = "services.yaml"
        elif path.name in FILES:
            name = path.name
        else:
            problems.append(_unknown_file(path))
            continue
        try:
            parts[FILES[name]], found = load_model(path, model_of(name))
        except PolicyError as broken:
            problems.extend(broken.problems)
            continue
        lines[FILES[name]] = (path, found)
    if problems:
        raise PolicyError(problems)
    policy = Policy(**parts)
    if problems := _across_files(policy, lines, directory):
        raise PolicyError(problems)
    return policy


def _unknown_file(path: Path) -> Problem:
    return Problem(str(path), None, "", f"not a policy file{suggestion(path.name, FILES)}; "
                   f"policy files are {', '.join(FILES)}")


def _across_files(policy: Policy, lines: dict[str, tuple[Path, dict[KeyPath, int]]], directory: Path) -> list[Problem]:
    """What no single file can check: names one file uses that another defines."""

    def at(part: str, *loc: str) -> tuple[str, int | None]:
        path, found = lines.get(part, (directory / _file_of(part), {}))
        return str(path), line_of(found, loc)

    problems = []
    levels = list(policy.risk.levels)
    for level in levels:
        if level not in policy.approvals.levels:
            file, line = at("approvals", "levels")
            problems.append(Problem(file, line, f"levels.{level}",
                                    f"risk level {level} (risk.yaml) has no approvals; write `{level}: []` for none"))
    for level in policy.approvals.levels:
        if level not in levels:
            file, line = at("approvals", "levels", level)
            problems.append(Problem(file, line, f"levels.{level}",
                                    f"not a risk level of risk.yaml ({', '.join(levels)}){suggestion(level, levels)}"))
    raise_from = policy.risk.recent_failure.applies_from
    if raise_from is not None and raise_from not in levels:
        file, line = at("risk", "recent_failure", "applies_from")
        problems.append(Problem(file, line, "recent_failure.applies_from",
                                f"not a risk level ({', '.join(levels)}){suggestion(raise_from, levels)}"))
    return problems


def _file_of(part: str) -> str:
    return next(name for name, field in FILES.items() if field == part)
