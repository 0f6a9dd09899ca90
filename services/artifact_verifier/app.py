"""Wiring of the artifact-verifier: ReleaseRequested -> ArtifactVerified | ArtifactRejected, once per release_id."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.events import ReleaseRequested
from libs.consume import consume
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.artifact_verifier.handlers import CONSUMER, Handlers
from services.artifact_verifier.store import metadata

# Requests verified at once: a slow or hanging artifact holds one of these, not the whole queue.
CONCURRENT_VERIFICATIONS = 8

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata,)


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime("artifact-verifier", settings, METADATAS, exporter=exporter)
    handlers = Handlers(runtime)
    consume(
        runtime.broker,
        settings,
        subject=subjects.pattern(subjects.RELEASE_REQUESTED),
        durable=CONSUMER,
        model=ReleaseRequested,
        handle=handlers.on_release_requested,
        on_invalid=handlers.on_invalid_request,
        max_workers=CONCURRENT_VERIFICATIONS,
    )
    return build_app(runtime)
