"""Dependencies across services: a release goes only when the versions it requires are live in its
environment, and never while a service it is tied to (either way) is being deployed there."""

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from contracts.release import Requirement
from services.gatekeeper.policy import WaitKind
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import GateState

RULE = "requirements"


def ties_of(spec_requires: list[Requirement], dependents: list[str]) -> frozenset[str]:
    """The services a release is tied to: those it requires and those it says depend on it."""
    return frozenset({r.service for r in spec_requires} | set(dependents))


def unmet(requirement: Requirement, live_version: str | None, environment: str) -> str | None:
    """Why `requirement` is not met by what is live, or None when it is."""
    wanted = f"{requirement.service} {requirement.versions}"
    if live_version is None:
        return f"requires {wanted} in {environment}, but no version of {requirement.service} is live there"
    try:
        specifiers = SpecifierSet(requirement.versions)
        version = Version(live_version)
    except InvalidSpecifier:
        return f"requires {wanted}: not a PEP 440 specifier set"
    except InvalidVersion:
        return f"requires {wanted} in {environment}; live is {live_version}, which is not a PEP 440 version"
    # What is live is live: a pre-release counts when the specifiers admit it.
    if not specifiers.contains(version, prereleases=True):
        return f"requires {wanted} in {environment}; live is {requirement.service} {live_version}"
    return None


def requirement_outcome(candidate: Candidate, state: GateState) -> RuleOutcome:
    environment, spec = candidate.environment, candidate.spec
    mine = ties_of(spec.requires, spec.dependents)
    busy = [
        s for s in state.in_flight
        if s.environment == environment and s.release_id != candidate.release_id and s.service != candidate.service
        and (s.service in mine or candidate.service in state.ties.get(s.release_id, frozenset()))
    ]
    if busy:
        names = ", ".join(f"{s.service} ({s.release_id})" for s in busy)
        return RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.REQUIREMENTS,
                           reason=f"{candidate.service} and {names} depend on each other and the latter is being "
                                  f"deployed to {environment}: waits until it ends")
    if not spec.requires:
        return RuleOutcome(rule=RULE, effect=Effect.PASS, reason="requires no other service")
    live = {entry.service: entry.version for entry in state.live if entry.environment == environment}
    missing = [why for r in spec.requires if (why := unmet(r, live.get(r.service), environment)) is not None]
    if missing:
        return RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.REQUIREMENTS, reason="; ".join(missing))
    met = ", ".join(f"{r.service} {live[r.service]} ({r.versions})" for r in spec.requires)
    return RuleOutcome(rule=RULE, effect=Effect.PASS, reason=f"requirements live in {environment}: {met}")
