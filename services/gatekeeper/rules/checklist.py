"""Readiness checklists: what a release answered of its class's checklist, and which items, left undone,
most often came before a failed deployment or a blocked release, as suggested refinements of the checklist."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from contracts.release import ReleaseClass
from services.gatekeeper.policy import Policy
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome

RULE = "checklist"
DONE = ("done", "not-applicable")  # answers that count as having looked
BAD = ("failed", "blocked")  # outcomes a checklist is meant to prevent
MIN_RELEASES = 5  # fewer ended releases than this with an item left undone say nothing yet


def checklist_outcomes(candidate: Candidate, policy: Policy) -> list[RuleOutcome]:
    items = policy.classes.of(candidate.release_class).checklist
    if not items:
        return []
    answers = candidate.spec.checklist
    name = candidate.release_class.value
    missing = [i for i in items if i.required and answers.get(i.item) not in DONE]
    if missing:
        return [RuleOutcome(rule=RULE, effect=Effect.REFUSE, reason=f"a {name} release must have done "
                            + "; ".join(f"{i.item} ({_answer(answers.get(i.item))})" for i in missing))]
    undone = [i for i in items if answers.get(i.item) not in DONE]
    done = len(items) - len(undone)
    text = f"{done} of {len(items)} {name} checklist item(s) done or not applicable"
    if undone:
        text += "; " + "; ".join(f"{i.item}: {_answer(answers.get(i.item))}" for i in undone)
    return [RuleOutcome(rule=RULE, effect=Effect.NOTE if undone else Effect.PASS, reason=text)]


def _answer(answer: str | None) -> str:
    return answer or "not answered"


@dataclass(frozen=True)
class Ended:
    """One release that ended, its class, its checklist answers, and how it ended (succeeded, failed, blocked)."""

    release_class: str
    answers: dict[str, str]
    outcome: str


@dataclass(frozen=True)
class ItemRecord:
    release_class: str
    item: str
    required: bool
    undone: int  # ended releases that had not done it
    bad_when_undone: int
    done: int
    bad_when_done: int

    @property
    def undone_rate(self) -> float | None:
        return self.bad_when_undone / self.undone if self.undone else None

    @property
    def done_rate(self) -> float | None:
        return self.bad_when_done / self.done if self.done else None

    @property
    def lift(self) -> float:
        """How much likelier a bad outcome was with the item undone than done (0 when it cannot be told)."""
        if self.undone_rate is None or self.done_rate is None:
            return 0.0
        return self.undone_rate - self.done_rate


def item_records(ended: Iterable[Ended], policy: Policy) -> list[ItemRecord]:
    """Per class and checklist item: how often releases that had or had not done it went wrong; worst first."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    classes = {c.value for c in ReleaseClass}
    for release in ended:
        if release.release_class not in classes:  # a class this version does not know any more
            continue
        for entry in policy.classes.of(release.release_class).checklist:
            slot = counts[(release.release_class, entry.item)]
            done = release.answers.get(entry.item) in DONE
            slot[2 if done else 0] += 1
            slot[3 if done else 1] += release.outcome in BAD
    required = {(name, i.item): i.required for name in classes for i in policy.classes.of(name).checklist}
    records = [ItemRecord(cls, item, required.get((cls, item), False), *slot) for (cls, item), slot in counts.items()]
    return sorted(records, key=lambda r: (-r.bad_when_undone, -r.lift, r.release_class, r.item))


def refinements(records: Iterable[ItemRecord], min_releases: int = MIN_RELEASES) -> list[str]:
    """Suggested changes to the checklists, from what the ended releases show; the strongest first."""
    suggestions = []
    for r in sorted(records, key=lambda r: -r.lift):
        if r.undone < min_releases and r.done < min_releases:
            continue
        if not r.required and r.undone >= min_releases and r.lift > 0 and r.bad_when_undone:
            suggestions.append(
                f"{r.release_class}: make {r.item} required: {r.bad_when_undone} of {r.undone} releases without it "
                f"failed or were blocked, against {r.bad_when_done} of {r.done} with it")
        elif r.done >= min_releases and r.undone >= min_releases and r.lift <= 0 and r.bad_when_done:
            suggestions.append(
                f"{r.release_class}: {r.item} did not tell good releases from bad ones ({r.bad_when_done} of {r.done} "
                f"went wrong with it, {r.bad_when_undone} of {r.undone} without): sharpen or replace the question")
    return suggestions
