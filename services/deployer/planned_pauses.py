"""Canary steps that wait for a person (`steps: [{weight: 25, pause: true}, ...]`).

A step that asks for a person is judged like any other: a failing verdict still rolls the release
back. Once a verdict accepts it, the deployer pauses the release itself, exactly as a person's
`slipway pause` would have (steering.PersonPause, with the accepted verdict held), and says so with a
ReleasePaused whose actor is the deployer. From there people steer it as any paused release:
`slipway resume` goes on to the next step (or completes after the last), `slipway promote` skips the
rest, `slipway abort` rolls it back. The pause is recorded in the verdict's own transaction, so a
restarted deployer still waits.
"""

from contracts.envelope import utcnow
from contracts.events import ReleasePaused, StepVerdict
from libs.store import Transaction
from services.deployer import steering_store, store
from services.deployer.domain import Hold
from services.deployer.steering import PersonPause
from services.deployer.strategies.plan import Action, AwaitVerdict

SOURCE = "deployer"


def waits_for_person(plan: list[Action], step_index: int) -> bool:
    """Whether the plan's step `step_index` asks for a person once it is accepted."""
    return any(isinstance(a, AwaitVerdict) and a.step_index == step_index and a.person for a in plan)


def reason_for(verdict: StepVerdict) -> str:
    return (f"step {verdict.step_index + 1} passed and its strategy waits here for a person: `slipway resume "
            f"{verdict.release_id}` goes on, `slipway promote` skips the rest, `slipway abort` rolls back")


async def pause_for_person(tx: Transaction, verdict: StepVerdict) -> None:
    reason = reason_for(verdict)
    hold = Hold(verdict.release_id, verdict.step_index, [reason], verdict.occurred_at, verdict.event_id)
    await steering_store.save_person_pause(tx.session, PersonPause(verdict.release_id, SOURCE, reason, utcnow()))
    await store.save_hold(tx.session, hold)
    await steering_store.hold_for_person(tx.session, verdict.release_id, hold)
    # Its actor is the deployer, not the person who requested the release: nobody asked for this pause just now.
    await tx.emit(ReleasePaused.caused_by(verdict, SOURCE, actor=SOURCE, step_index=verdict.step_index, reason=reason))
