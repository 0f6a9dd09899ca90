"""Building ReleaseRequested events for tests, the way a CI system would."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.envelope import new_event_id
from contracts.events import ReleaseRequested


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def release_for(artifact: Path, version: str = "1.0.0", *, service: str = "shop", environment: str = "prod",
                strategy: dict | None = None, digest: str | None = None, team: str = "payments",
                requested_by: str = "ci:test", instances: int | None = 1, **extra: object) -> ReleaseRequested:
    """`instances` overrides the environment's declaration (prod declares 2 per region) so tests run small pools;
    None takes the declaration."""
    return ReleaseRequested(
        event_id=new_event_id(),
        release_id=f"{service}-{version}-{datetime.now(UTC).timestamp():.6f}",
        service=service,
        environment=environment,
        actor="ci:test",
        source="ci",
        version=version,
        team=team,
        artifact={"uri": str(artifact), "digest": digest or digest_of(artifact)},
        commit={"sha": "abc1234", "committed_at": datetime.now(UTC) - timedelta(hours=1)},
        strategy=strategy or {"kind": "all-at-once", "analysis_interval_s": 1.0},
        requested_by=requested_by,
        instances=instances,
        **extra,
    )
