"""Reference and graph checks: unknown nodes, inputs and fields, type mismatches, cycles.

One pass over every node's templated strings resolves each ``${...}`` against the indexes built in
:class:`CheckContext` (constant time per reference), records the inferred edge with the position
of the reference that created it, and checks what the consumer expects against the producer's
output schema. Cycles come from strongly connected components (linear), each printed in full.
"""

from __future__ import annotations

import re
from typing import Any

import networkx as nx

from contextflow.dags.check_context import CheckContext, node_templates
from contextflow.dags.expressions import ExpressionError, parse_condition
from contextflow.dags.problems import did_you_mean, suggestion_hint
from contextflow.dags.refs import _REF, Ref, find_refs
from contextflow.dags.schema_types import FieldError, Schema, compatible, field_schema, types_of, value_matches
from contextflow.dags.spec import MapNode, PythonNode
from contextflow.dags.yaml_source import PathKey

_MUSTACHE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\s*\}\}")
_UNKNOWN = object()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RefChecker:
    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.graph: nx.DiGraph = nx.DiGraph()
        self.graph.add_nodes_from(ctx.nodes)
        # (producer, consumer) -> (path, text, ref) of the first reference creating the edge.
        self.edge_sites: dict[tuple[str, str], tuple[PathKey, str | None, Ref | None]] = {}
        self._resolved: dict[tuple[PathKey, int], Any] = {}
        self._aliases: set[str] | None = None
        self._close_names: dict[tuple[str, str | None], list[str]] = {}
        # node id -> the inputs it reads (kept on the graph's nodes as "inputs", for drawing it).
        self._input_uses: dict[str, set[str]] = {}

    def run(self) -> nx.DiGraph:
        """Check every reference; the dependency graph they define (the one a Plan runs)."""
        ctx = self.ctx
        self._check_duplicates()
        self._check_inputs()
        for node, path in ctx.iter_nodes():
            if ctx.nodes.get(node.id) is not node:
                continue  # a duplicate id: already reported, its refs would double-count
            self._check_node(node, path, node.id)
        self._check_outputs()
        self._check_cycles()
        for node_id, names in self._input_uses.items():
            self.graph.nodes[node_id]["inputs"] = tuple(sorted(names))
        return self.graph

    # -- per node ----------------------------------------------------------------------------
    def _check_node(self, node: Any, path: PathKey, owner: str, alias: str | None = None,
                    alias_schema: Schema | None = None) -> None:
        for sub_path, text in node_templates(node, path):
            self._check_text(owner, sub_path, text, alias, alias_schema)
        if node.when is not None:
            self._check_when(owner, (*path, "when"), node.when, alias, alias_schema)
        for index, dep in enumerate(node.depends_on):
            self._depends_on(owner, dep, (*path, "depends_on", index))
        if isinstance(node, MapNode):
            over_schema = self._check_over(node, path)
            item_schema = None
            if isinstance(over_schema, dict) and isinstance(over_schema.get("items"), dict):
                item_schema = over_schema["items"]
            self._check_node(node.node, (*path, "node"), owner, node.as_, item_schema)
        if isinstance(node, PythonNode):
            self._check_python_args(node, path, alias, alias_schema)

    def _check_text(self, owner: str | None, path: PathKey, text: str,
                    alias: str | None, alias_schema: Schema | None) -> list[tuple[Ref, Any]]:
        refs = find_refs(text) if "${" in text else []
        if "${" in text:
            starts = {r.start for r in refs}
            at = text.find("${")
            while at >= 0:
                if at not in starts:
                    self.ctx.add("unresolved-template-var", "malformed reference: "
                                 f"'{_snippet(text, at)}' is not ${{inputs.name}} or ${{node.output.field}}",
                                 path, text=text, offset=at,
                                 hint="a reference is ${inputs.NAME}, ${NODE.output} or ${NODE.output.FIELD}, "
                                      "with identifiers and indices separated by dots")
                at = text.find("${", at + 2)
        if "{{" in text:
            self._check_mustache(path, text)
        return [(ref, self.resolve(owner, path, text, ref, alias, alias_schema)) for ref in refs]

    def _check_mustache(self, path: PathKey, text: str) -> None:
        for match in _MUSTACHE.finditer(text):
            root, rest = match.group(1), match.group(2)
            if root in self.ctx.nodes or root == "inputs" or root in self.ctx.spec.inputs:
                target = (f"inputs.{root}" if root in self.ctx.spec.inputs else root) + rest
                self.ctx.add("unresolved-template-var",
                             f"'{match.group(0)}' is not a contextflow reference and stays literal text",
                             path, text=text, offset=match.start(),
                             hint=f"write ${{{target}}}")

    def resolve(self, owner: str | None, path: PathKey, text: str, ref: Ref,
                alias: str | None = None, alias_schema: Schema | None = None) -> Any:
        """The schema a reference points at (None: unknown, ``_UNKNOWN``: already reported)."""
        found = self._resolve(owner, path, text, ref, alias, alias_schema)
        self._resolved[(path, ref.start)] = found
        return found

    def _resolve(self, owner: str | None, path: PathKey, text: str, ref: Ref,
                 alias: str | None, alias_schema: Schema | None) -> Any:
        ctx = self.ctx
        if alias is not None and ref.root == alias:
            return self._field(alias_schema, ref.path, ref, path, text, "an item of the map's list")
        if ref.root == "inputs":
            if owner is not None and ref.path and ref.path[0] in ctx.spec.inputs:
                self._input_uses.setdefault(owner, set()).add(ref.path[0])
            return self._input_ref(ref, path, text)
        if ref.root in ctx.nodes:
            if owner is not None:
                self._edge(ref.root, owner, path, text, ref)
            described = f"the output of '{ref.root}'"
            return self._field(ctx.output_schema(ref.root), ref.field_path, ref, path, text, described)
        if ref.root in ctx.opaque_nodes:
            return None
        self._unknown_root(ref, path, text, alias)
        return _UNKNOWN

    def _input_ref(self, ref: Ref, path: PathKey, text: str) -> Any:
        ctx = self.ctx
        if not ref.path:
            ctx.add("unresolved-template-var", "${inputs} names no input", path, text=text, ref=ref,
                    hint="write ${inputs.NAME} for one declared input")
            return _UNKNOWN
        name = ref.path[0]
        spec_input = ctx.spec.inputs.get(name)
        if spec_input is None:
            if name in ctx.opaque_inputs or ctx.inputs_opaque:
                return None
            hint = suggestion_hint(name, ctx.spec.inputs, fmt="${{inputs.{}}}")
            if hint is None:
                hint = f"declare it under 'inputs:' ({name}: {{type: string}})"
            ctx.add("unknown-input-ref", f"{ref.text} refers to input '{name}', which is not declared",
                    path, text=text, ref=ref, hint=hint)
            return _UNKNOWN
        return self._field({"type": spec_input.type}, ref.path[1:], ref, path, text, f"input '{name}'")

    def _field(self, schema: Schema | None, fields: tuple[str, ...], ref: Ref, path: PathKey,
               text: str, described: str) -> Any:
        if not fields:
            return schema
        try:
            return field_schema(schema, fields)
        except FieldError as exc:
            message = str(exc).replace("the output", described, 1)
            missing = next((f for f in fields if f in message), fields[-1])
            hint = suggestion_hint(missing, exc.candidates) if exc.candidates else None
            if hint is None and exc.candidates:
                hint = "fields: " + ", ".join(exc.candidates)
            self.ctx.add("unknown-field-ref", f"{ref.text}: {message}", path, text=text, ref=ref, hint=hint)
            return _UNKNOWN

    def _unknown_root(self, ref: Ref, path: PathKey, text: str, alias: str | None) -> None:
        ctx = self.ctx
        root = ref.root
        if root in ctx.spec.inputs or root in ctx.opaque_inputs:
            ctx.add("unresolved-template-var", f"{ref.text} resolves to nothing: '{root}' is an input",
                    path, text=text, ref=ref, hint=f"write ${{inputs.{'.'.join((root, *ref.path))}}}")
            return
        if self._aliases is None:
            self._aliases = {n.as_ for n in ctx.nodes.values() if isinstance(n, MapNode)}
        if alias is None and root in self._aliases:
            ctx.add("unresolved-template-var",
                    f"{ref.text} resolves to nothing here: '{root}' exists only inside its map node",
                    path, text=text, ref=ref, hint="use the map node's output, ${MAP_ID.output}, outside it")
            return
        rest = "".join("." + part for part in ref.path)
        key = (root, alias)
        if key not in self._close_names:  # one search per wrong name, however often it is used
            names = [*ctx.nodes, "inputs", *([alias] if alias else [])]
            self._close_names[key] = did_you_mean(root, names)
        close = self._close_names[key]
        hint = ("did you mean " + " or ".join(f"${{{name}{rest}}}" for name in close) + "?") if close else None
        ctx.add("unknown-node-ref", f"{ref.text} refers to '{root}', which is not a node"
                + (", an input or the map variable" if alias else " or 'inputs'"),
                path, text=text, ref=ref, hint=hint or "node ids: " + ", ".join(list(ctx.nodes)[:10]))

    def _edge(self, producer: str, consumer: str, path: PathKey, text: str | None, ref: Ref | None) -> None:
        self.graph.add_edge(producer, consumer)
        self.edge_sites.setdefault((producer, consumer), (path, text, ref))

    def _depends_on(self, owner: str, dep: str, path: PathKey) -> None:
        ctx = self.ctx
        if dep in ctx.nodes:
            self._edge(dep, owner, path, None, None)
        elif dep not in ctx.opaque_nodes:
            hint = suggestion_hint(dep, ctx.nodes) or "node ids: " + ", ".join(list(ctx.nodes)[:10])
            ctx.add("unknown-node-ref", f"depends_on names '{dep}', which is not a node", path, hint=hint)

    def _check_when(self, owner: str, path: PathKey, expr: str, alias: str | None,
                    alias_schema: Schema | None) -> None:
        try:
            condition = parse_condition(expr)
        except ExpressionError as exc:
            self.ctx.add("invalid-expression", f"when: {exc}", path, text=expr, offset=exc.offset,
                         hint=exc.hint or "conditions use literals, ${...}, comparisons, in, and, or, not")
            return
        for ref in condition.refs:
            self.resolve(owner, path, expr, ref, alias, alias_schema)

    # -- expectations of consumers -----------------------------------------------------------
    def _check_over(self, node: MapNode, path: PathKey) -> Schema | None:
        over_path = (*path, "over")
        text = node.over
        if not _REF.fullmatch(text.strip()):
            self.ctx.add("type-mismatch", f"map '{node.id}': 'over' must be one reference to a list, "
                         f"not the text '{_snippet(text, 0)}'", over_path,
                         hint="write over: ${NODE.output} or over: ${inputs.NAME}")
            self._check_text(node.id, over_path, text, None, None)
            return None
        (ref, schema), = self._check_text(node.id, over_path, text, None, None)
        if schema is _UNKNOWN or schema is None:
            return None
        kinds = types_of(schema)
        if kinds and "array" not in kinds:
            self.ctx.add("type-mismatch", f"map '{node.id}' iterates over {ref.text}, which is "
                         f"{_type_words(kinds)}, not a list", over_path, text=text, ref=ref,
                         hint=_list_hint(ref))
            return None
        return schema

    def _check_python_args(self, node: PythonNode, path: PathKey, alias: str | None,
                           alias_schema: Schema | None) -> None:
        signature = self.ctx.signature(node.function)
        if signature is None:
            return
        params = {p.name: p for p in signature.parameters}
        for name, value in node.args.items():
            arg_path = (*path, "args", name)
            param = params.get(name)
            if param is None:
                if not signature.accepts_any_keyword:
                    hint = suggestion_hint(str(name), params) or "parameters: " + ", ".join(params)
                    self.ctx.add("unknown-argument", f"{node.function} has no parameter '{name}'",
                                 arg_path, key=True, hint=hint)
                continue
            if param.schema is None:
                continue
            expected = types_of(param.schema)
            if isinstance(value, str) and _REF.fullmatch(value.strip()):
                ref = find_refs(value)[0]
                schema = self._resolved.get((arg_path, ref.start))
                if schema is _UNKNOWN or schema is None:
                    continue
                actual = types_of(schema)
                if not compatible(expected, actual):
                    self.ctx.add("type-mismatch", f"{node.function} parameter '{name}' expects "
                                 f"{_type_words(expected)}, but {ref.text} is {_type_words(actual)}",
                                 arg_path, text=value, ref=ref,
                                 hint="change the parameter's annotation or the producer's output_schema")
            elif not isinstance(value, str) and expected and not any(value_matches(value, t) for t in expected):
                self.ctx.add("type-mismatch", f"{node.function} parameter '{name}' expects "
                             f"{_type_words(expected)}, but the value is {type(value).__name__}", arg_path)
        for param in signature.parameters:
            if param.required and param.name not in node.args:
                self.ctx.add("missing-argument", f"{node.function} needs the argument '{param.name}'",
                             (*path, "args") if node.args else (*path, "function"), key=True,
                             hint=f"add args: {{{param.name}: ${{NODE.output}}}}")

    # -- whole-pipeline checks ---------------------------------------------------------------
    def _check_duplicates(self) -> None:
        ctx = self.ctx
        for node, path in ctx.iter_nodes():
            first = ctx.nodes.get(node.id)
            if first is not node:
                file, line, col = ctx.node_position(node.id)
                if ctx.source is not None:
                    where = f"at line {line}, column {col}"
                elif line:  # declared in Python
                    where = f"declared at {file}:{line}"
                else:  # plain data: no positions, but the list index
                    where = f"nodes[{ctx.paths[node.id][-1]}]"
                ctx.add("duplicate-node", f"node id '{node.id}' is used twice", (*path, "id"),
                        hint=f"the first '{node.id}' is {where}; node ids must be unique")

    def _check_inputs(self) -> None:
        for name, spec_input in self.ctx.spec.inputs.items():
            if not _IDENTIFIER.fullmatch(name):
                self.ctx.add("invalid-id", f"input name '{name}' cannot be referenced: ${{inputs.{name}}} "
                             "is not a valid reference", ("inputs", name), key=True,
                             hint="use letters, digits and '_' (not starting with a digit)")
            default = spec_input.default
            if default is not None and not value_matches(default, spec_input.type):
                self.ctx.add("type-mismatch", f"input '{name}' is declared {spec_input.type} but its default "
                             f"{default!r} is {type(default).__name__}", ("inputs", name, "default"),
                             hint=f"change the default or the type of input '{name}'")

    def _check_outputs(self) -> None:
        for name, text in self.ctx.spec.outputs.items():
            path = ("outputs", name)
            if "${" not in text:
                self.ctx.add("invalid-value", f"output '{name}' must reference a result, not the text '{text}'",
                             path, hint="write ${NODE.output} or ${NODE.output.FIELD}")
                continue
            self._check_text(None, path, text, None, None)

    def _check_cycles(self) -> None:
        ctx = self.ctx
        order = {node_id: i for i, node_id in enumerate(ctx.nodes)}
        for component in nx.strongly_connected_components(self.graph):
            if len(component) == 1:
                (only,) = component
                if not self.graph.has_edge(only, only):
                    continue
                cycle = [only]
            else:
                edges = nx.find_cycle(self.graph.subgraph(component))
                cycle = [u for u, _ in edges]
            start = min(range(len(cycle)), key=lambda i: order.get(cycle[i], 0))
            cycle = cycle[start:] + cycle[:start]
            consumer, producer = cycle[0], cycle[-1]
            path, text, ref = self.edge_sites[(producer, consumer)]
            loop = " -> ".join([*cycle, cycle[0]])
            if len(cycle) == 1:
                message = f"node '{consumer}' depends on its own output"
            else:
                message = f"{loop} (each node needs the one before it)"
            ctx.add("cycle", message, path, text=text, ref=ref,
                    hint="break the loop: remove one of these references or depends_on entries")


def _snippet(text: str, at: int) -> str:
    piece = text[at:at + 30].split("\n", 1)[0]
    return piece + ("..." if len(text) > at + 30 else "")


def _type_words(kinds: set[str] | None) -> str:
    if not kinds:
        return "anything"
    names = sorted(kinds)
    words = {"array": "a list", "object": "an object", "string": "a string", "integer": "an integer",
             "number": "a number", "boolean": "a boolean", "null": "null"}
    return " or ".join(words.get(n, n) for n in names)


def _list_hint(ref: Ref) -> str:
    if ref.root == "inputs" and ref.path:
        return f"declare input '{ref.path[0]}' with type: array"
    return f"give '{ref.root}' an output_schema with type: array, or point 'over' at a list field"
