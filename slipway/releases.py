"""Build a ReleaseRequested from a release file and command-line flags, the way a CI system would.

Pure apart from reading the file, hashing a local artifact and asking git about the commit;
`git` is injectable so tests do not depend on the working directory.
"""

import getpass
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError
from ulid import ULID

from contracts.envelope import new_event_id
from contracts.events import ReleaseRequested
from libs.artifacts import ArtifactError, hash_file, local_path
from slipway.release_file import ReleaseInputError, load_release_file  # noqa: F401 - part of this module's API

Git = Callable[[list[str]], str | None]
SOURCE = "cli"


class ReleaseInvalid(Exception):
    """The request does not validate; `errors` is a list of (field path, message)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))


def login_name() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return None


def run_git(args: list[str]) -> str | None:
    """`git <args>` in the current directory; None when git or the repository is not there."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[leaf] = value


def parse_steps(text: str) -> list[dict[str, Any]]:
    try:
        return [{"weight": int(part)} for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ReleaseInputError(f"--steps must be comma-separated percentages such as 10,50,100, got {text!r}") from None


# flag name -> field path in the release document
FLAG_FIELDS = {
    "release_id": "release_id",
    "service": "service",
    "environment": "environment",
    "version": "version",
    "team": "team",
    "artifact": "artifact.uri",
    "digest": "artifact.digest",
    "commit": "commit.sha",
    "committed_at": "commit.committed_at",
    "release_class": "release_class",
    "strategy": "strategy.kind",
    "interval": "strategy.analysis_interval_s",
    "keep_warm": "strategy.keep_warm_s",
    "max_surge": "strategy.max_surge",
    "max_unavailable": "strategy.max_unavailable",
    "instances": "instances",
    "scope": "scope.kind",
    "bake": "scope.bake_s",
    "max_error_rate": "rollback_triggers.max_error_rate",
    "max_p99_ms": "rollback_triggers.max_p99_latency_ms",
    "min_requests": "rollback_triggers.min_requests",
    "requested_by": "requested_by",
}


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` with every flag that was given (not None) written over the file's value."""
    merged = json.loads(json.dumps(data, default=str))
    if overrides.get("artifact") is not None and overrides.get("digest") is None:
        if isinstance(merged.get("artifact"), dict):
            merged["artifact"].pop("digest", None)  # the file's digest is of another artifact
    if overrides.get("commit") is not None and overrides.get("committed_at") is None:
        if isinstance(merged.get("commit"), dict):
            merged["commit"].pop("committed_at", None)  # ...and its commit time of another commit
    for flag, value in overrides.items():
        if value is None:
            continue
        if flag == "steps":
            _set(merged, "strategy.steps", parse_steps(value) if isinstance(value, str) else value)
            if overrides.get("strategy") is None:
                merged["strategy"]["kind"] = "canary"  # steps only make sense for a canary
        elif flag in FLAG_FIELDS:
            _set(merged, FLAG_FIELDS[flag], value)
        else:
            raise ReleaseInputError(f"unknown release option {flag!r}")
    strategy = merged.get("strategy")
    if isinstance(strategy, dict) and strategy.get("kind") != "canary":
        strategy.pop("steps", None)  # a file's canary steps, when a flag chose another strategy
    return merged


def sha256_digest(path: Path) -> str:
    try:
        hexdigest, _ = hash_file(path)
    except (ArtifactError, OSError) as exc:
        raise ReleaseInputError(f"cannot read artifact {path}: {exc}") from exc
    return "sha256:" + hexdigest


def complete(data: dict[str, Any], git: Git = run_git, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Fill what a person would rather not type: digest, commit, release id, requester."""
    real_env = env is None
    env = dict(os.environ) if env is None else env
    data = json.loads(json.dumps(data, default=str))
    artifact = data.get("artifact")
    if isinstance(artifact, dict) and isinstance(artifact.get("uri"), str) and artifact["uri"]:
        path = local_path(artifact["uri"])
        if path is not None:
            if not path.is_file():
                raise ReleaseInputError(f"artifact not found: {path} (artifact.uri)")
            if urlparse(artifact["uri"]).scheme == "":
                artifact["uri"] = str(path.resolve())  # services may run in another directory
            if not artifact.get("digest"):
                artifact["digest"] = sha256_digest(path)
    commit = data.get("commit")
    if commit is None or isinstance(commit, dict):
        commit = dict(commit or {})
        if not commit.get("sha"):
            commit["sha"] = git(["rev-parse", "HEAD"])
            if not commit["sha"]:
                raise ReleaseInputError("commit.sha not given and `git rev-parse HEAD` failed here: pass --commit SHA")
        if not commit.get("committed_at"):
            commit["committed_at"] = git(["show", "-s", "--format=%cI", str(commit["sha"])])
            if not commit["committed_at"]:
                raise ReleaseInputError(
                    f"commit.committed_at not given and git does not know commit {commit['sha']}: pass --committed-at ISO"
                )
        data["commit"] = commit
    if not data.get("requested_by"):
        user = env.get("USER") or env.get("LOGNAME") or (login_name() if real_env else None)
        if user:
            data["requested_by"] = user
    if not data.get("release_id"):
        data["release_id"] = f"{data.get('service') or 'unknown'}-{data.get('version') or 'unknown'}-{ULID()}"
    # One id per request built; publishing it again (a retry) keeps it, so the stream stores it once.
    data.setdefault("event_id", new_event_id())
    data.setdefault("actor", data.get("requested_by") or "cli")
    data.setdefault("source", SOURCE)
    return data


def field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(body)"


def validate(data: dict[str, Any]) -> ReleaseRequested:
    try:
        return ReleaseRequested.model_validate(data)
    except ValidationError as exc:
        raise ReleaseInvalid([(field_path(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]) from None


def build_release(
    file: Path | None, overrides: dict[str, Any], git: Git = run_git, env: dict[str, str] | None = None,
    team_of: Callable[[str], str | None] | None = None,
) -> ReleaseRequested:
    """File values, then flags over them, then defaults, then validation: the request to publish.

    `team_of` (the service catalogue) gives the team when neither the file nor a flag names one.
    """
    data = apply_overrides(load_release_file(file) if file is not None else {}, overrides)
    if team_of is not None and not data.get("team") and isinstance(data.get("service"), str):
        if team := team_of(data["service"]):
            data["team"] = team
    return validate(complete(data, git=git, env=env))
