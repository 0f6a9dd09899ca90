"""nats-server's side of the identities: the authorization block it enforces, and how to connect.

Each live identity in the registry becomes an nkey user with the permissions of its kind
(contracts.permissions). `slipway up` writes the block beside the embedded server's configuration
on every start; `slipway identity create/revoke` writes it again and signals the server to reload,
so a revoked person is cut off at once.
"""

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from contracts.catalogue import READERS
from contracts.identity import Kind, Registry, Role
from contracts.permissions import inbox_prefix, permissions_for
from libs.identities import IdentityStore, credentials_dir, write_private
from libs.signing import identity_of_seed_file

AUTHORIZATION_FILE = "authorization.conf"
ADMIN = "local"  # the operator of this slipway: the one who holds the data directory
ONCALL = "default"


def render(registry: Registry) -> str:
    """The `authorization` block: one nkey user per live identity. NATS's config format reads JSON."""
    users: list[dict[str, Any]] = []
    for record in registry.identities:
        if record.revoked_at is not None:
            continue
        rights = permissions_for(record)
        permissions: dict[str, Any] = {
            "publish": {"allow": list(rights.publish)}, "subscribe": {"allow": list(rights.subscribe)},
        }
        if rights.allow_responses:
            permissions["allow_responses"] = True
        users.append({"nkey": record.public_key, "permissions": permissions})
    return (
        "# Written by slipway from its identity registry (contracts/permissions.py); do not edit by hand.\n"
        f"authorization {{\n  users = {json.dumps(users, indent=2)}\n}}\n"
    )


def write_authorization(nats_dir: Path, registry: Registry) -> Path:
    path = nats_dir / AUTHORIZATION_FILE
    write_private(path, render(registry).encode())
    return path


def bootstrap(data_dir: Path, services: tuple[str, ...], teams: tuple[str, ...], person: str | None) -> IdentityStore:
    """Every identity slipway needs, created on first start (and for a team added since): six services and
    the read-only dashboard, one CI identity per team, on-call, the operator, and a first person when there is none yet."""
    store = IdentityStore(credentials_dir(data_dir))
    for service in (*services, *READERS):
        store.ensure(Kind.SERVICE, service)
    for team in teams:
        store.ensure(Kind.CI, team, teams=(team,))
    store.ensure(Kind.ONCALL, ONCALL)
    store.ensure(Kind.ADMIN, ADMIN)
    has_person = any(r.kind is Kind.PERSON and r.revoked_at is None for r in store.registry().identities)
    if person and not has_person:
        store.create(Kind.PERSON, person, roles=tuple(Role), teams=teams)
    return store


def reload_server(data_dir: Path, timeout: float = 5.0) -> bool:
    """Write the authorization block again from the registry and make a running embedded server read it.

    Returns once the server reports the new configuration loaded (its /varz config_load_time moves),
    so a key revoked here is refused from the next connection on. True when a server reloaded; False
    when none runs here (it reads the block at its next start).
    """
    store = IdentityStore(credentials_dir(data_dir))
    nats_dir = data_dir / "nats"
    if not (nats_dir / AUTHORIZATION_FILE).exists():
        return False
    write_authorization(nats_dir, store.registry())
    try:
        record = json.loads((data_dir / "stack.json").read_text())
        pid, monitor = int(record["nats_pid"]), str(record["nats_monitor_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    before = _config_load_time(monitor)
    try:
        os.kill(pid, signal.SIGHUP)  # nats-server reloads its configuration on SIGHUP
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _config_load_time(monitor) not in (before, None):
            return True
        time.sleep(0.02)  # polling the server's own report of the reload, within the deadline
    raise TimeoutError(f"nats-server (pid {pid}) did not report a reload within {timeout:g}s; see its log")


def _config_load_time(monitor_url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{monitor_url}/varz", timeout=2) as reply:  # loopback monitor port
            return str(json.load(reply).get("config_load_time"))
    except (OSError, ValueError):
        return None


def connect_options(credentials: Path | None, identity: str | None = None) -> dict[str, Any]:
    """nats-py / FastStream connect arguments for the identity whose seed file is `credentials`.

    The file's name (`<kind>.<name>.nk`) says whose it is, unless `identity` (`<kind>:<name>`) does.
    """
    if credentials is None:
        return {}
    kind, name = identity.split(":", 1) if identity else identity_of_seed_file(credentials)
    return {"nkeys_seed": str(credentials), "inbox_prefix": inbox_prefix(Kind(kind), name)}
