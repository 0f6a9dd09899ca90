"""Typed settings, read once at each process's composition root."""

import json
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from libs.faults import CrashPoint, parse_crash_points


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLIPWAY_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "SLIPWAY_NATS_URL"),
        description="NATS server with JetStream; `slipway up` starts an embedded one unless NATS_URL is set",
    )
    data_dir: Path = Field(default=Path(".slipway"), description="SQLite files, run state and logs")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; unset = one SQLite file per service in data_dir; "
        "a postgresql+asyncpg:// URL gives each service its own schema",
    )
    credentials: Path | None = Field(
        default=None,
        description="This process's nkey seed file (its identity on the bus); unset = connect without one, "
        "which only a server without authorization accepts. `slipway up` sets it for each service",
    )
    identity_registry: Path | None = Field(
        default=None,
        description="The identity registry (registry.json in <data dir>/credentials); when set, a service accepts "
        "events only when signed by the identity that may publish them, and people's commands only when signed",
    )
    service_catalogue: Path = Field(
        default=Path("infra/policies/services.yaml"),
        description="Which team owns which deployed service (relative paths from the working directory); a team's "
        "CI identity may request releases only for its own services",
    )
    gate_tick_s: float = Field(
        default=1.0, gt=0, le=60,
        description="gatekeeper: how often waiting releases are evaluated again (windows open and deadlines pass by "
        "themselves); approvals, freed slots, lifted freezes and resolved incidents wake it at once",
    )
    policy_dir: Path = Field(
        default=Path("infra/policies"),
        description="The gatekeeper's policy files (services.gatekeeper.policy_files.FILES); relative paths from "
        "the working directory",
    )
    environments_dir: Path = Field(
        default=Path("infra/environments"),
        description="Environment declarations (<env>.yaml: regions, instances, config, quotas, data sources); relative "
        "paths from the working directory. The deployer reads them at every drift and preview check",
    )
    drift_interval_s: float = Field(
        default=300.0, gt=0, le=86_400,
        description="deployer: how often what runs is compared with the environment declarations (and preview "
        "environments past their ttl are torn down); `slipway env drift ENV` compares at once",
    )
    command_window_s: float = Field(
        default=120.0, gt=0, le=86_400,
        description="A person's signed command is accepted only if issued within this many seconds of the "
        "service's clock, either way; its command id is remembered for as long, so it is acted on once",
    )
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    deploy_target: Literal["local", "memory"] = Field(
        default="local",
        description="deployer: where releases run: `local` starts real processes behind a local router; `memory` "
        "runs nothing and only remembers what it was asked (tests and dry runs)",
    )
    otel_endpoint: str | None = Field(default=None, description="OTLP/HTTP traces endpoint when otel_exporter=otlp")
    max_deliver: int = Field(default=5, ge=1, description="Deliveries of a failing message before it is dead-lettered")
    ack_wait_s: float = Field(
        default=5.0, gt=0, le=3600,
        description="JetStream ack wait: how soon a message held by a dead process is redelivered; "
        "live handlers send in-progress heartbeats, so a long handler is never redelivered under itself",
    )
    log_level: str = "INFO"
    max_artifact_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest artifact accepted; a bigger one is refused before it is read"
    )
    artifact_read_timeout_s: float = Field(
        default=30.0, gt=0, description="A download that receives nothing for this long fails"
    )
    artifact_deadline_s: float = Field(
        default=300.0, gt=0, description="Longest one artifact's fetch and hash may take in all"
    )
    artifact_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path("dist")],
        description="Directories a release may name local artifacts under (symlinks followed), separated by "
        "`:` or `,`; relative ones are taken from the working directory. data_dir/demo-artifacts and "
        "data_dir/artifact-cache are always allowed; nothing else in data_dir is",
    )
    artifact_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts a release may name http(s) artifacts on, comma-separated: `host` (the scheme's "
        "default port) or `host:port`; none by default, so only local artifacts are accepted",
    )
    crash_at: str = Field(
        default="",
        description="Recovery tests only: stage:place:key entries at which the process SIGKILLs itself once "
        "(see libs/faults.py)",
    )
    probe_rate_per_s: float = Field(
        default=20.0, gt=0, description="health-watcher: synthetic requests per second sent to a step's new version"
    )
    analysis_max_extensions: int = Field(
        default=2, ge=0, le=20,
        description="health-watcher: times a step's window is extended by its interval while too few requests reached "
        "the new version to judge it",
    )
    analysis_inconclusive: Literal["fail", "pause"] = Field(
        default="fail",
        description="health-watcher: a step still without enough requests after the last extension fails (and is "
        "rolled back), or pauses: an `inconclusive` verdict and a warning alert, the release holding its weights",
    )

    change_source: Literal["slipway", "servicenow"] = Field(
        default="slipway",
        description="gatekeeper: where change records come from: slipway's own registry (`slipway change create`) "
        "or a ServiceNow-compatible Table API (change_request)",
    )
    servicenow_url: str | None = Field(default=None, description="ServiceNow instance, e.g. https://acme.service-now.com")
    servicenow_user: str | None = Field(default=None, description="Basic auth user for the Table API")
    servicenow_password: SecretStr | None = Field(default=None, description="Basic auth password for the Table API")
    servicenow_token: SecretStr | None = Field(default=None, description="Bearer token (OAuth) instead of basic auth")
    servicenow_timeout_s: float = Field(default=10.0, gt=0, le=300, description="One Table API call's time limit")
    incident_webhook_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="gatekeeper: the PagerDuty Events API v2 webhook listens on 127.0.0.1 at this port "
        "(0 = a free port, written to <data dir>/gatekeeper-incident-webhook.json); unset = no webhook",
    )
    incident_webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret of the webhook's HMAC-SHA256 signature; unset = every call is refused",
    )
    incident_default_environment: str = Field(
        default="prod", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$",
        description="The environment of a webhook incident whose payload.custom_details names none",
    )
    dashboard_port: int = Field(
        default=0, ge=0, le=65535,
        description="dashboard: the HTTP API, /metrics and the web page listen on 127.0.0.1 at this port "
        "(0 = a free port); the address is written to <data dir>/dashboard.json and printed by `slipway up`",
    )
    audit_checkpoint_every: int = Field(
        default=10_000, ge=0, le=10_000_000,
        description="metrics-collector: sign a checkpoint of the audit trail every this many records (0 = only on "
        "demand, `slipway audit checkpoint`); `audit verify` re-hashes only the records after the newest one",
    )

    @field_validator("artifact_dirs", mode="before")
    @classmethod
    def artifact_dirs_listed(cls, value: object) -> object:
        return _listed(value, separators=f"[,{re.escape(os.pathsep)}]")

    @field_validator("artifact_hosts", mode="before")
    @classmethod
    def artifact_hosts_listed(cls, value: object) -> object:
        return _listed(value, separators=r"[,\s]")

    @field_validator("crash_at")
    @classmethod
    def crash_points_readable(cls, value: str) -> str:
        parse_crash_points(value)  # a typo fails at start, not silently at the crash point
        return value

    @cached_property
    def crash_points(self) -> tuple[CrashPoint, ...]:
        return parse_crash_points(self.crash_at)

    def database_url_for(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"


def _listed(value: object, separators: str) -> object:
    """A list from the environment: a JSON list, or entries split on `separators`, blanks dropped."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        return json.loads(value)
    return [entry.strip() for entry in re.split(separators, value) if entry.strip()]
