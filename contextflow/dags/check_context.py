"""Shared state of one validation run: the spec, where things are in the file, and the findings.

Every index here is built once (node ids, paths, output schemas, function signatures), so each
check does constant work per node, reference and edge: validation stays linear in nodes + edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from pydantic import BaseModel

from contextflow.dags.imports import Allowlist, Signature, locate
from contextflow.dags.problems import Problem
from contextflow.dags.refs import Ref
from contextflow.dags.schema_types import CONTEXT_WINDOW_SCHEMA, Schema
from contextflow.dags.spec import LLMNode, MapNode, Node, PipelineSpec, PythonNode, RetrieveNode
from contextflow.dags.yaml_source import PathKey, SourceMap

# Fields that never hold references: identity, prose and schemas (a schema may contain "${" text).
NON_TEMPLATE_FIELDS = frozenset({"id", "kind", "description", "output_schema", "node", "as_", "when", "depends_on"})


@dataclass
class CheckContext:
    spec: PipelineSpec
    source: SourceMap | None = None
    file: str | None = None
    node_paths: list[PathKey] = field(default_factory=list)
    opaque_nodes: set[str] = field(default_factory=set)
    opaque_inputs: set[str] = field(default_factory=set)
    inputs_opaque: bool = False
    allowlist: Allowlist = field(default_factory=Allowlist.build)
    problems: list[Problem] = field(default_factory=list)
    #: Where each node was declared in Python ((file, line) by node index), for specs without YAML.
    origins: dict[int, tuple[str, int]] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    paths: dict[str, PathKey] = field(default_factory=dict)
    _schemas: dict[str, Schema | None] = field(default_factory=dict)
    _signatures: dict[str, Signature | None] = field(default_factory=dict)
    _node_at: dict[PathKey, str] = field(default_factory=dict)  # ("nodes", i) -> that node's id

    def __post_init__(self) -> None:
        if not self.node_paths:
            self.node_paths = [("nodes", i) for i in range(len(self.spec.nodes))]
        for node, path in zip(self.spec.nodes, self.node_paths):
            self._node_at[tuple(path)] = node.id
            if node.id not in self.nodes:  # duplicates are reported; the first one wins
                self.nodes[node.id] = node
                self.paths[node.id] = path

    # -- reporting ---------------------------------------------------------------------------
    def position(self, path: PathKey, *, key: bool = False, text: str | None = None,
                 start: int | None = None, end: int | None = None) -> tuple[int, int]:
        if self.source is None:
            return 0, 0
        if text is not None and start is not None:
            return self.source.in_value(path, text, start, end if end is not None else start + 2)
        return self.source.key(path) if key else self.source.value(path)

    def add(self, code: str, message: str, path: PathKey, *, hint: str | None = None,
            key: bool = False, text: str | None = None, ref: Ref | None = None,
            offset: int | None = None) -> None:
        start = ref.start if ref is not None else offset
        end = ref.end if ref is not None else None
        line, column = self.position(path, key=key, text=text, start=start, end=end)
        file = self.file
        node = self._node_at.get(tuple(path[:2]))
        if self.source is None and len(path) >= 2 and path[0] == "nodes" and path[1] in self.origins:
            file, line = self.origins[path[1]]
        self.problems.append(Problem(code, message, hint=hint, file=file, line=line, column=column, node=node))

    def node_position(self, node_id: str) -> tuple[str | None, int, int]:
        """(file, line, column) of a node's declaration: its ``id`` in YAML, the call in Python."""
        path = self.paths[node_id]
        if self.source is None:
            if len(path) >= 2 and path[0] == "nodes" and path[1] in self.origins:
                file, line = self.origins[path[1]]
                return file, line, 0
            return self.file, 0, 0
        line, column = self.position((*path, "id"))
        return self.file, line, column

    # -- lookups -----------------------------------------------------------------------------
    def iter_nodes(self) -> Iterator[tuple[Node, PathKey]]:
        yield from zip(self.spec.nodes, self.node_paths)

    def input_names(self) -> list[str]:
        return [*self.spec.inputs, *self.opaque_inputs]

    def signature(self, path: str) -> Signature | None:
        """A python function's parameters and return type, when allowlisted and readable."""
        if path not in self._signatures:
            found: Signature | None = None
            if self.allowlist.allows(path):
                status, found = locate(path)
            self._signatures[path] = found
        return self._signatures[path]

    def output_schema(self, node_id: str) -> Schema | None:
        """What ``${node_id.output}`` holds, as JSON Schema; None when nothing can be said."""
        if node_id not in self._schemas:
            node = self.nodes.get(node_id)
            self._schemas[node_id] = self._schema_of(node) if node is not None else None
        return self._schemas[node_id]

    def _schema_of(self, node: Any) -> Schema | None:
        if isinstance(node, LLMNode):
            if node.output_schema is not None:
                return node.output_schema if isinstance(node.output_schema, dict) else None
            return {"type": "string"}
        if isinstance(node, PythonNode):
            if node.output_schema is not None:
                return node.output_schema if isinstance(node.output_schema, dict) else None
            sig = self.signature(node.function)
            return sig.returns if sig is not None else None
        if isinstance(node, RetrieveNode):
            return CONTEXT_WINDOW_SCHEMA
        if isinstance(node, MapNode):
            inner = self._schema_of(node.node)
            return {"type": "array", "items": inner} if inner is not None else {"type": "array"}
        return None


def templated_strings(value: Any, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    """Every string that may hold template syntax inside a field value, with its path."""
    if isinstance(value, str):
        if "${" in value or "{{" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from templated_strings(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from templated_strings(item, (*path, index))
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            if item is not None and not isinstance(item, (int, float, bool)):
                yield from templated_strings(item, (*path, info.alias or name))


def node_templates(node: Any, base: PathKey) -> Iterator[tuple[PathKey, str]]:
    """The templated strings of one node (not its inner map node, not ``when``)."""
    for name, info in type(node).model_fields.items():
        if name in NON_TEMPLATE_FIELDS:
            continue
        value = getattr(node, name)
        if value is None or isinstance(value, (int, float, bool)):
            continue
        yield from templated_strings(value, (*base, info.alias or name))
