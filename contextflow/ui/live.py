"""The viewer's live feed of a running run, as server-sent events.

``GET /api/runs/{run_id}/events`` (``text/event-stream``):

``event: ready``  once, with the run's status, when the feed has read what is there now;
``event: span``   a span that appeared or changed since (as ``/api/runs/{run_id}`` lists spans);
``event: run``    the run's status changed (``{"run_id", "status", "finished", "error"}``);
``event: end``    the run settled (finished, or waiting for a decision) and nothing more changed.

The run writes its trace from another process, so the feed polls the trace database
(:class:`contextflow.trace.tail.TraceTail`) every ``poll_s`` seconds, bounded to
[``MIN_POLL_S``, ``MAX_POLL_S``], and sends a comment line every ``HEARTBEAT_S`` seconds so
proxies and the browser keep the connection open. Every payload is JSON; the page parses it and
shows it through ``textContent`` only.

The viewer binds 127.0.0.1, but another site's page can reach it too (DNS rebinding makes it
same-origin), and a trace holds prompts: the feed answers only requests that name this machine
in ``Host`` and, when they carry one, come from a page of this machine (``Origin``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations here

from contextflow.core.state import StateDir
from contextflow.trace.store import TraceNotFound, check_run_id
from contextflow.trace.tail import SETTLED, TraceTail

POLL_S = 0.25
MIN_POLL_S = 0.05
MAX_POLL_S = 2.0
HEARTBEAT_S = 15.0
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _host_of(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


def local_request(request: Request) -> str | None:
    """Why ``request`` does not come from this machine's viewer page, or None when it does."""
    host = _host_of(request.headers.get("host") or "")
    if host not in _LOCAL_HOSTS:
        return f"the live feed is only served on 127.0.0.1, not '{host}'"
    origin = request.headers.get("origin")
    if origin is not None and (urlsplit(origin).hostname or "").lower() not in _LOCAL_HOSTS:
        return f"the live feed is not served to pages of '{origin}'"
    return None


def message(event: str, data: Any) -> str:
    """One server-sent event; JSON keeps the payload on one ``data:`` line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def feed(tail: TraceTail, poll_s: float, disconnected: Any = None) -> AsyncIterator[str]:
    """The events of one run's trace until it settles (``disconnected``: an async callable that
    says the client left)."""
    interval = min(max(poll_s, MIN_POLL_S), MAX_POLL_S)
    try:
        await asyncio.to_thread(tail.poll)  # what is there now: the page has just fetched it
        yield message("ready", {"run_id": tail.run_id, "status": tail.status})
        beat = time.monotonic()
        while True:
            if disconnected is not None and await disconnected():
                return
            changes = await asyncio.to_thread(tail.poll)
            for span in changes.spans:
                yield message("span", span)
            if changes.run is not None:
                yield message("run", changes.run)
            if not changes and tail.status in SETTLED:
                yield message("end", {"run_id": tail.run_id, "status": tail.status})
                return
            if time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(interval)
    finally:
        tail.close()


def create_router(state: StateDir, poll_s: float = POLL_S) -> Any:
    from fastapi import APIRouter, HTTPException
    from fastapi.responses import StreamingResponse

    router = APIRouter()

    @router.get("/api/runs/{run_id}/events")
    def events(request: Request, run_id: str) -> Any:
        refused = local_request(request)
        if refused is not None:
            raise HTTPException(status_code=403, detail=refused)
        try:
            tail = TraceTail(state.traces_db, check_run_id(run_id))
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        except TraceNotFound:
            raise HTTPException(status_code=404, detail=f"no trace for run '{run_id}'") from None
        return StreamingResponse(
            feed(tail, poll_s, request.is_disconnected), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
