"""The process's OpenTelemetry tracer providers: one per tracing configuration, never global.

``trace.set_tracer_provider`` is one-shot, and the app factory runs twice under ``todo-service run``
and many times in the tests: providers are kept here by configuration and handed to everything
explicitly. Each exports through a ``BatchSpanProcessor`` (OTLP over HTTP/protobuf or gRPC) and is
sampled as ``OTEL_TRACES_SAMPLER`` says. redis-py's instrumentation patches the library for the
whole process: done once per provider, and imported only then (it imports redis-py and its
OpenTelemetry metrics: about 10 MB of a worker that keeps its limits in memory).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.util.re import parse_env_headers

from todo_service import __version__
from todo_service.core.settings import Settings, SettingsError

__all__ = ("instrument_redis", "shutdown_tracing", "tracer_provider_for")

_OTEL_FIELDS = tuple(name for name in Settings.__struct_fields__ if name.startswith("otel_"))


@dataclass
class _Process:
    """What exists once per process: providers by configuration, and the provider Redis reports to."""

    providers: dict[tuple[Any, ...], TracerProvider] = field(default_factory=dict)
    redis_provider: TracerProvider | None = None


_process = _Process()


def tracer_provider_for(settings: Settings) -> TracerProvider | None:
    """The process's provider for this tracing configuration (made on first use); None without an endpoint.

    Raises:
        SettingsError: ``OTEL_EXPORTER_OTLP_ENDPOINT`` is not an http(s) URL.
    """
    if not settings.otel_exporter_otlp_endpoint:
        return None
    key = _key(settings)
    if (provider := _process.providers.get(key)) is None:
        # shutdown_on_exit (the default): the SDK shuts it down at exit, flushing what is left, once.
        provider = TracerProvider(resource=_resource(settings), sampler=_sampler(settings))
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
        _process.providers[key] = provider
    return provider


def shutdown_tracing(settings: Settings | None = None) -> None:
    """Flush and shut down the provider of ``settings``' tracing configuration (all of them when None).

    For tests and embedding; a server needs none of it (process exit does the same). The Redis
    instrumentation goes with its provider; a later app with that configuration gets a new one.
    """
    keys = [_key(settings)] if settings else list(_process.providers)
    for key in keys:
        if (provider := _process.providers.pop(key, None)) is None:
            continue
        if provider is _process.redis_provider:
            from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415  (see the module's doc)

            RedisInstrumentor().uninstrument()
            _process.redis_provider = None
        provider.shutdown()


def instrument_redis(provider: TracerProvider) -> None:
    """redis-py is patched process-wide: once, or again when another configuration's app comes (tests)."""
    if _process.redis_provider is provider:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415  (see the module's doc)

    instrumentor = RedisInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    _process.redis_provider = provider


def _key(settings: Settings) -> tuple[Any, ...]:
    return tuple(getattr(settings, name) for name in _OTEL_FIELDS)


def _sampler(settings: Settings) -> Sampler:
    ratio = settings.otel_traces_sampler_arg
    roots: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(1.0 if ratio is None else ratio),
    }
    name = settings.otel_traces_sampler
    root = roots[name.removeprefix("parentbased_")]
    return ParentBased(root) if name.startswith("parentbased_") else root


def _resource(settings: Settings) -> Resource:
    """``OTEL_RESOURCE_ATTRIBUTES`` (percent-decoded), ``service.name`` from ``OTEL_SERVICE_NAME``, our version."""
    attributes = {"telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry"}
    attributes["telemetry.sdk.version"] = sdk_version
    for pair in settings.otel_resource_attributes.split(","):
        if pair.strip():  # Settings checked that every pair has an "="
            key, _, value = pair.partition("=")
            attributes[key.strip()] = urllib.parse.unquote(value.strip())
    attributes["service.name"] = settings.otel_service_name
    attributes.setdefault("service.version", __version__)
    return Resource(attributes)


def _exporter(settings: Settings) -> SpanExporter:
    endpoint = (settings.otel_exporter_otlp_endpoint or "").rstrip("/")
    url = urllib.parse.urlsplit(endpoint)
    if url.scheme not in {"http", "https"} or not url.hostname:
        msg = "invalid setting OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL"
        raise SettingsError(msg)
    headers = dict(parse_env_headers(settings.otel_exporter_otlp_headers, liberal=True))
    # Imported when chosen: each pulls in its transport (grpcio is the heavy one).
    if settings.otel_exporter_otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(endpoint=endpoint, insecure=url.scheme == "http", headers=headers)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=headers)
