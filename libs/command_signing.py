"""Signing a person's command, and the checks a signed command must pass before anyone acts on it.

The checks are plain functions over the SignedCommand, the signer's registry record and a clock,
so the owning service (libs.commands) and the audit (metrics-collector) apply the same rules.
Each refusal is one sentence that says what is wrong.
"""

from datetime import datetime, timedelta

from ulid import ULID

from contracts.commands import SignedCommand
from contracts.envelope import Model, utcnow
from contracts.identity import IdentityRecord, Kind
from libs.identities import sign, verify


def sign_command(subject: str, command: Model, signer: str, seed: bytes, *, issued_at: datetime | None = None,
                 command_id: str | None = None) -> SignedCommand:
    text = command.model_dump_json()
    unsigned = SignedCommand.model_construct(
        subject=subject, command=text, command_id=command_id or str(ULID()), issued_at=issued_at or utcnow(),
        signer=signer, signature="",
    )
    return SignedCommand(**{**unsigned.__dict__, "signature": sign(seed, unsigned.signed_bytes())})


def signature_refusal(signed: SignedCommand, record: IdentityRecord | None) -> str | None:
    """Whether the signature is the registered key's: unknown signer, not a person, or bad signature."""
    if record is None:
        return f"unknown identity {signed.signer}: it is not in the identity registry"
    if record.kind is not Kind.PERSON:
        return f"{signed.signer} is not a person: only people send these commands"
    if not verify(record.public_key, signed.signed_bytes(), signed.signature):
        return f"bad signature: it does not verify with {signed.signer}'s registered key"
    return None


def command_refusal(signed: SignedCommand, subject: str, record: IdentityRecord | None, now: datetime,
                    window: timedelta) -> str | None:
    """Why a service must not act on `signed`, received on `subject` at `now`; None when it may (replay aside)."""
    if signed.subject != subject:
        return f"bad signature: the command was signed for {signed.subject}, not {subject}"
    problem = signature_refusal(signed, record)
    if problem is not None or record is None:
        return problem
    if record.revoked_at is not None and record.revoked_by(now):
        return f"{signed.signer}'s key was revoked at {record.revoked_at.isoformat()}: it is refused since then"
    age = now - signed.issued_at
    if age > window:
        return (f"too old: issued at {signed.issued_at.isoformat()}, {age.total_seconds():.0f} s ago; "
                f"commands are accepted for {window.total_seconds():.0f} s")
    if -age > window:
        return (f"issued in the future: at {signed.issued_at.isoformat()}, {-age.total_seconds():.0f} s ahead of "
                f"this service's clock (more than {window.total_seconds():.0f} s)")
    return None


def audit_refusal(signed: SignedCommand, record: IdentityRecord | None, actor: str) -> str | None:
    """Why a stored signed command does not vouch for its event: the audit's re-check, clock-free."""
    problem = signature_refusal(signed, record)
    if problem is not None or record is None:
        return problem
    if record.revoked_at is not None and signed.issued_at >= record.revoked_at:
        return f"signed at {signed.issued_at.isoformat()}, after {signed.signer}'s key was revoked at " \
               f"{record.revoked_at.isoformat()}"
    if actor != signed.signer:
        return f"the event names {actor} as its actor, but {signed.signer} signed the command"
    return None
