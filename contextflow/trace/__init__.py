"""Traces: the scheduler's events recorded as spans in SQLite, rollups, export and the viewer's data."""

from contextflow.trace.schema import TraceDatabase
from contextflow.trace.sink import TraceSink
from contextflow.trace.store import TraceNotFound, TraceStore, check_run_id

__all__ = ["TraceDatabase", "TraceNotFound", "TraceSink", "TraceStore", "check_run_id"]
