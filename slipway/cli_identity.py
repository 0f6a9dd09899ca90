"""Identities on the command line: create, list and revoke people; choose whose key signs a command.

The registry and the seed files live in <data dir>/credentials (libs.identities). A person's seed
file is their private key: slipway writes it once, mode 0600, and the operator hands it over.
"""

import os
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from slipway.context import USAGE_ERROR, CliError, fail, globals_of, out, say

identity_app = typer.Typer(help="People who may send commands: their keys, roles and teams.", no_args_is_help=True)

IDENTITY_ENV, IDENTITY_FILE_ENV = "SLIPWAY_IDENTITY", "SLIPWAY_IDENTITY_FILE"
AsOption = Annotated[str | None, typer.Option(
    "--as", help=f"The person who signs (their seed file in <data dir>/credentials); default ${IDENTITY_ENV}, "
    f"${IDENTITY_FILE_ENV}, else the only person in the registry", rich_help_panel="Identity")]


def _store(ctx: typer.Context):  # noqa: ANN202 - libs.identities is imported only when asked for
    from libs.identities import IdentityStore, credentials_dir

    return IdentityStore(credentials_dir(globals_of(ctx).data_dir))


def _listed(values: list[str]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _reload_server(data_dir: Path) -> None:
    """Let a running nats-server learn the new or revoked key at once (libs.nats_auth, when it exists)."""
    try:
        from libs.nats_auth import reload_server  # type: ignore[import-not-found, unused-ignore]
    except (ImportError, AttributeError):
        return
    try:
        reload_server(data_dir)
    except Exception as exc:  # noqa: BLE001 - the registry changed; say the server did not follow
        say(f"[yellow]warning:[/] the running nats-server was not told: {escape(str(exc))}")


@identity_app.command("init")
def init(
    ctx: typer.Context,
    server_config: Annotated[Path | None, typer.Option(
        help="A nats-server configuration to copy beside the authorization block, with the include added "
        "(e.g. infra/nats/compose.conf): run the server with <data dir>/nats/nats-server.conf")] = None,
    create_streams: Annotated[bool, typer.Option(
        help="Also create slipway's streams as the operator, on NATS_URL (waits up to 60 s for the server)")] = False,
) -> None:
    """Create the identities `slipway up` would (services, each team's CI, on-call, operator) without starting
    anything: for running slipway on a server of your own, such as docker compose."""
    from contracts.catalogue import SERVICES
    from libs.nats_auth import bootstrap, write_authorization
    from libs.service_catalogue import CatalogueError, ServiceCatalogue
    from slipway.supervisor import first_person_name

    g = globals_of(ctx)
    try:
        teams = ServiceCatalogue.load(g.settings().service_catalogue).teams()
    except CatalogueError as exc:
        fail(str(exc), USAGE_ERROR)
    store = bootstrap(g.data_dir, SERVICES, teams, first_person_name())
    nats_dir = g.data_dir / "nats"
    written = write_authorization(nats_dir, store.registry())
    say(f"identities in {escape(str(store.directory))}; nats-server authorization in {escape(str(written))}")
    if server_config is not None:
        try:
            base = server_config.read_text()
        except OSError as exc:
            fail(f"cannot read {server_config}: {exc.strerror or exc}", USAGE_ERROR)
        config = nats_dir / "nats-server.conf"
        config.write_text(f"{base.rstrip()}\n\n# Added by `slipway identity init`: the nkey users and their rights.\n"
                          f"include \"{written.name}\"\n")
        say(f"server configuration: {escape(str(config))}")
    if create_streams:
        _create_streams(g.nats_url, store)


def _create_streams(url: str, store) -> None:  # noqa: ANN001 - an IdentityStore
    import asyncio
    import time

    from contracts.identity import Kind
    from libs.bus import ensure_streams
    from libs.nats_auth import ADMIN

    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(ensure_streams(url, store.seed_file(Kind.ADMIN, ADMIN)))
            say(f"streams ready on {escape(url)}")
            return
        except Exception as exc:  # noqa: BLE001 - the server may still be starting
            if time.monotonic() > deadline:
                fail(f"could not create the streams on {url}: {type(exc).__name__}: {exc}", 1)
            time.sleep(1)  # a server coming up: retry until the deadline


@identity_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The person's name: lowercase letters, digits, - and _")],
    roles: Annotated[list[str], typer.Option(
        "--roles", help="Comma-separated: release-manager, sre, developer (commands); change-manager (change records, approvals); team-lead, "
        "cab-member, executive, operations, security, business (approvals, infra/policies)")],
    team: Annotated[list[str] | None, typer.Option("--team", help="A team whose services they act on (repeatable)")] = None,
) -> None:
    """Create a person's key pair: prints the seed file to hand to that person."""
    from pydantic import ValidationError

    from contracts.identity import Kind, Role
    from libs.identities import IdentityExists

    store = _store(ctx)
    try:
        chosen = tuple(Role(role) for role in _listed(roles))
    except ValueError:
        fail(f"--roles takes {', '.join(r.value for r in Role)}; got {', '.join(_listed(roles))}", USAGE_ERROR)
    if not chosen:
        fail("give at least one role with --roles", USAGE_ERROR)
    try:
        record = store.create(Kind.PERSON, name, chosen, _listed(team or []))
    except IdentityExists as exc:
        fail(str(exc), 1)
    except ValidationError:
        fail(f"invalid name or team {name!r}: lowercase letters, digits, - and _, at most 63 characters", USAGE_ERROR)
    _reload_server(globals_of(ctx).data_dir)
    seed = store.seed_file(Kind.PERSON, name)
    say(f"[green]created[/] {escape(record.id)}: roles {escape(', '.join(record.roles))}; "
        f"teams {escape(', '.join(record.teams) or 'none')}")
    say(f"seed file (private key, mode 0600): {escape(str(seed))}")
    say(f"hand it to {escape(name)} and to nobody else: they sign with `--as {escape(name)}` here, "
        f"or with {IDENTITY_FILE_ENV}=<that file> elsewhere")


@identity_app.command("list")
def list_identities(ctx: typer.Context) -> None:
    """Every identity in the registry: services, CI, on-call, operator and people."""
    store = _store(ctx)
    if not store.exists():
        fail(f"no identity registry at {store.registry_path}: `slipway up` or `slipway identity create` makes one", 1)
    table = Table(title="Identities")
    for column in ("id", "kind", "roles", "teams", "created", "revoked"):
        table.add_column(column, no_wrap=column != "teams")
    for r in sorted(store.registry().identities, key=lambda r: (r.kind.value, r.name)):
        table.add_row(escape(r.id), r.kind.value, ", ".join(r.roles) or "-", escape(", ".join(r.teams) or "-"),
                      r.created_at.isoformat(timespec="seconds"),
                      f"[red]{r.revoked_at.isoformat(timespec='seconds')}[/]" if r.revoked_at else "-")
    out.print(table)


@identity_app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A person's name, or any identity as kind:name")],
) -> None:
    """Revoke a key: from this moment, whatever it signs is refused; what it signed before still verifies."""
    from contracts.identity import Kind, identity_id
    from libs.identities import UnknownIdentity

    ident = name if ":" in name else identity_id(Kind.PERSON, name)
    try:
        record = _store(ctx).revoke(ident)
    except UnknownIdentity as exc:
        fail(str(exc), 1)
    _reload_server(globals_of(ctx).data_dir)
    say(f"[green]revoked[/] {escape(record.id)} at {record.revoked_at.isoformat() if record.revoked_at else '?'}: "
        "commands it signs are refused from now on")


def signing_identity(ctx: typer.Context, name: str | None) -> tuple[str, bytes, Path]:
    """Who signs a command, their seed and its file (the same key connects to NATS): --as, $SLIPWAY_IDENTITY,
    $SLIPWAY_IDENTITY_FILE, or the only person."""
    from contracts.identity import IDENTITY_NAME_PATTERN, Kind, identity_id

    store = _store(ctx)
    name = name or os.environ.get(IDENTITY_ENV) or None
    if name is None and (file := os.environ.get(IDENTITY_FILE_ENV)):
        return _from_file(store, Path(file))
    if name is None:
        name = _only_person(store)
    if not re.fullmatch(IDENTITY_NAME_PATTERN, name):
        raise CliError(f"--as takes a person's name (lowercase letters, digits, - and _), got {name!r}", USAGE_ERROR)
    path = store.seed_file(Kind.PERSON, name)
    if not path.exists():
        raise CliError(f"no seed file for person {name} at {path}: `slipway identity create {name} --roles ...` "
                       f"makes one, or give yours with {IDENTITY_FILE_ENV}", USAGE_ERROR)
    return identity_id(Kind.PERSON, name), _read_seed(path), path


def _only_person(store) -> str:  # noqa: ANN001 - an IdentityStore
    from contracts.identity import Kind

    if not store.exists():
        raise CliError(f"no identity registry at {store.registry_path}: create yourself with `slipway identity "
                       f"create NAME --roles ...`, or give your seed file with {IDENTITY_FILE_ENV}", USAGE_ERROR)
    people = [r.name for r in store.registry().identities if r.kind is Kind.PERSON and r.revoked_at is None]
    if len(people) == 1:
        return people[0]
    if not people:
        raise CliError("nobody can sign: the registry has no person; `slipway identity create NAME --roles ...`",
                       USAGE_ERROR)
    raise CliError(f"who signs? choose with --as NAME or {IDENTITY_ENV}: {', '.join(sorted(people))}", USAGE_ERROR)


def _from_file(store, path: Path) -> tuple[str, bytes, Path]:  # noqa: ANN001 - an IdentityStore
    from contracts.identity import Kind, identity_id
    from libs.identities import public_key_of

    seed = _read_seed(path)
    try:
        record = store.by_public_key(public_key_of(seed))
    except Exception as exc:  # noqa: BLE001 - nkeys raises several types for a malformed seed
        raise CliError(f"{path} does not hold an nkey seed ({type(exc).__name__})", USAGE_ERROR) from None
    if record is not None:
        return record.id, seed, path
    if named := re.fullmatch(r"person\.([a-z0-9][a-z0-9_-]{0,62})\.nk", path.name):
        return identity_id(Kind.PERSON, named[1]), seed, path  # the registry is elsewhere: the service will judge
    raise CliError(f"the key in {path} is not in the identity registry at {store.registry_path}", USAGE_ERROR)


def _read_seed(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise CliError(f"cannot read the seed file {path}: {exc.strerror or exc}", USAGE_ERROR) from None
