"""Property tests over generated DAGs: no false cycle reports, every reference resolved, and a
single injected mistake (a back edge, a dangling reference) reported exactly once, in place."""

from __future__ import annotations

from typing import Any

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contextflow.dags.loader import dump_pipeline
from contextflow.dags.compiler import compile
from contextflow.dags.spec import LLMNode, MapNode, PipelineSpec, PythonNode
from contextflow.dags.validate import validate_spec, validate_text

ALLOW = ("cf_test_functions",)
_STRUCTURED = {"type": "object", "properties": {"summary": {"type": "string"},
                                               "items": {"type": "array", "items": {"type": "string"}}}}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 25) -> tuple[PipelineSpec, set[tuple[str, str]]]:
    """A random DAG: each node references a random subset of earlier nodes (so it is acyclic),
    through prompt references, ``depends_on`` or python arguments."""
    count = draw(st.integers(1, max_nodes))
    nodes: list[Any] = []
    structured: set[int] = set()  # nodes whose output has 'summary' (string) and 'items' (list)
    edges: set[tuple[str, str]] = set()
    for i in range(count):
        earlier = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=4)) if i else []
        how = draw(st.sampled_from(["prompt", "depends_on", "python", "fields", "map"]))
        uses_input = draw(st.booleans())
        node_id = f"n{i}"
        edges.update((f"n{j}", node_id) for j in earlier)
        if how == "fields":
            refs = " ".join(f"${{n{j}.output.summary}}" if j in structured else f"${{n{j}.output}}"
                            for j in earlier)
            structured.add(i)
            nodes.append(LLMNode(id=node_id, prompt=f"step {i}: {refs}", output_schema=_STRUCTURED))
            continue
        if how == "map":
            lists = [j for j in earlier if j in structured]
            over = f"${{n{lists[0]}.output.items}}" if lists else "${inputs.topics}"
            others = " ".join(f"${{n{j}.output}}" for j in earlier if not lists or j != lists[0])
            inner = LLMNode(id="each", prompt=f"${{item}} {others}")
            nodes.append(MapNode.model_validate({"id": node_id, "over": over, "node": inner}))
            continue
        if how == "python":
            args = {f"a{j}": f"${{n{j}.output}}" for j in earlier}
            if uses_input:
                args["q"] = "${inputs.question}"
            nodes.append(PythonNode(id=node_id, function="cf_test_functions:shout_all", args=args))
            continue
        refs = " ".join(f"${{n{j}.output}}" for j in earlier) if how == "prompt" else ""
        prompt = f"step {i}: {refs} " + ("${inputs.question}" if uses_input else "")
        depends = [f"n{j}" for j in earlier] if how == "depends_on" else []
        nodes.append(LLMNode(id=node_id, prompt=prompt, depends_on=depends))
    spec = PipelineSpec.model_validate({
        "name": "generated",
        "inputs": {"question": {"type": "string"}, "topics": {"type": "array"}},
        "defaults": {"model": "sim/echo"}, "nodes": [n.model_dump(by_alias=True) for n in nodes],
    })
    return spec, edges


@SETTINGS
@given(dags())
def test_generated_dags_are_valid_and_fully_resolved(case: tuple[PipelineSpec, set[tuple[str, str]]]) -> None:
    spec, edges = case
    report = validate_spec(spec, allow_imports=ALLOW)
    assert report.problems == []
    assert set(report.graph.edges) == edges
    plan = compile(spec, allow_imports=ALLOW)
    assert set(plan.graph.edges) == edges
    position = {node_id: i for i, node_id in enumerate(plan.order)}
    assert all(position[u] < position[v] for u, v in edges)


@SETTINGS
@given(dags(), st.data())
def test_yaml_text_of_generated_dag_is_valid(case: tuple[PipelineSpec, set], data: st.DataObject) -> None:
    spec, _ = case
    report = validate_text(dump_pipeline(spec), file="gen.yaml", allow_imports=ALLOW)
    assert report.problems == []
    assert report.spec == spec


@SETTINGS
@given(dags(max_nodes=15).filter(lambda c: len(c[0].nodes) >= 2), st.data())
def test_one_back_edge_is_one_cycle(case: tuple[PipelineSpec, set], data: st.DataObject) -> None:
    spec, edges = case
    count = len(spec.nodes)
    early = data.draw(st.integers(0, count - 2))
    late = data.draw(st.integers(early + 1, count - 1))
    nodes = list(spec.nodes)
    nodes[early] = nodes[early].model_copy(update={"depends_on": [*nodes[early].depends_on, f"n{late}"]})
    broken = spec.model_copy(update={"nodes": nodes})
    graph = nx.DiGraph(list(edges) + [(f"n{late}", f"n{early}")])
    report = validate_spec(broken, allow_imports=ALLOW)
    codes = [p.code for p in report.problems]
    if nx.is_directed_acyclic_graph(graph):
        assert codes == []
    else:
        assert codes == ["cycle"]
        assert f"n{early}" in report.problems[0].message and f"n{late}" in report.problems[0].message


@SETTINGS
@given(dags(max_nodes=12), st.data())
def test_a_dangling_reference_is_reported_where_it_is(case: tuple[PipelineSpec, set], data: st.DataObject) -> None:
    spec, _ = case
    victim = data.draw(st.integers(0, len(spec.nodes) - 1))
    nodes = list(spec.nodes)
    target = nodes[victim]
    if isinstance(target, PythonNode):
        nodes[victim] = target.model_copy(update={"args": {**target.args, "zz": "${ghost.output}"}})
    elif isinstance(target, MapNode):
        inner = target.node.model_copy(update={"prompt": (target.node.prompt or "") + " ${ghost.output}"})
        nodes[victim] = target.model_copy(update={"node": inner})
    else:
        nodes[victim] = target.model_copy(update={"prompt": (target.prompt or "") + " ${ghost.output}"})
    text = dump_pipeline(spec.model_copy(update={"nodes": nodes}))
    report = validate_text(text, file="gen.yaml", allow_imports=ALLOW)
    assert [p.code for p in report.problems] == ["unknown-node-ref"]
    problem = report.problems[0]
    line = text.splitlines()[problem.line - 1]
    assert line[problem.column - 1:].startswith("${ghost.output}")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12),
                     st.sampled_from(["llm", "map", "python", "${a.output}", "${inputs.q}", "${item}", "a", "nodes"]))
_keys = st.sampled_from(["name", "nodes", "inputs", "outputs", "defaults", "models", "id", "kind", "prompt",
                         "over", "node", "as", "when", "depends_on", "args", "function", "model", "models",
                         "output_schema", "type", "properties", "budget", "max_cost_usd", "x"])
_documents = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(_keys, inner, max_size=5)),
                          max_leaves=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents)
def test_arbitrary_documents_never_crash_the_checks(document: object) -> None:
    import yaml

    report = validate_text(yaml.safe_dump(document), file="fuzz.yaml", allow_imports=ALLOW)
    assert all(p.code and p.line >= 1 for p in report.problems) or report.problems == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_checks(text: str) -> None:
    report = validate_text(text, file="fuzz.yaml")
    assert all(p.code for p in report.problems)
