"""Drawing a pipeline's graph as Mermaid, Graphviz DOT or plain text."""

from __future__ import annotations

import json
from typing import Literal

import networkx as nx

from contextflow.dags.spec import LLMNode, MapNode, PipelineSpec, PythonNode, RetrieveNode, ToolNode

GraphFormat = Literal["mermaid", "dot", "text"]


def _label(node: object) -> str:
    if isinstance(node, LLMNode):
        models = node.models or ([node.model] if node.model else [])
        return "llm" + (f" {' > '.join(models)}" if models else "")
    if isinstance(node, RetrieveNode):
        return "retrieve"
    if isinstance(node, PythonNode):
        return f"python {node.function}"
    if isinstance(node, ToolNode):
        return f"tool {node.tool}" + (" (side effects)" if node.side_effects else "")
    if isinstance(node, MapNode):
        return f"map over {node.over} as {node.as_}: {_label(node.node)}"
    return type(node).__name__


def render_graph(spec: PipelineSpec, graph: nx.DiGraph, fmt: GraphFormat = "text") -> str:
    """``graph`` has node ids as nodes and producer -> consumer edges (as the checks build it)."""
    nodes = {n.id: n for n in spec.nodes}
    order = list(nx.topological_sort(graph)) if nx.is_directed_acyclic_graph(graph) else list(nodes)
    used_inputs = list(spec.inputs)
    if fmt == "mermaid":
        return _mermaid(spec, graph, nodes, order)
    if fmt == "dot":
        return _dot(spec, graph, nodes, order)
    lines = [f"pipeline {spec.name}: {len(nodes)} nodes, {graph.number_of_edges()} edges"]
    if used_inputs:
        lines.append("inputs: " + ", ".join(used_inputs))
    for node_id in order:
        deps = sorted(graph.predecessors(node_id))
        extra = f"  when {nodes[node_id].when}" if nodes[node_id].when else ""
        lines.append(f"{node_id} [{_label(nodes[node_id])}]" + (f" <- {', '.join(deps)}" if deps else "") + extra)
    for name, ref in spec.outputs.items():
        lines.append(f"output {name} = {ref}")
    return "\n".join(lines)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _mermaid(spec: PipelineSpec, graph: nx.DiGraph, nodes: dict[str, object], order: list[str]) -> str:
    lines = ["flowchart TD"]
    input_ids = {name: f"in_{i}" for i, name in enumerate(spec.inputs)}
    for name, mermaid_id in input_ids.items():
        lines.append(f'  {mermaid_id}[/"input {_mermaid_text(name)}"/]')
    for node_id in order:
        label = _mermaid_text(f"{node_id}: {_label(nodes[node_id])}")
        lines.append(f'  n_{node_id}["{label}"]')
    for node in spec.nodes:
        for name in _input_uses(graph, node.id, spec):
            lines.append(f"  {input_ids[name]} --> n_{node.id}")
    for producer, consumer in graph.edges:
        lines.append(f"  n_{producer} --> n_{consumer}")
    return "\n".join(lines)


def _dot(spec: PipelineSpec, graph: nx.DiGraph, nodes: dict[str, object], order: list[str]) -> str:
    lines = [f"digraph {json.dumps(spec.name)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for name in spec.inputs:
        lines.append(f"  {json.dumps('inputs.' + name)} [shape=parallelogram];")
    for node_id in order:
        lines.append(f"  {json.dumps(node_id)} [label={json.dumps(f'{node_id}: {_label(nodes[node_id])}')}];")
    for node in spec.nodes:
        for name in _input_uses(graph, node.id, spec):
            lines.append(f"  {json.dumps('inputs.' + name)} -> {json.dumps(node.id)};")
    for producer, consumer in graph.edges:
        lines.append(f"  {json.dumps(producer)} -> {json.dumps(consumer)};")
    lines.append("}")
    return "\n".join(lines)


def _input_uses(graph: nx.DiGraph, node_id: str, spec: PipelineSpec) -> list[str]:
    # The reference checks record which declared inputs each node reads (see check_refs).
    return [name for name in graph.nodes[node_id].get("inputs", ()) if name in spec.inputs]
