"""Optional OpenTelemetry tracing of HTTP requests (FOVEA_OTEL_ENABLED), off by default.

Why optional and imported late: most deployments have no trace collector, and the OpenTelemetry SDK
and instrumentation cost memory and a little time per request. They are the `otel` extra
(`pip install 'fovea[otel]'`) and are imported only when tracing is on.

Where the spans go follows OpenTelemetry's own variables, as every OpenTelemetry SDK reads them:
OTEL_TRACES_EXPORTER (`otlp`, the default; `console`, spans as JSON on stdout; `none`; several
separated by commas), OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP over
HTTP), OTEL_SERVICE_NAME (default `fovea`) and OTEL_RESOURCE_ATTRIBUTES. Each server process traces
on its own (`fovea serve --workers N` starts one tracer per worker).
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

EXPORTERS_VARIABLE = "OTEL_TRACES_EXPORTER"
SERVICE_NAME = "fovea"
# Scrapes and probes arrive every few seconds and say nothing about a request's path through Fovea.
UNTRACED_PATHS = "/metrics$,/health$,/livez$,/readyz$"  # regular expressions searched in the URL
_REQUIRED_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation.fastapi")


class TracingUnavailable(RuntimeError):
    """FOVEA_OTEL_ENABLED is set, but what it needs is not installed or not known."""


def missing_tracing_packages() -> str | None:
    """Why tracing cannot start here (the `otel` extra is not installed), or None."""
    for module in _REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its parent package is missing
            found = False
        if not found:
            return (
                f"FOVEA_OTEL_ENABLED=true needs the OpenTelemetry packages ({module} is missing): "
                "install them with `pip install 'fovea[otel]'`"
            )
    return None


def exporter_names(environ: dict[str, str] | None = None) -> list[str]:
    value = (environ if environ is not None else os.environ).get(EXPORTERS_VARIABLE, "otlp")
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def trace_requests(app: FastAPI) -> Any:
    """Instrument `app` so each request becomes a server span; returns the tracer provider (its
    `shutdown` flushes what is queued)."""
    problem = missing_tracing_packages()
    if problem:
        raise TracingUnavailable(problem)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource({"service.name": SERVICE_NAME}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    for name in exporter_names():
        if name != "none":
            provider.add_span_processor(_span_processor(name))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=UNTRACED_PATHS)
    return provider


def _span_processor(exporter: str) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    if exporter == "console":  # for a person watching: each span as it ends
        return SimpleSpanProcessor(ConsoleSpanExporter())
    if exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ModuleNotFoundError as exc:
            raise TracingUnavailable(
                "OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http: "
                "install it with `pip install 'fovea[otel]'`"
            ) from exc
        return BatchSpanProcessor(OTLPSpanExporter())
    raise TracingUnavailable(
        f"{EXPORTERS_VARIABLE}={exporter!r} is not supported (use otlp, console or none)"
    )
