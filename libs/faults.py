"""Crash points for recovery tests: a process that SIGKILLs itself at a chosen place, once.

`SLIPWAY_CRASH_AT` lists `stage:consumer:release_id` entries, comma-separated. When the named
consumer reaches the stage for that release, the process kills itself with SIGKILL, exactly as
an OOM kill or a power cut would: no clean-up, no flush, no ack. A marker file under the data
directory makes each entry fire once, so the restarted process carries on. Unset (the default),
every check is a string comparison against an empty tuple.

Stages: `handled` (the handler finished, the message is not acknowledged yet), `committed` (the
state change and its outbox rows are committed, the relay has not published them).
"""

import os
import signal
from dataclasses import dataclass
from pathlib import Path

STAGES = ("handled", "committed")


@dataclass(frozen=True)
class CrashPoint:
    stage: str
    consumer: str
    release_id: str

    @property
    def marker(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{self.stage}.{self.consumer}.{self.release_id}")


def parse_crash_points(spec: str) -> tuple[CrashPoint, ...]:
    points = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        stage, sep, rest = entry.partition(":")
        consumer, sep2, release_id = rest.partition(":")
        if not (sep and sep2 and consumer and release_id) or stage not in STAGES:
            raise ValueError(f"crash point {entry!r} is not stage:consumer:release_id with stage one of {STAGES}")
        points.append(CrashPoint(stage, consumer, release_id))
    return tuple(points)


def crash_if_planned(points: tuple[CrashPoint, ...], data_dir: Path, stage: str, consumer: str, release_id: str) -> None:
    for point in points:
        if (point.stage, point.consumer, point.release_id) != (stage, consumer, release_id):
            continue
        marker = data_dir / "crash-points" / point.marker
        if marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
