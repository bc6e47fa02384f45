"""OTLP/HTTP export to a collector the test runs on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import socket
import time

import pytest

from contextflow.core.errors import UserError
from contextflow.trace import TraceStore
from contextflow.trace.otlp import export_run

from synthetic_trace import RUN


def test_export_reaches_an_in_process_collector(recorded: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.append(request)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run = TraceStore(recorded).run(RUN)
        sent = export_run(run, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    spans = [s for r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sent == len(spans) == 1 + 4 + 4  # run, nodes, model calls
    assert len(received) == 1  # one request for the whole run, not one per span
    by_name = {s.name: s for s in spans}
    call = next(s for s in spans if s.name == "chat sim/x")
    attrs = {a.key: a.value for a in call.attributes}
    assert attrs["gen_ai.request.model"].string_value == "sim/x"
    assert attrs["gen_ai.usage.input_tokens"].int_value in (10, 20)
    root = next(s for s in spans if s.name == "run demo")
    node_a = by_name["a"]
    assert node_a.parent_span_id == root.span_id and call.trace_id == root.trace_id


def test_export_to_an_absent_collector_is_a_clear_error(recorded: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = TraceStore(recorded).run(RUN)
    start = time.monotonic()
    with pytest.raises(UserError, match="did not accept the 9 spans"):
        export_run(run, f"http://127.0.0.1:{port}", timeout_s=1.0)
    assert time.monotonic() - start < 5  # retries stop at the timeout
