"""From a spec to a plan: the dependency graph inferred from references.

A plan is what the scheduler runs: node ids in a topological order, each node's direct
dependencies and dependents, and the references found in it. Building it is linear in nodes plus
edges; the static checks in ``validate`` report problems with source positions before this runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from contextflow.dags.refs import Ref, iter_refs
from contextflow.dags.spec import MapNode, Node, PipelineSpec

# Fields that never hold references: identity, prose and schemas (a schema may contain "${" text).
_NON_REF_FIELDS = frozenset({"id", "kind", "description", "output_schema", "node", "as_"})


class PlanError(ValueError):
    """The spec cannot be turned into a runnable graph (unknown reference, cycle)."""


@dataclass
class Plan:
    spec: PipelineSpec
    graph: nx.DiGraph
    order: list[str]
    deps: dict[str, tuple[str, ...]]
    dependents: dict[str, tuple[str, ...]]
    refs: dict[str, list[Ref]]
    nodes: dict[str, Node] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]


def node_refs(node: Node) -> list[Ref]:
    """References a node makes to things outside itself (inputs and other nodes)."""
    found: list[Ref] = []
    for name in type(node).model_fields:
        if name in _NON_REF_FIELDS:
            continue
        found.extend(iter_refs(_plain(getattr(node, name))))
    if isinstance(node, MapNode):
        alias = node.as_
        found.extend(r for r in node_refs(node.node) if r.root != alias)
    return found


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, list) and value and hasattr(value[0], "model_dump"):
        return [v.model_dump() for v in value]
    return value


def output_refs(spec: PipelineSpec) -> dict[str, list[Ref]]:
    return {name: list(iter_refs(text)) for name, text in spec.outputs.items()}


def build_plan(spec: PipelineSpec) -> Plan:
    nodes = {n.id: n for n in spec.nodes}
    if len(nodes) != len(spec.nodes):
        raise PlanError("duplicate node ids")
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    refs: dict[str, list[Ref]] = {}
    for node_id, node in nodes.items():
        found = node_refs(node)
        refs[node_id] = found
        for ref in found:
            if ref.root == "inputs":
                continue
            if ref.root not in nodes:
                raise PlanError(f"node '{node_id}' refers to unknown node '{ref.root}' in {ref.text}")
            if ref.root != node_id:
                graph.add_edge(ref.root, node_id)
            else:
                raise PlanError(f"node '{node_id}' refers to its own output in {ref.text}")
        for dep in node.depends_on:
            if dep not in nodes:
                raise PlanError(f"node '{node_id}' depends on unknown node '{dep}'")
            graph.add_edge(dep, node_id)
    try:
        order = list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        cycle = [u for u, _ in nx.find_cycle(graph)]
        raise PlanError("cycle: " + " -> ".join([*cycle, cycle[0]])) from None
    deps = {n: tuple(graph.predecessors(n)) for n in order}
    dependents = {n: tuple(graph.successors(n)) for n in order}
    return Plan(spec=spec, graph=graph, order=order, deps=deps, dependents=dependents, refs=refs, nodes=nodes)
