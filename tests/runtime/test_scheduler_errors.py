"""An exception on the engine's own paths fails the run with a clear error; it never hangs it."""

from __future__ import annotations

import asyncio

import runtime_helpers as rh
from contextflow.api import arun
from contextflow.core.state import StateDir
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime.scheduler import Scheduler


async def test_an_exception_while_releasing_results_fails_the_run_instead_of_hanging(state_home, monkeypatch):
    real = Scheduler._release
    calls = {"n": 0}

    def broken(self, pending):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyError("lost node")
        return real(self, pending)

    monkeypatch.setattr(Scheduler, "_release", broken)
    spec = rh.pipeline([
        {"id": "a", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": 1}},
        {"id": "b", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": "${a}"}},
        {"id": "c", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": "${b}"}},
    ])
    result = await asyncio.wait_for(arun(spec, trace=False, cache=False), timeout=20)
    assert result.status == "failed"
    assert "KeyError" in (result.error or "") and "lost node" in (result.error or "")
    with SQLiteRunStore(StateDir.for_project().runs_db) as store:
        saved = store.load_nodes(result.run_id)
        status = store.get_run(result.run_id).status
    assert saved["a"].status == "succeeded", "what finished before the error is kept"
    assert status == "failed"
