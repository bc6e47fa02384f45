"""The trace viewer's web app (FastAPI): the page, its static assets and a small JSON API.

It only reads the trace store (and, for approvals, posts through the library's own functions).
Run ids are validated before any lookup, so a request can never name a path or inject SQL. Every
request, the page and static files included, first passes :class:`~contextflow.ui.guard.ViewerGuard`
(exact Host and Origin, the access token when remote access is on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contextflow.core.state import StateDir
from contextflow.trace.store import TraceNotFound, TraceStore, check_run_id
from contextflow.core.catalog import UnknownModelError
from contextflow.core.errors import UserError
from contextflow.ui.guard import ViewerAccess, ViewerGuard, is_loopback, new_secret
from contextflow.ui.page import live_page
from contextflow.ui import approvals
from contextflow.ui import live

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321


def create_app(state: StateDir | None = None, *, access: ViewerAccess | None = None) -> Any:
    """The viewer's app; ``access`` says whom it answers (default: this machine, any port)."""
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles


    state = state or StateDir.for_project()
    access = access or ViewerAccess()
    store = TraceStore(state.traces_db)
    app = FastAPI(title="contextflow traces", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ViewerGuard, access=access)
    app.state.contextflow_access = access
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
        return live_page(csrf=access.csrf)

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

    _include_extensions(app, state, access)
    return app


def _include_extensions(app: Any, state: StateDir, access: ViewerAccess) -> None:
    """Routers other features add (approvals) live in their own modules and plug in here."""
    app.include_router(approvals.create_router(state, csrf=access.csrf))
    app.include_router(live.create_router(state))  # the live feed of running runs (server-sent events)


def viewer_access(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, allow_remote: bool = False) -> ViewerAccess:
    """The access rules for a viewer bound to ``host:port``; a non-loopback address needs
    ``allow_remote``, and then a fresh access token that every request must carry."""
    if not is_loopback(host) and not allow_remote:
        raise UserError(
            f"--host {host} would let other machines read every trace (prompts, responses, context)",
            hint="add --allow-remote to serve it anyway, behind an access token printed at start; "
                 "or keep the default --host 127.0.0.1 and use an SSH tunnel",
        )
    return ViewerAccess(port=port, bind_host=host, allow_remote=allow_remote,
                        token=new_secret() if allow_remote else None)


def serve(state: StateDir | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          access: ViewerAccess | None = None) -> None:
    import uvicorn

    access = access or viewer_access(host, port)
    uvicorn.run(create_app(state, access=access), host=host, port=port, log_level="warning")
