"""People with keys for tests: a registry in the test's data directory and signed commands sent as they would be."""

from datetime import datetime
from typing import Any

from contracts.commands import CommandResult, SignedCommand
from contracts.envelope import Model
from contracts.identity import IdentityRecord, Kind, Role, identity_id
from libs.client import send_command
from libs.identities import IdentityStore
from libs.command_signing import sign_command


class People:
    """The identity registry the services under test read (settings.identity_registry), and its people's keys."""

    def __init__(self, store: IdentityStore, nats_url: str) -> None:
        self.store, self.nats_url = store, nats_url
        self.seeds: dict[str, bytes] = {}

    def add(self, name: str, *roles: Role, teams: tuple[str, ...] = ()) -> IdentityRecord:
        record = self.store.create(Kind.PERSON, name, roles, teams)
        self.seeds[name] = self.store.seed(Kind.PERSON, name)  # kept: revoking deletes the file
        return record

    def sign(self, name: str, subject: str, command: Model, *, issued_at: datetime | None = None,
             command_id: str | None = None) -> SignedCommand:
        return sign_command(subject, command, identity_id(Kind.PERSON, name), self.seeds[name],
                            issued_at=issued_at, command_id=command_id)

    async def send(self, name: str, subject: str, command: Model, **signing: Any) -> CommandResult:
        return await self.send_signed(self.sign(name, subject, command, **signing))

    async def send_signed(self, signed: SignedCommand) -> CommandResult:
        return await send_command(self.nats_url, signed.subject, signed)
