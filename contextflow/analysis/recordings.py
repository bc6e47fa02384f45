"""Recordings for the replay provider taken from a traced run."""

from __future__ import annotations

from pathlib import Path

from contextflow.core.errors import UserError
from contextflow.core.rungs import parse_rung
from contextflow.providers.replay import prompt_of, record
from contextflow.trace import TraceStore
from contextflow.trace.sink import drain


def load_trace(traces_db: str | Path, run_id: str) -> int:
    """Load every successful model call of a traced run (``StateDir.traces_db``) as recordings.

    The trace keeps each attempt's prompt, response and token counts, so the same pipeline can
    then run offline with its models renamed ``replay/<model>``.
    """
    drain(traces_db)  # a run of this process may still be writing its spans
    spans = TraceStore(Path(traces_db)).spans(run_id)
    if not spans:
        raise UserError(f"no traced run '{run_id}' in {traces_db}", hint="run the pipeline with tracing on first")
    added = 0
    for span in spans:
        attrs = span.get("attributes") or {}
        prompt, response = attrs.get("contextflow.prompt"), attrs.get("contextflow.response")
        if span.get("kind") != "attempt" or not span.get("model") or response is None or not prompt:
            continue
        text = prompt_of(prompt) if isinstance(prompt, list) else str(prompt)
        model = parse_rung(str(span["model"])).model  # an effort rung replays as its model
        record(model, text, str(response), prompt_tokens=span.get("input_tokens"),
               completion_tokens=span.get("output_tokens"))
        added += 1
    return added
