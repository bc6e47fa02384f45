"""The viewer's approval endpoints: decide on a waiting node from the browser, then resume the run.

``GET  /api/runs/{run}/pending``                       what waits, with each proposal
``POST /api/runs/{run}/nodes/{node}/approve``          ``{"comment": ...}``
``POST /api/runs/{run}/nodes/{node}/edit``             ``{"value": ..., "comment": ...}``
``POST /api/runs/{run}/nodes/{node}/reject``           ``{"abort": false, "comment": ...}``

Decisions go through the library's own ``approve``/``edit``/``reject`` (the CLI's functions), so
they are stored and traced the same way. After a decision the run resumes in a background thread
of the viewer's process (not after an abort); the page polls the run until it settles.

The viewer binds 127.0.0.1, but any web page the user opens can send requests there, and an
approved ``run_command`` runs a command. So a decision passes four locks:

1. the viewer's gate (:mod:`contextflow.ui.guard`): the exact Host and Origin of this viewer, the
   access token when remote access is on;
2. the ``X-Contextflow-Action`` header and a JSON body: a cross-site form or ``fetch`` cannot add a
   custom header without a CORS preflight, which this app never grants;
3. the ``X-Contextflow-CSRF`` header holding a random value made when the app starts and written
   only into the served page. Another site cannot read the page (the same-origin policy; DNS
   rebinding is stopped by the Host check), so it cannot learn the value, and a client elsewhere
   cannot fetch the page: on loopback it cannot connect, and with remote access it needs the
   token first. Knowing this viewer's address and headers is therefore not enough to decide;
   one must have been able to load its page. (A process of this machine that can load the page
   could equally run ``contextflow approve``: that is the trust boundary of a loopback viewer.)
4. a run id and node id that are validated before any lookup.
"""

from __future__ import annotations

import hmac
import re
import threading
from pathlib import Path
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the endpoints' annotations here

from contextflow.dags.spec import NODE_ID_PATTERN
from contextflow.core.errors import UserError
from contextflow.core.state import STATE_DIR_NAME, StateDir
from contextflow.trace.store import check_run_id
from contextflow.api import resume
from contextflow import api
from contextflow.runtime import approvals

ACTION_HEADER = "X-Contextflow-Action"
CSRF_HEADER = "X-Contextflow-CSRF"
_NODE_ID = re.compile(NODE_ID_PATTERN)


class Resumer:
    """Resumes runs in background threads, one at a time per run, and remembers how each ended."""

    def __init__(self, project: Path | None) -> None:
        self.project = project
        self._lock = threading.Lock()
        self._active: dict[str, threading.Thread] = {}
        self._again: set[str] = set()
        self.outcomes: dict[str, dict[str, Any]] = {}

    def start(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._active:
                self._again.add(run_id)  # decided while it runs: go once more when it ends
                return
            thread = threading.Thread(target=self._work, args=(run_id,), name=f"resume-{run_id}", daemon=True)
            self._active[run_id] = thread
            self.outcomes[run_id] = {"state": "running"}
        thread.start()

    def _work(self, run_id: str) -> None:
        while True:
            try:
                result = resume(run_id, project=self.project)
                outcome: dict[str, Any] = {"state": "done", "status": result.status, "error": result.error}
            except UserError as exc:
                outcome = {"state": "error", "error": str(exc)}
            except Exception as exc:  # a broken run must not kill the viewer; the page shows why
                outcome = {"state": "error", "error": f"{type(exc).__name__}: {exc}"}
            with self._lock:
                self.outcomes[run_id] = outcome
                if run_id in self._again:
                    self._again.discard(run_id)
                    continue
                self._active.pop(run_id, None)
                return

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self._active.values()):
            thread.join(timeout)


_RESUMERS: dict[Path, Resumer] = {}


def resumer_of(state: StateDir) -> Resumer | None:
    """The resumer of the viewer serving ``state`` (to wait for its background resumes)."""
    return _RESUMERS.get(state.root)


def project_of(state: StateDir) -> Path | None:
    """The project folder whose state folder is ``state`` (the library's functions take a project)."""
    if StateDir.for_project(None).root == state.root:
        return None
    if state.root.name == STATE_DIR_NAME and StateDir.for_project(state.root.parent).root == state.root:
        return state.root.parent
    raise UserError(
        f"the viewer's state folder {state.root} is not a project's {STATE_DIR_NAME} folder",
        hint="start the viewer from the project folder, or set CONTEXTFLOW_HOME to that state folder",
    )


def create_router(state: StateDir, *, csrf: str) -> Any:
    """The decision endpoints; ``csrf`` is the value the served page carries (see the module doc)."""
    from fastapi import APIRouter, Body, Header, HTTPException


    router = APIRouter()
    resumer = _RESUMERS[state.root] = Resumer(project_of(state))

    def checked(run_id: str, node_id: str | None = None) -> str:
        try:
            check_run_id(run_id)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        if node_id is not None and not _NODE_ID.fullmatch(node_id):
            raise HTTPException(status_code=400, detail=f"'{node_id}' is not a node id")
        return run_id

    def guarded(request: Request, header: str | None) -> None:
        # The Host, Origin and token checks ran in the viewer's gate before this endpoint.
        if header != "1":
            raise HTTPException(status_code=403, detail=f"decisions need the {ACTION_HEADER}: 1 header")
        offered = request.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(offered.encode(), csrf.encode()):
            raise HTTPException(status_code=403, detail=(
                f"decisions need the {CSRF_HEADER} value of the viewer's own page; "
                "decide from the page, or with 'contextflow approve'"))

    def decided(run_id: str, call: Any, resume: bool = True) -> dict[str, Any]:
        try:
            decision = call()
        except UserError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        if resume:
            resumer.start(run_id)
        return {"decision": decision if isinstance(decision, int) else getattr(decision, "id", None),
                "resuming": resume}

    @router.get("/api/runs/{run_id}/pending")
    def pending(run_id: str) -> dict[str, Any]:
        checked(run_id)
        try:
            waiting = approvals.pending(run_id, project=resumer.project)
        except UserError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        # The proposal in its JSON form; the edit box starts from what an edit replaces.
        nodes = {nid: {"proposal": held.to_dict(), "editable": approvals.editable(held)}
                 for nid, held in waiting.items()}
        return {"run_id": run_id, "nodes": nodes, "resume": resumer.outcomes.get(run_id)}

    @router.post("/api/runs/{run_id}/nodes/{node_id}/approve")
    def approve(request: Request, run_id: str, node_id: str, body: dict[str, Any] = Body(default_factory=dict),
                action: str | None = Header(None, alias=ACTION_HEADER)) -> dict[str, Any]:
        guarded(request, action)
        checked(run_id, node_id)
        return decided(run_id, lambda: api.approve(run_id, node_id, project=resumer.project,
                                                          comment=_comment(body)))

    @router.post("/api/runs/{run_id}/nodes/{node_id}/edit")
    def edit(request: Request, run_id: str, node_id: str, body: dict[str, Any] = Body(...),
             action: str | None = Header(None, alias=ACTION_HEADER)) -> dict[str, Any]:
        guarded(request, action)
        checked(run_id, node_id)
        if "value" not in body:
            raise HTTPException(status_code=400, detail="an edit needs a 'value' (the new inputs or output)")
        return decided(run_id, lambda: api.edit(run_id, node_id, body["value"], project=resumer.project,
                                                       comment=_comment(body)))

    @router.post("/api/runs/{run_id}/nodes/{node_id}/reject")
    def reject(request: Request, run_id: str, node_id: str, body: dict[str, Any] = Body(default_factory=dict),
               action: str | None = Header(None, alias=ACTION_HEADER)) -> dict[str, Any]:
        guarded(request, action)
        checked(run_id, node_id)
        abort = bool(body.get("abort", False))
        return decided(run_id, lambda: api.reject(run_id, node_id, abort=abort, project=resumer.project,
                                                         comment=_comment(body)), resume=not abort)

    return router


def _comment(body: dict[str, Any]) -> str | None:
    comment = body.get("comment")
    return str(comment)[:2000] if comment else None
