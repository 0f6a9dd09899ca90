"""Follow one release on the bus until it ends: the CLI's `release request --wait` and the demo use this.

Subscribe first, then publish, so not even the fastest answer is missed: pass `publish` to
`follow_release` (or use `ReleaseFollower` as a context manager and publish inside it).
"""

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from contracts.subjects import ALERTS_WILDCARD, EVENTS_WILDCARD
from libs.client import connected

# terminal event type -> did the release succeed?
TERMINAL: dict[str, bool] = {
    "DeploymentSucceeded": True,
    "RollbackCompleted": False,
    "ArtifactRejected": False,
    "ReleaseBlocked": False,
    "ReleaseRejected": False,
    "ReleaseExpired": False,
    "ReleaseRequestRejected": False,
    "DeploymentFailed": False,
}

STATUS_POLL_S = 2.0  # while following a duplicate, how often to ask whether the release is over already
OnEvent = Callable[[dict[str, Any]], Awaitable[None] | None]


class FollowTimeout(TimeoutError):
    """No terminal event arrived in time; `seen` holds what did arrive."""

    def __init__(self, release_id: str | None, timeout: float, seen: list[dict[str, Any]]) -> None:
        self.seen = seen
        last = (seen[-1].get("type") or "?") if seen else "nothing"
        super().__init__(f"release {release_id or '?'} did not finish within {timeout:g}s (last event: {last})")


ANSWERS_TO_A_REQUEST = ("ReleaseRequestRejected", "ReleaseRequestDuplicated")
# A release's state in the collector's status -> the terminal event it stands for.
TERMINAL_STATES = {
    "succeeded": "DeploymentSucceeded", "rolled back": "RollbackCompleted", "failed": "DeploymentFailed",
    "blocked": "ReleaseBlocked", "rejected": "ArtifactRejected", "expired": "ReleaseExpired",
}


def belongs(body: dict[str, Any], release_id: str | None, request_event_id: str | None) -> bool:
    """Is this event about the release we follow?

    A rejection or a duplicate answers one request: one caused by another request that reused the
    release id (a retry, or another specification) is not about ours.
    """
    if body.get("type") in ANSWERS_TO_A_REQUEST and request_event_id:
        return body.get("causation_id") == request_event_id
    # A refused command about the release names it in `about`, and so in its correlation id.
    if release_id and release_id in (body.get("release_id"), body.get("correlation_id")):
        return True
    if body.get("type") != "ReleaseRequestRejected":
        return False
    # A payload with neither id can only be answered by an anonymous rejection.
    return not release_id and not request_event_id and body.get("causation_id") is None


def succeeded(terminal: dict[str, Any]) -> bool:
    return TERMINAL.get(str(terminal.get("type")), False)


class ReleaseFollower:
    """`async with ReleaseFollower(...) as f: <publish>; terminal = await f.wait(timeout)`."""

    def __init__(self, nats_url: str, release_id: str | None, request_event_id: str | None,
                 on_event: OnEvent | None = None) -> None:
        self.nats_url = nats_url
        self.release_id = release_id
        self.request_event_id = request_event_id
        self.on_event = on_event
        self.seen: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> "ReleaseFollower":
        nc = await self._stack.enter_async_context(connected(self.nats_url))
        # Events and alerts: what every reader's identity may subscribe to (not commands, not dead letters).
        await nc.subscribe(EVENTS_WILDCARD, cb=self._on_message)
        await nc.subscribe(ALERTS_WILDCARD, cb=self._on_message)
        await nc.flush()  # the server knows about the subscription before anyone publishes
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _on_message(self, msg: Any) -> None:
        if msg.subject.startswith(("slipway.cmd.", "slipway.dlq.")):
            return
        try:
            body = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(body, dict) and belongs(body, self.release_id, self.request_event_id):
            self._queue.put_nowait(body)

    async def wait(self, timeout: float) -> dict[str, Any]:
        """Hand every event of the release to `on_event` until a terminal one, which is returned.

        When our request turns out to be a duplicate (a retry of a release already requested), the
        release goes on as the first request started it: a rejected original ends here, otherwise
        the release is followed to its end, which the collector's status reports if it is already over.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        duplicate = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise FollowTimeout(self.release_id, timeout, self.seen)
            try:
                body = await asyncio.wait_for(self._queue.get(), min(remaining, STATUS_POLL_S) if duplicate else remaining)
            except TimeoutError:
                if duplicate and (ended := await self._ended_already()) is not None:
                    return ended
                continue
            self.seen.append(body)
            if self.on_event is not None:
                result = self.on_event(body)
                if inspect.isawaitable(result):
                    await result
            if body.get("type") in TERMINAL:
                return body
            if body.get("type") == "ReleaseRequestDuplicated":
                if body.get("original_outcome") == "ArtifactRejected":
                    return {**body, "type": "ArtifactRejected", "reason": "the first request of this release was rejected"}
                duplicate = True
                if (ended := await self._ended_already()) is not None:
                    return ended

    async def _ended_already(self) -> dict[str, Any] | None:
        """The end of a release that finished before we subscribed, from the collector's status."""
        from contracts.commands import QueryReleases
        from contracts.subjects import CMD_RELEASE_STATUS
        from libs.client import SlipwayUnavailable, send_command

        try:
            reply = await send_command(self.nats_url, CMD_RELEASE_STATUS, QueryReleases(release_id=self.release_id))
        except SlipwayUnavailable:
            return None
        if not reply.ok or not reply.data.get("releases"):
            return None
        status = reply.data["releases"][0]
        kind = TERMINAL_STATES.get(status.get("state", ""))
        if kind is None:
            return None
        return {"type": kind, "release_id": self.release_id, "service": status.get("service"),
                "environment": status.get("environment"), "version": status.get("version"),
                "reason": status.get("reason"), "root_cause": status.get("reason"), "reasons": [status.get("reason")]}


async def follow_release(
    nats_url: str,
    release_id: str | None,
    request_event_id: str | None,
    on_event: OnEvent | None = None,
    *,
    publish: Callable[[], Awaitable[Any]] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """The terminal event of a release (see TERMINAL); raises FollowTimeout when none arrives in time.

    `publish`, if given, is awaited after the subscription is in place (publish the request there).
    """
    async with ReleaseFollower(nats_url, release_id, request_event_id, on_event) as follower:
        if publish is not None:
            await publish()
        return await follower.wait(timeout)
