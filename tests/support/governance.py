"""A gatekeeper runtime with the change-record and incident commands, as app.py will wire them, built in a test."""

from dataclasses import dataclass

from faststream import FastStream

from libs.runtime import Runtime, build_app, build_runtime
from libs.settings import Settings
from services.gatekeeper import change_commands, incident_commands
from services.gatekeeper.changes import ChangeRecords
from services.gatekeeper.store import metadata


@dataclass
class Governed:
    app: FastStream
    runtime: Runtime
    changes: ChangeRecords
    incidents: incident_commands.IncidentHandlers


def governed_gatekeeper(settings: Settings) -> Governed:
    runtime = build_runtime("gatekeeper", settings, [metadata])
    changes = change_commands.register(runtime)
    incidents = incident_commands.register(runtime)
    return Governed(build_app(runtime), runtime, changes, incidents)
