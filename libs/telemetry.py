"""OpenTelemetry tracing: one trace per release across services via W3C traceparent headers."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from libs.settings import Settings


def tracer_provider(service: str, settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": f"slipway-{service}"}))
    chosen = exporter or _exporter_from(settings)
    if chosen is not None:
        provider.add_span_processor(BatchSpanProcessor(chosen))
    return provider


def _exporter_from(settings: Settings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otel_endpoint) if settings.otel_endpoint else OTLPSpanExporter()
    return None


def current_trace_headers() -> dict[str, str]:
    """The traceparent of the handler running now, so an outbox row can continue its trace later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def consuming(provider: TracerProvider | None, name: str, subject: str, headers: Mapping[str, str] | None) -> Iterator[None]:
    """A consumer span for one message, continuing the trace its traceparent carries, current while it is handled
    (what FastStream's middleware did for its subscribers; libs.consume reads the bus without them)."""
    if provider is None:
        yield
        return
    tracer = provider.get_tracer("slipway.consume")
    parent = propagate.extract(dict(headers or {}))
    attributes = {"messaging.system": "nats", "messaging.destination.name": subject}
    with tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes):
        yield


def attach_trace(headers: dict[str, str]) -> object:
    return context.attach(propagate.extract(headers))


def detach_trace(token: object) -> None:
    context.detach(token)  # type: ignore[arg-type]


__all__ = ["tracer_provider", "current_trace_headers", "consuming", "attach_trace", "detach_trace", "trace"]
