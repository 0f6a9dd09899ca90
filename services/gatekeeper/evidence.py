"""Evidence from CI systems (EvidenceSubmitted): kept per digest for promotion gates, and a release waiting
on one is evaluated again at once.

nats-server lets a team's CI identity publish evidence only under its own team's subject; this is the
second check (as the artifact-verifier's for release requests): subject and body agree, the publisher is
that team's CI, and a named service is that team's in the service catalogue. A refusal is an EventRefused
that says who tried what; nothing is recorded.
"""

import logging

from contracts.events import ALL_SERVICES, EventRefused, EvidenceSubmitted
from contracts.identity import IdentityRecord, Kind
from libs.consume import broker_message, current_publisher
from libs.runtime import Runtime
from libs.service_catalogue import ServiceCatalogue
from libs.store import Transaction
from services.gatekeeper import inventory_store
from services.gatekeeper.workflow import ReleaseWorkflow

log = logging.getLogger("slipway.gatekeeper.evidence")
CONSUMER = "gatekeeper-evidence"


def evidence_refusal(evidence: EvidenceSubmitted, subject: str, owner: str | None,
                     publisher: IdentityRecord) -> str | None:
    """Why `publisher` may not submit this evidence, or None. `owner`: the catalogue's team for the service."""
    if subject != evidence.address():
        return f"{publisher.id} published evidence for {evidence.team}/{evidence.service or ALL_SERVICES} on {subject}: subject and body disagree"
    if publisher.kind is not Kind.CI or evidence.team not in publisher.teams:
        return f"{publisher.id} may not submit evidence for team {evidence.team}"
    if evidence.service is not None and owner != evidence.team:
        whose = f"gives it to team {owner}" if owner else "does not list it"
        return f"{publisher.id} may not submit evidence for {evidence.service}: the service catalogue {whose}"
    return None


class EvidenceIntake:
    def __init__(self, runtime: Runtime, workflow: ReleaseWorkflow) -> None:
        self.runtime = runtime
        self.workflow = workflow
        self.catalogue = ServiceCatalogue.load(runtime.settings.service_catalogue)

    async def on_evidence(self, evidence: EvidenceSubmitted) -> None:
        message = broker_message()
        refusal = None
        if (publisher := current_publisher.get()) is not None:  # identities are checked: only the owning team's CI
            refusal = evidence_refusal(evidence, message.subject if message else "",
                                       self.catalogue.team_of(evidence.service) if evidence.service else None, publisher)

        async def record(tx: Transaction) -> None:
            if refusal is None:
                await inventory_store.add_evidence(tx.session, evidence)
                return
            await tx.emit(EventRefused.about(
                evidence, consumer=CONSUMER, refused_sequence=message.metadata.sequence.stream if message else 0,
                refused_subject=(message.subject if message else evidence.address())[:1024],
                claimed_signer=publisher.id if publisher else None, reason=refusal, source="gatekeeper",
            ))

        await self.runtime.process_once(CONSUMER, evidence, record)
        if refusal is not None:
            log.warning("refused evidence %s: %s", evidence.event_id, refusal)
            return
        log.info("%s evidence for %s: %s (%s)", evidence.kind, evidence.digest, evidence.outcome, evidence.actor)
        self.workflow.wake()  # a release waiting on a promotion gate may go now
