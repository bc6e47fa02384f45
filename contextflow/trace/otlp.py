"""Export a recorded run over OTLP/HTTP, so the same trace opens in Langfuse, Phoenix or Jaeger.

Spans keep their recorded timings and parentage (run -> node -> model call). OpenTelemetry
attributes must be scalars, so structured values (prompts, context items) travel as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from contextflow.core.errors import UserError

SERVICE_NAME = "contextflow"


def _attr(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _ns(seconds: float | None) -> int | None:
    return int(seconds * 1e9) if seconds is not None else None


def export_run(run: dict[str, Any], endpoint: str, *, exporter: Any = None, timeout_s: float = 10.0) -> int:
    """Send ``run`` (``TraceStore.run(...)``) to ``endpoint`` (e.g. http://127.0.0.1:4318);
    returns the number of spans sent. ``exporter`` replaces the OTLP exporter (tests).

    The spans are built first and sent in one request, so a refusing or absent collector is a
    clear error rather than a log line per span."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=timeout_s)
    ended: list[Any] = []

    class _Collect(SpanProcessor):
        def on_end(self, span: Any) -> None:
            ended.append(span)

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(_Collect())
    tracer = provider.get_tracer("contextflow.trace")
    try:
        root = tracer.start_span(
            f"run {run['pipeline']}", start_time=_ns(run["started"]),
            attributes={"contextflow.run_id": run["run_id"], "contextflow.status": run["status"] or "",
                        "gen_ai.usage.cost": run["cost_usd"], "gen_ai.usage.input_tokens": run["input_tokens"],
                        "gen_ai.usage.output_tokens": run["output_tokens"]},
        )
        sent = 1
        contexts = {run["run_id"]: trace.set_span_in_context(root)}
        pending = list(run["spans"])
        # Parents are recorded before their children start, but order by depth to be safe.
        for _ in range(4):
            later = []
            for span in pending:
                parent = contexts.get(span["parent_id"])
                if parent is None:
                    later.append(span)
                    continue
                attributes = {k: _attr(v) for k, v in span["attributes"].items() if v is not None}
                attributes.update({"contextflow.kind": span["kind"], "contextflow.node_id": span["node_id"] or ""})
                otel_span = tracer.start_span(span["name"] or span["kind"], context=parent,
                                              start_time=_ns(span["start"]), attributes=attributes)
                if span["status"] in ("error", "failed"):
                    otel_span.set_status(trace.Status(trace.StatusCode.ERROR))
                contexts[span["span_id"]] = trace.set_span_in_context(otel_span)
                otel_span.end(end_time=_ns(span["end"] or span["start"]))
                sent += 1
            pending = later
            if not pending:
                break
        root.end(end_time=_ns(run["finished"] or run["started"]))
        result = exporter.export(ended)
    finally:
        provider.shutdown()
        exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        raise UserError(
            f"the OTLP endpoint {endpoint} did not accept the {sent} spans of run '{run['run_id']}'",
            hint="check that a collector listens there (OTLP over HTTP, e.g. http://127.0.0.1:4318)",
        )
    return sent
