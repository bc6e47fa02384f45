"""Approval gates: the full cycle across processes, edits, rejects, escalations, confinement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contextflow.core.errors import UserError
from contextflow.api import resume, run
from contextflow.runtime.approvals import approve, decisions, edit, pending, reject
from contextflow.runtime.autonomy import LEVELS, escalation_waits, node_rule
from contextflow.dags.spec import LLMNode, ToolNode

sys.path.insert(0, str(Path(__file__).parent))
from autonomy_pipelines import branching  # noqa: E402

HERE = Path(__file__).parent


def _statuses(result: Any) -> dict[str, str]:
    return {n: r.status for n, r in result.nodes.items()}


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "contextflow", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_full_cycle_across_processes(tmp_path: Path, state_home: Path) -> None:
    """Process 1 runs and exits waiting; process 2 approves; process 3 resumes and finishes."""
    pipeline = tmp_path / "p.yaml"  # tool nodes only: the three processes need not import litellm
    pipeline.write_text(json.dumps({
        "name": "save", "inputs": {"text": {"type": "string"}},
        "nodes": [{"id": "save", "kind": "tool", "tool": "write_file",
                   "args": {"path": "out.txt", "content": "${inputs.text}"}},
                  {"id": "look", "kind": "tool", "tool": "read_file", "args": {"path": "p.yaml"}}],
    }))  # JSON is YAML
    env = {**os.environ, "CONTEXTFLOW_HOME": str(state_home)}
    first = _cli("run", str(pipeline), "-i", "text=draft notes", "--autonomy", "ask", "--json", env=env, cwd=tmp_path)
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["status"] == "waiting", first.stderr
    assert summary["nodes"]["save"]["status"] == "waiting"
    assert summary["nodes"]["look"]["status"] == "succeeded"  # the other branch went on
    assert not (tmp_path / "out.txt").exists()  # nothing written before approval
    run_id = summary["run_id"]
    shown = _cli("pending", run_id, env=env, cwd=tmp_path)
    assert "+++ b/out.txt" in shown.stdout and "+draft notes" in shown.stdout
    second = _cli("approve", run_id, "save", "--as", "reviewer", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    third = _cli("resume", run_id, "--json", env=env, cwd=tmp_path)
    done = json.loads(third.stdout.strip().splitlines()[-1])
    assert done["status"] == "succeeded", third.stderr
    assert (tmp_path / "out.txt").read_text() == "draft notes"
    made = decisions(run_id)
    assert [(d.node_id, d.decision, d.actor, d.applied) for d in made] == [("save", "approve", "reviewer", True)]


def test_edit_changes_what_downstream_receives(tmp_path: Path, state_home: Path) -> None:
    spec = branching("sim/echo")
    result = run(spec, autonomy="suggest", workdir=tmp_path, trace=False)
    assert _statuses(result)["draft"] == "waiting" and _statuses(result)["other"] == "waiting"
    assert pending(result.run_id)["draft"].output == "draft notes"
    edit(result.run_id, "draft", "edited notes", actor="ed")
    approve(result.run_id, "other")
    second = resume(result.run_id)
    assert _statuses(second)["save"] == "waiting"  # the write waits on its own gate, showing the edited text
    assert "+edited notes" in pending(result.run_id)["save"].proposal["diff"]
    edit(result.run_id, "save", {"path": "renamed.txt", "content": "${draft}!"})
    approve(result.run_id, "tail")
    third = resume(result.run_id)
    assert third.status == "succeeded", third.error
    assert (tmp_path / "renamed.txt").exists() and not (tmp_path / "out.txt").exists()
    made = decisions(result.run_id)
    assert made[0].decision == "edit" and '-  "draft notes"' not in (made[0].diff or "") and "edited notes" in made[0].diff


def test_held_output_is_not_recomputed_on_resume(tmp_path: Path, state_home: Path, sim_model: Any) -> None:
    from contextflow.providers import simulated

    model = sim_model()
    spec = {"name": "one", "nodes": [{"id": "a", "kind": "llm", "model": model, "prompt": "hello"}]}
    first = run(spec, autonomy="suggest", workdir=tmp_path, trace=False)
    calls = simulated.stats(model).calls
    approve(first.run_id, "a")
    second = resume(first.run_id)
    assert second.status == "succeeded" and second.outputs == {"a": "hello"}
    assert simulated.stats(model).calls == calls  # the approved result is the one shown, not a new call


def test_reject_skips_only_that_branch(tmp_path: Path, state_home: Path) -> None:
    result = run(branching("sim/echo"), autonomy="suggest", workdir=tmp_path, trace=False)
    reject(result.run_id, "draft")
    approve(result.run_id, "other")
    second = resume(result.run_id)
    statuses = _statuses(second)
    assert statuses["draft"] == "skipped" and statuses["save"] == "skipped"
    assert statuses["other"] == "succeeded"
    assert statuses["tail"] == "waiting"  # its own model-step gate, not skipped
    approve(result.run_id, "tail")
    assert resume(result.run_id).status == "succeeded"
    assert not (tmp_path / "out.txt").exists()


def test_reject_abort_stops_the_run(tmp_path: Path, state_home: Path) -> None:
    result = run(branching("sim/echo"), autonomy="ask", workdir=tmp_path, trace=False)
    reject(result.run_id, "save", abort=True, comment="wrong file")
    again = resume(result.run_id)
    assert again.status == "failed" and "aborted" in (again.error or "")
    assert not (tmp_path / "out.txt").exists()


def _cascade_spec(cap: float) -> dict[str, Any]:
    from contextflow.providers import simulated

    simulated.configure("g-weak", reply="not sure", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("g-strong", reply="#### 42", input_cost_per_token=1e-3, output_cost_per_token=1e-3)
    return {
        "name": "cascade",
        "defaults": {"budget": {"max_cost_usd": cap}},
        "nodes": [{"id": "q", "kind": "llm", "prompt": "six times seven?", "strategy": "cascade",
                   "models": ["sim/g-weak", "sim/g-strong"], "max_output_tokens": 64,
                   "verify": [{"kind": "regex", "pattern": "^#### \\d+$", "name": "final"}]}],
    }


def test_escalation_that_could_pass_the_budget_waits_at_ask(tmp_path: Path, state_home: Path) -> None:
    spec = _cascade_spec(cap=0.05)  # the strong rung's worst case (~0.08 $) could pass it
    waiting = run(spec, autonomy="ask", workdir=tmp_path, trace=False)
    assert _statuses(waiting) == {"q": "waiting"}
    proposal = pending(waiting.run_id)["q"].proposal
    assert proposal["to_model"] == "sim/g-strong" and proposal["could_pass_budget"] is True
    approve(waiting.run_id, "q")
    grant = decisions(waiting.run_id)[0].payload["grant_usd"]
    assert 0 < grant < 0.1  # the approval raises the cap by the shortfall, no more
    done = resume(waiting.run_id)
    assert done.status == "succeeded" and done.outputs == {"q": "#### 42"}
    assert done.nodes["q"].model == "sim/g-strong"
    called = [a.model for a in done.nodes["q"].attempts if a.ok]
    assert called == ["sim/g-weak", "sim/g-strong"]  # the weak rung is not called again on resume
    assert done.cost_usd == pytest.approx(sum(a.cost_usd for a in done.nodes["q"].attempts if a.ok))


def test_escalation_goes_on_at_full(tmp_path: Path, state_home: Path) -> None:
    """No person is asked: the cascade steps up on its own and the hard cap is what stops it."""
    done = run(_cascade_spec(cap=0.05), autonomy="full", workdir=tmp_path, trace=False)
    node = done.nodes["q"]
    assert node.status == "failed" and done.status == "budget_exceeded"
    assert "budget" in (node.error or "").lower()
    assert decisions(done.run_id) == [] and pending(done.run_id) == {}
    roomy = run(_cascade_spec(cap=10.0), autonomy="full", workdir=tmp_path, trace=False)
    assert roomy.status == "succeeded" and roomy.nodes["q"].model == "sim/g-strong"


def test_escalation_within_budget_does_not_wait_at_ask(tmp_path: Path, state_home: Path) -> None:
    done = run(_cascade_spec(cap=10.0), autonomy="ask", workdir=tmp_path, trace=False)
    assert done.status == "succeeded" and done.outputs == {"q": "#### 42"}


@pytest.mark.parametrize("path", ["../escape.txt", "ABSOLUTE", "link/escape.txt"])
def test_write_outside_the_tree_is_refused(tmp_path: Path, state_home: Path, path: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (tree / "link").symlink_to(outside)
    absolute = outside / "absolute-escape.txt"  # an absolute path outside the tree, inside this test's folder
    path = str(absolute) if path == "ABSOLUTE" else path
    spec = {"name": "w", "nodes": [{"id": "w", "kind": "tool", "tool": "write_file",
                                    "args": {"path": path, "content": "x"}}]}
    result = run(spec, autonomy="ask", workdir=tree, trace=False)
    assert result.nodes["w"].status == "failed"  # refused at the gate: nothing to approve
    assert "outside the working tree" in (result.nodes["w"].error or "")
    assert not (outside / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not absolute.exists()


def test_policy_table() -> None:
    llm = LLMNode(id="a", prompt="x", model="sim/x")
    tool = ToolNode(id="t", tool="run_command", args={"command": "ls"})
    assert node_rule("suggest", llm).phase == "after" and node_rule("ask", llm) is None
    assert node_rule("ask", tool).phase == "before" and node_rule("budgeted", tool) is None
    assert node_rule("full", tool) is None
    assert node_rule("full", tool.model_copy(update={"approval": "always"})).phase == "before"
    assert node_rule("suggest", llm.model_copy(update={"approval": "never"})) is None
    cascade = LLMNode(id="c", prompt="x", strategy="cascade", models=["sim/a", "sim/b"])
    assert [escalation_waits(level, cascade, True) for level in LEVELS] == [True, True, True, False]
    assert not any(escalation_waits(level, cascade, False) for level in LEVELS)
    assert escalation_waits("budgeted", cascade.model_copy(update={"approval": "on_escalation"}), False)
    assert not escalation_waits("full", cascade.model_copy(update={"approval": "on_escalation"}), True)
    careful = tool.model_copy(update={"approval": "on_side_effect"})
    assert node_rule("budgeted", careful).phase == "before" and node_rule("full", careful) is None
    assert not escalation_waits("suggest", cascade.model_copy(update={"approval": "never"}), True)


def test_bad_decisions_are_clear_errors(tmp_path: Path, state_home: Path) -> None:
    result = run(branching("sim/echo"), autonomy="ask", workdir=tmp_path, trace=False)
    with pytest.raises(UserError, match="not waiting"):
        approve(result.run_id, "draft")
    with pytest.raises(UserError, match="no run"):
        approve("nope", "save")
    with pytest.raises(UserError, match="unknown autonomy level"):
        run(branching("sim/echo"), autonomy="sometimes", workdir=tmp_path, trace=False)
    env = {**os.environ, "CONTEXTFLOW_HOME": str(state_home)}
    bad = _cli("edit", result.run_id, "save", "--set", "nokey", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "FIELD=VALUE" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr


def test_decisions_reach_the_trace_and_cli_edits(tmp_path: Path, state_home: Path) -> None:
    from contextflow.core.state import StateDir
    from contextflow.trace import TraceStore
    from contextflow.trace.sink import drain

    spec = {"name": "t", "nodes": [{"id": "w", "kind": "tool", "tool": "write_file",
                                    "args": {"path": "a.txt", "content": "one"}}]}
    result = run(spec, autonomy="ask", workdir=tmp_path)
    env = {**os.environ, "CONTEXTFLOW_HOME": str(state_home)}
    edited = tmp_path / "args.json"
    edited.write_text(json.dumps({"path": "b.txt", "content": "two"}))
    done = _cli("edit", result.run_id, "w", "--file", str(edited), "--set", "content=three", "--as", "ann",
                env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    made = decisions(result.run_id)[-1]
    assert made.payload == {"inputs": {"path": "b.txt", "content": "three"}} and made.actor == "ann"
    assert '"path": "b.txt"' in (made.diff or "") and '"path": "a.txt"' in (made.diff or "")
    state = StateDir.for_project(None)
    drain(state.traces_db)
    spans = TraceStore(state.traces_db).spans(result.run_id)
    decided = [s for s in spans if s.get("kind") == "decision"]
    assert decided and "b.txt" in json.dumps(decided[0])
    assert resume(result.run_id).status == "succeeded"
    assert (tmp_path / "b.txt").read_text() == "three" and not (tmp_path / "a.txt").exists()


def test_terminal_prompt_decides_and_resumes_in_process(tmp_path: Path, state_home: Path, monkeypatch: Any) -> None:
    import typer

    from contextflow.cli import approvals as cli_approvals

    result = run(branching("sim/echo"), autonomy="ask", workdir=tmp_path, trace=False)
    answers = iter(["a"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(typer, "prompt", lambda *a, **k: next(answers))
    finished = cli_approvals.decide_at_terminal(result, None)
    assert finished.status == "succeeded" and (tmp_path / "out.txt").read_text() == "draft notes"
    (tmp_path / "later").mkdir()
    later = run(branching("sim/echo"), autonomy="ask", workdir=tmp_path / "later", trace=False)
    monkeypatch.setattr(typer, "prompt", lambda *a, **k: "s")  # "later": stays waiting, nothing decided
    assert cli_approvals.decide_at_terminal(later, None).status == "waiting"
    assert decisions(later.run_id) == []


def test_a_call_that_could_pass_the_budget_waits_at_budgeted(tmp_path: Path, state_home: Path) -> None:
    from contextflow.providers import simulated

    simulated.configure("g-pricey", reply="done", input_cost_per_token=1e-3, output_cost_per_token=1e-3)
    spec = {"name": "b", "defaults": {"budget": {"max_cost_usd": 0.02}},
            "nodes": [{"id": "cheap", "kind": "llm", "model": "sim/echo", "prompt": "hi", "max_output_tokens": 8},
                      {"id": "big", "kind": "llm", "model": "sim/g-pricey", "prompt": "hi", "max_output_tokens": 64}]}
    held = run(spec, autonomy="budgeted", workdir=tmp_path, trace=False)
    assert _statuses(held) == {"cheap": "succeeded", "big": "waiting"}
    assert pending(held.run_id)["big"].proposal["worst_case_cost_usd"] > 0.02
    with pytest.raises(UserError, match="budget decision"):
        edit(held.run_id, "big", "x")
    approve(held.run_id, "big")
    done = resume(held.run_id)
    assert done.status == "succeeded" and done.outputs["big"] == "done"
    assert run(spec, autonomy="full", workdir=tmp_path, trace=False, cache=False).status == "budget_exceeded"


def test_cli_edit_opens_the_editor(tmp_path: Path, state_home: Path) -> None:
    spec = {"name": "t", "nodes": [{"id": "w", "kind": "tool", "tool": "write_file",
                                    "args": {"path": "a.txt", "content": "one"}}]}
    result = run(spec, autonomy="ask", workdir=tmp_path, trace=False)
    editor = tmp_path / "fake_editor.py"  # stands in for $EDITOR: rewrites the JSON it is given
    editor.write_text("import json, sys\np = sys.argv[1]\nv = json.load(open(p))\nv['content'] = 'from editor'\n"
                      "json.dump(v, open(p, 'w'))\n")
    env = {**os.environ, "CONTEXTFLOW_HOME": str(state_home), "EDITOR": f"{sys.executable} {editor}"}
    env.pop("VISUAL", None)
    done = _cli("edit", result.run_id, "w", "--resume", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.txt").read_text() == "from editor"
    assert "succeeded" in done.stdout
