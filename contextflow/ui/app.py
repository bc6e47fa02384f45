"""The trace viewer's web app (FastAPI): the page, its static assets and a small JSON API.

It only reads the trace store (and, for approvals, posts through the library's own functions).
Run ids are validated before any lookup, so a request can never name a path or inject SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contextflow.core.state import StateDir
from contextflow.trace.store import TraceNotFound, TraceStore, check_run_id
from contextflow.core.catalog import UnknownModelError
from contextflow.ui.page import live_page
from contextflow.ui import approvals
from contextflow.ui import live

DEFAULT_HOST = "127.0.0.1"


def create_app(state: StateDir | None = None) -> Any:
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles


    state = state or StateDir.for_project()
    store = TraceStore(state.traces_db)
    app = FastAPI(title="contextflow traces", docs_url=None, redoc_url=None)
    app.state.contextflow_state = state
    static_dir = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static_dir), name="static")

    def _checked(run_id: str) -> str:
        try:
            return check_run_id(run_id)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return live_page()

    @app.get("/api/runs")
    def runs(status: str | None = None, limit: int = Query(200, ge=1, le=5000)) -> list[dict[str, Any]]:
        return store.list_runs(limit=limit, status=status)

    @app.get("/api/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        try:
            return store.run(_checked(run_id))
        except TraceNotFound:
            raise HTTPException(status_code=404, detail=f"no trace for run '{run_id}'") from None

    @app.get("/api/compare")
    def compare(a: str, b: str) -> list[dict[str, Any]]:
        try:
            return store.compare(_checked(a), _checked(b))
        except TraceNotFound as exc:
            raise HTTPException(status_code=404, detail=f"no trace for run {exc}") from None

    @app.get("/api/runs/{run_id}/whatif")
    def what_if(run_id: str, node: str, model: str) -> dict[str, Any]:
        try:
            return store.what_if(_checked(run_id), node, model)
        except UnknownModelError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        except TraceNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    _include_extensions(app, state)
    return app


def _include_extensions(app: Any, state: StateDir) -> None:
    """Routers other features add (approvals, the live feed) live in their own modules and plug in here."""
    app.include_router(approvals.create_router(state))
    app.include_router(live.create_router(state))  # the live feed of running runs (server-sent events)


def serve(state: StateDir | None = None, host: str = DEFAULT_HOST, port: int = 8321) -> None:
    import uvicorn

    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")
