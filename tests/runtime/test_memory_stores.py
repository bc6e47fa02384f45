"""Injected stores: a run against in-memory stores writes nothing to disk, and both run stores agree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contextflow.api import Stores, approve, arun, aresume, pending, resume, run
from contextflow.core.errors import UserError
from contextflow.core.results import Attempt, NodeResult
from contextflow.dags.imports import register_function
from contextflow.runtime.memory_store import MemoryRunStore
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime.store import RunStore

_calls: dict[str, int] = {}
_fail: set[str] = set()


def counted(tag: str) -> str:
    """Count calls per tag, and fail while the tag is in ``_fail`` (a test's switch)."""
    _calls[tag] = _calls.get(tag, 0) + 1
    if tag in _fail:
        raise RuntimeError(f"{tag} is switched to fail")
    return tag.upper()


register_function(counted, "memory_store_tests:counted")


def _chain(*tags: str, cache: bool = False) -> dict:
    nodes = []
    for i, tag in enumerate(tags):
        node = {"id": tag, "kind": "python", "function": "memory_store_tests:counted", "args": {"tag": tag}}
        if i:
            node["depends_on"] = [tags[i - 1]]
        if cache:
            node["cache"] = {"enabled": True}
        nodes.append(node)
    return {"name": "chain", "nodes": nodes}


@pytest.fixture()
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A project folder as the working directory and a CONTEXTFLOW_HOME that must stay absent."""
    project, home = tmp_path / "project", tmp_path / "home" / ".contextflow"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("CONTEXTFLOW_HOME", str(home))
    _calls.clear()
    _fail.clear()
    return project, home


def _state_folders(root: Path) -> list[Path]:
    return [Path(d) / name for d, dirs, _ in os.walk(root) for name in dirs if name == ".contextflow"]


def test_a_run_and_its_resume_in_memory_write_nothing_and_stay_readable(nowhere) -> None:
    project, home = nowhere
    stores = Stores.in_memory()
    _fail.add("b")
    first = run(_chain("a", "b", "c"), stores=stores, project=project)
    assert first.status == "failed" and "switched to fail" in first.error
    assert stores.runs.get_run(first.run_id).status == "failed"

    _fail.clear()
    again = resume(first.run_id, stores=stores, project=project)
    assert again.status == "succeeded", again.error
    assert again.outputs == {"c": "C"}
    assert _calls == {"a": 1, "b": 2, "c": 1}  # the finished node was not run again

    assert stores.runs.get_run(first.run_id).status == "succeeded"
    assert {n: r.value for n, r in stores.runs.load_nodes(first.run_id).items()} == {"a": "A", "b": "B", "c": "C"}
    traced = stores.trace.run(first.run_id)
    assert traced["status"] == "succeeded"
    nodes = {s["node_id"]: s["status"] for s in traced["spans"] if s["kind"] == "node"}
    assert nodes == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert [r["run_id"] for r in stores.trace.list_runs()] == [first.run_id]

    assert not home.exists() and not home.parent.exists()
    assert _state_folders(project.parent) == []


def test_in_memory_true_runs_once_without_a_state_folder_and_caches_in_memory(nowhere) -> None:
    project, home = nowhere
    result = run(_chain("a", "b"), in_memory=True, project=project)
    assert result.status == "succeeded" and result.outputs == {"b": "B"}

    stores = Stores.in_memory()
    run(_chain("x", cache=True), stores=stores, project=project)
    hit = run(_chain("x", cache=True), stores=stores, project=project)
    assert hit.nodes["x"].cache_hit and _calls["x"] == 1
    assert len(stores.cache) == 1
    assert not home.parent.exists() and _state_folders(project.parent) == []


async def test_a_waiting_run_is_approved_and_resumed_in_memory(nowhere) -> None:
    project, home = nowhere
    stores = Stores.in_memory()
    spec = {"name": "ask", "nodes": [{"id": "draft", "kind": "llm", "model": "sim/echo", "prompt": "draft notes"}]}
    waiting = await arun(spec, stores=stores, autonomy="suggest", workdir=project)
    assert waiting.status == "waiting"
    assert pending(waiting.run_id, stores=stores)["draft"].output == "draft notes"
    approve(waiting.run_id, "draft", actor="reviewer", stores=stores)
    done = await aresume(waiting.run_id, stores=stores)
    assert done.status == "succeeded" and done.outputs == {"draft": "draft notes"}
    decided = [s for s in stores.trace.spans(waiting.run_id) if s["kind"] == "decision"]
    assert [s["name"] for s in decided] == ["approve by reviewer"]
    assert not home.parent.exists() and _state_folders(project.parent) == []


def test_stores_and_in_memory_together_are_refused(nowhere) -> None:
    with pytest.raises(UserError, match="not both"):
        run(_chain("a"), stores=Stores.in_memory(), in_memory=True)


# the two run stores behave alike --------------------------------------------------------------

@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path: Path):
    made = SQLiteRunStore(tmp_path / "runs.db") if request.param == "sqlite" else MemoryRunStore()
    yield made
    made.close()


def test_both_run_stores_implement_the_protocol(store) -> None:
    assert isinstance(store, RunStore)


def test_both_run_stores_keep_runs_nodes_and_decisions_alike(store) -> None:
    store.create_run("r1", pipeline="p", spec={"name": "p"}, inputs={"q": ("a", 1)}, budget={"max_cost_usd": 1.0},
                     options={"model": "sim/echo"})
    with pytest.raises(UserError, match="already exists"):
        store.create_run("r1", pipeline="p", spec={}, inputs={})
    value = {"items": [1, 2], "text": "é"}
    store.save_nodes("r1", [NodeResult("a", "succeeded", value, cost_usd=0.5, attempts=[Attempt(1, True, "m")])])
    value["items"].append(3)  # a stored result is a snapshot
    store.set_run_status("r1", "failed", error="boom", outputs={"a": 1}, cost_usd=0.5)
    store.set_run_status("r1", "running")  # outputs and cost stay; the error is cleared

    record = store.get_run("r1")
    assert (record.status, record.error, record.outputs, record.cost_usd) == ("running", None, {"a": 1}, 0.5)
    assert record.inputs == {"q": ["a", 1]} and record.budget == {"max_cost_usd": 1.0}
    loaded = store.load_nodes("r1")["a"]
    assert loaded.value == {"items": [1, 2], "text": "é"} and loaded.attempts == [Attempt(1, True, "m")]
    assert store.get_run("nope") is None and store.load_nodes("nope") == {}

    first = store.record_decision("r1", "a", "approve", actor="me", payload={"grant_usd": 1})
    store.record_decision("r1", "a", "reject", actor="you")
    store.mark_decision_applied(first)
    assert [(d.decision, d.applied, d.payload) for d in store.decisions("r1")] == [
        ("approve", True, {"grant_usd": 1}), ("reject", False, None)]
    assert [d.decision for d in store.decisions("r1", pending_only=True)] == ["reject"]

    store.create_run("r2", pipeline="p", spec={}, inputs={})
    assert [r.run_id for r in store.list_runs()] == ["r2", "r1"] and len(store.list_runs(1)) == 1
    store.claim_run("r2")
    store.release_run("r2")
    store.claim_run("r2")  # released: it may be claimed again
