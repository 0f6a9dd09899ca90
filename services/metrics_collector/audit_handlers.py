"""Use cases of the audit trail: verify the chain (from a signed checkpoint, in full, or a range), sign
checkpoints, index appended records, answer `audit show` and `audit who`.

The chain is read a chunk at a time (CHUNK records), so verifying a million records never holds them
all; a query reads the audit index, never the whole log.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.audit_queries import (AUDIT_PAGE_BYTES, COUNT_CAP, AuditEntry, AuditEventsReply, Checkpoint, CheckpointAudit,
                                     CheckpointReply, PersonAction, ShowAudit, WhoAudit, WhoReply)
from contracts.commands import CommandResult, VerifyAudit
from contracts.envelope import Event
from contracts.queries import AuditReply, BadCheckpointView, Flag, UnverifiedCommand
from libs.identities import IdentityStore, sign, verify
from libs.runtime import Runtime
from libs.signing import Signer
from services.metrics_collector import audit_rules, domain
from services.metrics_collector.audit_rules import ChainWalk, CheckpointFacts
from services.metrics_collector.audit_store import AuditIndex, Checkpoints
from services.metrics_collector.store import EventLog

log = logging.getLogger("slipway.metrics_collector")
CHUNK = 5000  # records read per step of a verification or a backfill
FLAGS_SHOWN = 20  # the newest flags an audit reply lists; flagged_count covers them all
SignatureCheck = Callable[[dict[str, Any]], str | None]


class AuditTrail:
    def __init__(self, runtime: Runtime, signer: Signer | None, identities: IdentityStore | None,
                 append_lock: asyncio.Lock, signature_problem: SignatureCheck, every: int) -> None:
        self.runtime, self.signer, self.identities = runtime, signer, identities
        self.append_lock, self.signature_problem, self.every = append_lock, signature_problem, every

    # --- written with the appends ------------------------------------------------------------

    async def appended(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Sign a checkpoint when one is due among the records just appended (in their transaction); the
        projector indexes them (services.metrics_collector.projector)."""
        if rows and self.signer is not None:
            checkpoints = Checkpoints(session)
            last = await checkpoints.newest_seq()
            for row in rows:  # at every Nth record, wherever batches happen to end
                if audit_rules.checkpoint_due(last, row["seq"], self.every):
                    last = (await self._sign(checkpoints, row["seq"], row["hash"])).seq

    async def _sign(self, checkpoints: Checkpoints, seq: int, digest: str) -> Checkpoint:
        assert self.signer is not None  # callers check: a collector without a key signs nothing
        return await sign_checkpoint(checkpoints, self.signer, seq, digest)

    # --- commands ------------------------------------------------------------------------------

    async def checkpoint(self, _: CheckpointAudit) -> CommandResult:
        if self.signer is None:
            reply = CheckpointReply(checkpoint=None, reason="the collector runs without a key of its own "
                                    "(SLIPWAY_CREDENTIALS): it cannot sign checkpoints")
            return CommandResult(ok=False, message=reply.reason, data=reply.model_dump(mode="json"))
        async with self.append_lock, self.runtime.db.transaction() as tx:
            seq, digest = await EventLog(tx.session).head()
            checkpoints = Checkpoints(tx.session)
            if seq == 0:
                reply = CheckpointReply(checkpoint=None, reason="the event log is empty: there is nothing to sign")
                return CommandResult(ok=False, message=reply.reason, data=reply.model_dump(mode="json"))
            newest = next(iter(await checkpoints.all()), None)
            made = (Checkpoint.model_validate(newest) if newest and newest["seq"] == seq
                    else await self._sign(checkpoints, seq, digest))
        reply = CheckpointReply(checkpoint=made)
        return CommandResult(ok=True, message=f"checkpoint at seq {made.seq} ({made.records} records) signed by "
                                              f"{made.signer}: {made.hash}", data=reply.model_dump(mode="json"))

    async def verify(self, query: VerifyAudit) -> CommandResult:
        async with self.runtime.db.sessions() as session:
            entries, checkpoints = EventLog(session), Checkpoints(session)
            head_seq, head_hash = await entries.head()
            records = await checkpoints.records()
            checked, bad, start = await self._checkpoints(checkpoints, query, head_seq, records)
            ranged = query.from_seq is not None or query.to_seq is not None
            if ranged:
                first = query.from_seq or 1
                before = (await checkpoints.hashes_at([first - 1])).get(first - 1) if first > 1 else domain.GENESIS_HASH
                walk = ChainWalk(expected_prev=before or "", start_label=f"record {first - 1} as stored")
                walk.previous_seq = first - 1 if first > 1 else None
                after, upto, mode = first - 1, query.to_seq, "range"
            elif start is not None and not query.full:
                walk = ChainWalk(expected_prev=start["hash"], start_label=f"signed checkpoint {start['seq']}")
                walk.previous_seq = start["seq"]
                after, upto, mode = start["seq"], None, "checkpoint"
            else:
                walk, after, upto, mode = ChainWalk(), 0, None, "full"
            signed, unvouched = await self._walk(checkpoints, walk, after, upto)
            flagged, flagged_count = await entries.flagged(FLAGS_SHOWN), await entries.flagged_count()
        first_seq, last_seq = walk.span
        reply = AuditReply(
            records=records, first_bad_seq=walk.first_bad_seq, reason=walk.reason or (bad[0].reason if bad else ""),
            head_hash=head_hash if head_seq else None,
            flagged=[Flag(seq=seq, reason=reason) for seq, reason in flagged], flagged_count=flagged_count,
            signed_commands=signed, unverified_count=len(unvouched),
            unverified_commands=[UnverifiedCommand(**u.__dict__) for u in unvouched[:FLAGS_SHOWN]],
            mode=mode, checkpoint_seq=start["seq"] if mode == "checkpoint" and start else None,
            checked_from=first_seq, checked_to=last_seq, rehashed=walk.records,
            checkpoints=checked, bad_checkpoints=bad,
        )
        ok = walk.ok and not bad and not unvouched
        return CommandResult(ok=ok, message=_verdict(reply), data=reply.model_dump(mode="json"))

    async def _checkpoints(self, checkpoints: Checkpoints, query: VerifyAudit,
                           head_seq: int, records: int) -> tuple[int, list[BadCheckpointView], dict[str, Any] | None]:
        """Every checkpoint checked (signature, and the record it signed); the newest that also still counts
        its records right is where a verification may start."""
        found = await checkpoints.all()
        low, high = query.from_seq or 1, query.to_seq or head_seq
        if query.from_seq is not None or query.to_seq is not None:
            found = [c for c in found if low <= c["seq"] <= high]
        stored = await checkpoints.hashes_at(c["seq"] for c in found)
        bad, start = [], None
        for checkpoint in found:  # newest first
            facts = CheckpointFacts(checkpoint["seq"], checkpoint["hash"], checkpoint["records"],
                                    self._checkpoint_signature(checkpoint), stored.get(checkpoint["seq"]))
            if start is None and audit_rules.checkpoint_problem(facts) is None:
                facts = CheckpointFacts(**{**facts.__dict__, "records_now": await checkpoints.records_upto(facts.seq, records)})
            problem = audit_rules.checkpoint_problem(facts)
            if problem is None:
                start = start or checkpoint
                continue
            if facts.records_now is not None and facts.records_now < facts.signed_records:
                gap = await checkpoints.first_gap(facts.seq)
                problem += f" (the first missing record is {gap})" if gap else ""
            bad.append(BadCheckpointView(seq=checkpoint["seq"], reason=problem))
        return len(found), bad, start

    def _checkpoint_signature(self, checkpoint: dict[str, Any]) -> str | None:
        if self.identities is None:
            return "no identity registry is configured (SLIPWAY_IDENTITY_REGISTRY): its signature cannot be checked"
        record = self.identities.get(checkpoint["signer"])
        if record is None:
            return f"signed by {checkpoint['signer']}, which is not in the identity registry"
        created_at = checkpoint["created_at"]
        if record.revoked_at is not None and created_at >= record.revoked_at:
            return f"signed at {created_at.isoformat()}, after {record.id}'s key was revoked"
        signed = audit_rules.checkpoint_bytes(checkpoint["seq"], checkpoint["hash"], checkpoint["records"], created_at,
                                              checkpoint["signer"])
        if not verify(record.public_key, signed, checkpoint["signature"]):
            return f"the signature does not verify with {record.id}'s registered key"
        return None

    async def _walk(self, checkpoints: Checkpoints, walk: ChainWalk, after: int,
                    upto: int | None) -> tuple[int, list[domain.UnvouchedCommand]]:
        signed, unvouched = 0, []
        while chunk := await checkpoints.chain_after(after, upto, CHUNK):
            intact = walk.feed(chunk)
            checked, failed = domain.unvouched_commands(chunk, self.signature_problem)
            signed, unvouched = signed + checked, unvouched + failed
            if not intact:
                break
            after = chunk[-1][0]
        return signed, unvouched

    async def show(self, query: ShowAudit) -> CommandResult:
        async with self.runtime.db.sessions() as session:
            index = AuditIndex(session)
            for kind in query.types:
                if kind not in Event.registry and kind != domain.UNTYPED and not await index.type_known(kind):
                    return CommandResult(ok=False, message=f"invalid filter: {kind!r} is not an event type: not declared "
                                                           "in slipway's contracts and not in the log")
            sizes = await index.sizes(query)  # which index range to walk: the count and the page choose by them
            total = await index.count(query, COUNT_CAP, sizes) if query.count else None
            rows = await index.page(query, after=query.after, offset=(query.page - 1) * query.limit, limit=query.limit,
                                    sizes=sizes)
        events, size = [], 0
        for row in rows:
            entry = _entry(row)
            size += len(row["payload"]) + 600  # the payload and the fields around it, as JSON
            if events and size > AUDIT_PAGE_BYTES:
                break  # the rest comes with the next page (next_after)
            events.append(entry)
        more = len(events) < len(rows) or len(rows) == query.limit
        capped = total is not None and total > COUNT_CAP
        reply = AuditEventsReply(filter=query.described(), page=query.page, limit=query.limit,
                                 total=min(total, COUNT_CAP) if total is not None else None, total_capped=capped,
                                 events=events, next_after=events[-1].seq if events and more else None)
        shown = (f"events {events[0].seq}..{events[-1].seq} ({len(events)})" if events else "no events on this page")
        counted = f" of {'more than ' if capped else ''}{reply.total} matching" if total is not None else ""
        return CommandResult(ok=True, message=f"{shown}{counted} ({reply.filter})", data=reply.model_dump(mode="json"))

    async def who(self, query: WhoAudit) -> CommandResult:
        async with self.runtime.db.sessions() as session:
            history = (await EventLog(session).histories([query.release_id])).get(query.release_id, [])
        if not history:
            return CommandResult(ok=False, message=f"release {query.release_id} is not in the event log")
        facts = audit_rules.who(query.release_id, history)
        reply = WhoReply.model_validate({**facts, "approvers": [PersonAction(**a) for a in facts["approvers"] if a["at"]],
                                         "interventions": [PersonAction(**a) for a in facts["interventions"] if a["at"]]})
        commit = f"commit {reply.commit_sha or '?'}"
        message = (f"{reply.release_id}: requested by {reply.requested_by or '?'}, {commit}, "
                   f"artifact {reply.artifact_digest or '?'}; {reply.outcome}")
        return CommandResult(ok=True, message=message, data=reply.model_dump(mode="json"))


async def sign_checkpoint(checkpoints: Checkpoints, signer: Signer, seq: int, digest: str) -> Checkpoint:
    """Sign and store a checkpoint at the record `seq` (whose chain hash is `digest`), counting the records up to it."""
    records, created_at = await checkpoints.records_upto(seq), datetime.now(UTC)
    signature = sign(signer.seed, audit_rules.checkpoint_bytes(seq, digest, records, created_at, signer.identity))
    checkpoint = Checkpoint(seq=seq, hash=digest, records=records, created_at=created_at,
                            signer=signer.identity, signature=signature)
    await checkpoints.add(checkpoint.model_dump())
    log.info("signed audit checkpoint at seq %d (%d records)", seq, records)
    return checkpoint


async def index_backlog(session: AsyncSession, upto: int) -> int:
    """Index the records up to seq `upto` logged before the index existed (or since a rebuild emptied it); returns
    how many. Those after `upto` are the projector's to index."""
    index, done = AuditIndex(session), 0
    while rows := [r for r in await index.unindexed(await index.newest_seq(), CHUNK) if r["seq"] <= upto]:
        # The record's own columns win over its payload: they are what the log filed it under.
        fields = [audit_rules.payload_of(r["payload"]) | {"type": r["type"]} for r in rows]
        await index_records(index, rows, fields)
        done += len(rows)
    return done


async def index_records(index: AuditIndex, rows: Sequence[dict[str, Any]], fields: Sequence[dict[str, Any]]) -> None:
    known = await index.teams_of(str(f.get("release_id")) for f in fields if f.get("release_id"))
    entries = []
    for row, payload in zip(rows, fields):
        entry = audit_rules.index_row(row["seq"], payload, row["occurred_at"], known)
        if entry["release_id"] and entry["team"]:
            known.setdefault(entry["release_id"], entry["team"])
        entries.append(entry)
    await index.add(entries)


def _entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        **{k: row[k] for k in ("seq", "event_id", "type", "subject", "occurred_at", "recorded_at", "release_id",
                               "service", "environment", "team", "actor", "flag", "hash", "prev_hash")},
        intact=domain.chain_hash(row["prev_hash"], row["payload"]) == row["hash"],
        payload=audit_rules.payload_of(row["payload"]),
    )


def _verdict(reply: AuditReply) -> str:
    if reply.first_bad_seq is not None:
        return f"audit trail BROKEN at record {reply.first_bad_seq} of {reply.records}: {reply.reason}"
    if reply.bad_checkpoints:
        first = reply.bad_checkpoints[0]
        return f"audit trail BROKEN: {first.reason}" + (
            f" ({len(reply.bad_checkpoints)} checkpoints do not hold)" if len(reply.bad_checkpoints) > 1 else "")
    if reply.unverified_count:
        first = reply.unverified_commands[0]
        return (f"audit trail linked, but {reply.unverified_count} of {reply.signed_commands} signed commands do not "
                f"verify; first at record {first.seq} ({first.type} {first.event_id}): {first.reason}")
    flags = f" ({reply.flagged_count} flagged, left out of reports)" if reply.flagged_count else ""
    if reply.mode == "checkpoint":
        how = (f"from signed checkpoint {reply.checkpoint_seq}, {reply.rehashed} records after it re-hashed")
    elif reply.mode == "range":
        how = f"records {reply.checked_from}..{reply.checked_to} re-hashed ({reply.rehashed})"
    else:
        how = f"all {reply.rehashed} records re-hashed"
    return (f"audit trail intact: {reply.records} records{flags}, {how}, {reply.checkpoints} checkpoints hold, "
            f"{reply.signed_commands} signed commands verified, head {reply.head_hash or domain.GENESIS_HASH}")
