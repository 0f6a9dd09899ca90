"""One release is one trace across services, carried by traceparent headers through the outbox."""

from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.client import publish_event
from libs.settings import Settings
from services.artifact_verifier.app import build as build_verifier
from services.gatekeeper.app import build as build_gatekeeper
from tests.conftest import running
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


async def test_verifier_and_gatekeeper_spans_share_the_release_trace(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"traced")
    verifier_spans, gatekeeper_spans = InMemorySpanExporter(), InMemorySpanExporter()
    request = release_for(artifact)
    async with running(build_verifier(settings, exporter=verifier_spans)):
        async with running(build_gatekeeper(settings, exporter=gatekeeper_spans)):
            await publish_event(settings.nats_url, request)
            await watcher.wait_type("ReleaseApproved", release_id=request.release_id)
    # Stopping the apps shut their tracer providers down, which flushed the spans.
    verifier_traces = {span.context.trace_id for span in verifier_spans.get_finished_spans()}
    gatekeeper_traces = {span.context.trace_id for span in gatekeeper_spans.get_finished_spans()}
    assert verifier_traces and gatekeeper_traces
    assert gatekeeper_traces <= verifier_traces, "the gatekeeper started a trace of its own"
