"""Crash points for recovery tests: a process that SIGKILLs itself at a chosen place, once.

`SLIPWAY_CRASH_AT` lists `stage:place:key` entries, comma-separated. When the process reaches
that stage at that place for that key, it kills itself with SIGKILL, exactly as an OOM kill or a
power cut would: no clean-up, no flush, no ack. A marker file under the data directory makes each
entry fire once, so the restarted process carries on. Unset (the default), every check is a
comparison against an empty tuple.

Stages:
- `handled:<consumer>:<release_id>`: the handler finished, the message is not acknowledged yet;
- `committed:<consumer>:<release_id>`: the state change and its outbox rows are committed, the
  relay has not published them;
- `spawned:local-driver:<process name>`: the deployer's local driver started the process (e.g.
  `app.shop.prod.2_0_0`) and nothing has recorded it yet.
"""

import os
import signal
from dataclasses import dataclass
from pathlib import Path

STAGES = ("handled", "committed", "spawned")


@dataclass(frozen=True)
class CrashPoint:
    stage: str
    place: str  # the consumer, or the component for `spawned`
    key: str  # the release id, or the process name for `spawned`

    @property
    def marker(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{self.stage}.{self.place}.{self.key}")


def parse_crash_points(spec: str) -> tuple[CrashPoint, ...]:
    points = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        stage, sep, rest = entry.partition(":")
        place, sep2, key = rest.partition(":")
        if not (sep and sep2 and place and key) or stage not in STAGES:
            raise ValueError(f"crash point {entry!r} is not stage:place:key with stage one of {STAGES}")
        points.append(CrashPoint(stage, place, key))
    return tuple(points)


def crash_if_planned(points: tuple[CrashPoint, ...], data_dir: Path, stage: str, place: str, key: str) -> None:
    for point in points:
        if (point.stage, point.place, point.key) != (stage, place, key):
            continue
        marker = data_dir / "crash-points" / point.marker
        if marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
