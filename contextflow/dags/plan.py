"""A checked pipeline, ready to run: the spec, its dependency graph and where each node was declared.

:func:`contextflow.dags.compile` makes a :class:`Plan` once every static check has passed. The
graph is the one the reference checks built while resolving each ``${...}`` (see
:mod:`contextflow.dags.check_refs`), so edges are inferred in exactly one place; the plan only
adds the topological order and each node's direct dependencies and dependents, linear in nodes
plus edges.

A plan is immutable: its fields cannot be reassigned, its mappings are read-only views and its
graph is frozen. It holds its own copy of the spec, so changing a builder ``Pipeline`` or a
``PipelineSpec`` after compiling it does not change what the plan runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import networkx as nx

from contextflow.dags.spec import LLMNode, MapNode, Node, PipelineSpec

#: The fields model choice may change on an llm node (``contextflow.cost.model_choice``).
MODEL_FIELDS = frozenset({"model", "models", "strategy"})


@dataclass(frozen=True)
class SourcePosition:
    """Where a node was declared: a YAML file's line and column, or a Python call's file and line."""

    file: str | None = None
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = self.file or "<pipeline>"
        if self.line and self.column:
            return f"{where}:{self.line}:{self.column}"
        if self.line:
            return f"{where}:{self.line}"
        return where


@dataclass(frozen=True, eq=False)
class Plan:
    """What the scheduler runs. Make one with :func:`contextflow.dags.compile`."""

    spec: PipelineSpec
    graph: nx.DiGraph
    order: tuple[str, ...]
    deps: Mapping[str, tuple[str, ...]]
    dependents: Mapping[str, tuple[str, ...]]
    nodes: Mapping[str, Node]
    positions: Mapping[str, SourcePosition]

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def where(self, node_id: str) -> str:
        """``file:line:column`` of the node's declaration, for messages about it."""
        return str(self.positions.get(node_id) or SourcePosition())

    def with_spec(self, spec: PipelineSpec) -> "Plan":
        """This plan running ``spec``, a copy whose llm nodes have other models and nothing else.

        Model choice happens after the checks (it depends on the run's options and environment),
        and models never change the graph, so the graph and positions are kept. Any other
        difference would need new checks: that is a ValueError.
        """
        if spec is self.spec:
            return self
        if not _same_but_models(spec, self.spec):
            raise ValueError("with_spec() takes the same pipeline with other models; compile() anything else")
        return dataclasses.replace(self, spec=spec, nodes=MappingProxyType({n.id: n for n in spec.nodes}))


def make_plan(spec: PipelineSpec, graph: nx.DiGraph, positions: Mapping[str, SourcePosition]) -> Plan:
    """A plan from a spec whose checks passed and the graph those checks built (it is frozen here)."""
    order = tuple(nx.topological_sort(graph))
    deps = {n: tuple(graph.predecessors(n)) for n in order}
    dependents = {n: tuple(graph.successors(n)) for n in order}
    return Plan(
        spec=spec, graph=nx.freeze(graph), order=order, deps=MappingProxyType(deps),
        dependents=MappingProxyType(dependents), nodes=MappingProxyType({n.id: n for n in spec.nodes}),
        positions=MappingProxyType(dict(positions)),
    )


def _same_but_models(new: PipelineSpec, old: PipelineSpec) -> bool:
    exclude: Any = {"defaults": {"model"}, "nodes": True}
    if new.model_dump(exclude=exclude) != old.model_dump(exclude=exclude) or len(new.nodes) != len(old.nodes):
        return False
    # Nodes model choice left alone are the same objects: only the others are compared in full.
    return all(a is b or _node_without_models(a) == _node_without_models(b) for a, b in zip(new.nodes, old.nodes))


def _node_without_models(node: Node) -> dict[str, Any]:
    if isinstance(node, MapNode):
        return {**node.model_dump(mode="json", by_alias=True, exclude={"node"}),
                "node": _node_without_models(node.node)}
    if isinstance(node, LLMNode):
        return node.model_dump(mode="json", by_alias=True, exclude=set(MODEL_FIELDS))
    return node.model_dump(mode="json", by_alias=True)
