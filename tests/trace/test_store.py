"""The trace store: spans from events, leaf-only rollups, comparisons, what-if, safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from contextflow.trace import TraceSink, TraceStore
from contextflow.trace.store import TraceNotFound

from synthetic_trace import RUN, synthetic_run


def test_rollups_count_leaf_spans_only(recorded: Path) -> None:
    run = TraceStore(recorded).run(RUN)
    assert run["cost_usd"] == pytest.approx(0.007)  # not 0.014: node totals repeat their attempts
    assert run["input_tokens"] == 230 and run["output_tokens"] == 60
    assert run["by_node"]["c"]["cost_usd"] == pytest.approx(0.004)
    assert run["by_node"]["c"]["tokens"] == 250
    assert run["by_model"]["gpt-4o-mini"]["calls"] == 2
    assert run["by_model"]["sim/x"]["cost_usd"] == pytest.approx(0.003)
    assert run["by_node"]["d"]["cost_usd"] == 0.0 and run["by_node"]["d"]["kind"] == "python"


def test_spans_carry_genai_attributes_and_parentage(recorded: Path) -> None:
    spans = TraceStore(recorded).spans(RUN)
    attempts = [s for s in spans if s["kind"] == "attempt"]
    assert len(attempts) == 4 and all(s["parent_id"] == f"{RUN}/{s['node_id']}" for s in attempts)
    first_c = next(s for s in attempts if s["node_id"] == "c" and s["status"] == "error")
    assert first_c["attributes"]["error.type"] == "RateLimitError"
    ok = next(s for s in attempts if s["node_id"] == "a")["attributes"]
    assert ok["gen_ai.request.model"] == "sim/x" and ok["gen_ai.provider.name"] == "sim"
    assert ok["gen_ai.usage.input_tokens"] == 10 and ok["gen_ai.usage.cost"] == 0.001
    assert ok["contextflow.prompt"] == [{"role": "user", "content": "hi a"}]


def test_runs_list_summarises_status_cost_tokens_and_model_mix(recorded: Path) -> None:
    [row] = TraceStore(recorded).list_runs()
    assert row["status"] == "succeeded" and row["duration_s"] == pytest.approx(3.7)
    assert row["cost_usd"] == pytest.approx(0.007) and row["tokens"] == 290
    assert row["models"] == {"gpt-4o-mini": 2, "sim/x": 2}


def test_critical_path_follows_the_slowest_chain(recorded: Path) -> None:
    assert TraceStore(recorded).run(RUN)["critical_path"] == ["b", "c", "d"]


def test_compare_two_runs_node_by_node(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    sink = TraceSink(db)
    for event in synthetic_run("run-a") + synthetic_run("run-b", t0=2000.0, model_c="gpt-4o"):
        sink(event)
    sink.close()
    rows = {r["node_id"]: r for r in TraceStore(db).compare("run-a", "run-b")}
    assert rows["c"]["a"]["model"] == "gpt-4o-mini" and rows["c"]["b"]["model"] == "gpt-4o"
    assert rows["a"]["delta_cost_usd"] == 0


def test_what_if_reprices_a_node_from_the_price_map(recorded: Path) -> None:
    from contextflow.core.catalog import get

    result = TraceStore(recorded).what_if(RUN, "c", "gpt-4o")
    expected = get("gpt-4o").cost(100, 0) + get("gpt-4o").cost(100, 50)
    assert result["node_cost_what_if_usd"] == pytest.approx(expected)
    assert result["run_cost_what_if_usd"] == pytest.approx(0.007 - 0.004 + expected)


def test_bad_run_ids_are_refused_and_missing_ones_reported(recorded: Path) -> None:
    store = TraceStore(recorded)
    for bad in ("../etc/passwd", "a/b", "x' OR '1'='1", ""):
        with pytest.raises(ValueError):
            store.run(bad)
    with pytest.raises(TraceNotFound):
        store.run("no-such-run")


def test_a_real_run_is_traced_through_the_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextflow.api import run
    from contextflow.core.state import StateDir

    monkeypatch.setenv("CONTEXTFLOW_HOME", str(tmp_path / "state"))
    spec = {
        "name": "traced",
        "nodes": [
            {"id": "a", "kind": "llm", "model": "sim/t", "prompt": "one"},
            {"id": "b", "kind": "llm", "model": "sim/t", "prompt": "two ${a.output}"},
        ],
        "outputs": {"b": "${b.output}"},
    }
    result = run(spec, {}, project=tmp_path)
    trace = TraceStore(StateDir.for_project(tmp_path).traces_db).run(result.run_id)
    assert trace["status"] == "succeeded"
    assert trace["cost_usd"] == pytest.approx(result.cost_usd)
    assert trace["input_tokens"] + trace["output_tokens"] == result.usage.total_tokens
    assert trace["edges"] == [("a", "b")]
