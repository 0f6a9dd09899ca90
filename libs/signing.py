"""Every event on the bus is signed by the identity that published it; consumers check who that was.

nats-server already refuses a publish the identity has no right to (contracts.permissions); the
signature is the second line: it names the publisher on the message itself, so a service refuses
an approval that the gatekeeper did not sign even if the server were misconfigured, and the
audit trail can say who published each event.
"""

from dataclasses import dataclass
from pathlib import Path

from contracts.envelope import Event
from contracts.identity import IdentityRecord, Kind
from contracts.permissions import may_publish
from libs.identities import IdentityStore, public_key_of, sign, verify

SIGNER_HEADER = "slipway-signer"
SIGNATURE_HEADER = "slipway-signature"


def event_bytes(subject: str, payload: bytes) -> bytes:
    # The subject is signed too: a signed event replayed onto another subject does not verify.
    return b"slipway-event/1\n" + subject.encode() + b"\n" + payload


@dataclass(frozen=True)
class Signer:
    identity: str  # `<kind>:<name>`
    seed: bytes

    @classmethod
    def from_seed_file(cls, path: Path) -> "Signer":
        seed = path.read_bytes().strip()
        kind, name = identity_of_seed_file(path)
        return cls(f"{kind}:{name}", seed)

    @property
    def public_key(self) -> str:
        return public_key_of(self.seed)

    def headers(self, subject: str, payload: bytes) -> dict[str, str]:
        return {SIGNER_HEADER: self.identity, SIGNATURE_HEADER: sign(self.seed, event_bytes(subject, payload))}


def identity_of_seed_file(path: Path) -> tuple[str, str]:
    """`<kind>.<name>.nk` -> (kind, name): the file's name says whose key it is."""
    stem = path.name.removesuffix(".nk")
    kind, _, name = stem.partition(".")
    if kind not in {k.value for k in Kind} or not name:
        raise ValueError(f"{path}: a seed file is named <kind>.<name>.nk (kind one of {', '.join(k.value for k in Kind)})")
    return kind, name


def check_event(
    store: IdentityStore, subject: str, payload: bytes, headers: dict[str, str] | None,
) -> tuple[IdentityRecord | None, str | None]:
    """(the verified publisher, None), or (whoever it claims to be if known, the reason it is refused)."""
    headers = headers or {}
    claimed = headers.get(SIGNER_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not claimed or not signature:
        return None, "unsigned: the message has no slipway-signer/slipway-signature headers"
    record = store.get(claimed)
    if record is None:
        return None, f"signed by {claimed[:100]!r}, which is not in the identity registry"
    if record.revoked_at is not None:
        return record, f"signed by {record.id}, whose key was revoked at {record.revoked_at.isoformat()}"
    if not verify(record.public_key, event_bytes(subject, payload), signature):
        return record, f"the signature does not verify for {record.id}: the message was altered or not signed by it"
    return record, None


def publisher_refusal(record: IdentityRecord, event_type: str) -> str | None:
    """Why `record` may not have published an event of `event_type`; None if it may (or the type is unknown)."""
    if event_type in Event.registry and not may_publish(record, event_type):
        return f"{record.id} may not publish {event_type}"
    return None
