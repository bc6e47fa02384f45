"""From raw YAML data to a spec: pydantic's errors turned into positioned problems.

When the whole document validates, this is one ``model_validate`` call. When it does not, every
pydantic error becomes a :class:`Problem` at its key's position, and a *partial* spec is built
from the sections and nodes that are valid on their own, so the graph checks can still report
their problems in the same run (a misspelt key in one node must not hide a cycle elsewhere).
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from contextflow.dags.preview import preview
from contextflow.dags.problems import Problem, suggestion_hint
from contextflow.dags.spec import Defaults, InputSpec, ModelDeclaration, Node, PipelineSpec
from contextflow.dags.yaml_source import PathKey, SourceMap

_TYPE_HINTS = (
    ("list", "write a YAML list: one item per line, each starting with '- '"),
    ("dict", "write a mapping: 'key: value' lines, indented under this key"),
    ("model", "write a mapping: 'key: value' lines, indented under this key"),
    ("int", "write a whole number"),
    ("float", "write a number"),
    ("bool", "write true or false"),
    ("string", "write text; quote it if it starts with a special character"),
)
_TYPE_ERRORS = ("_type", "_parsing", "is_instance_of", "dict_type", "list_type", "model_type")


@dataclass
class Structured:
    """A spec plus what the graph checks must know about the parts that failed."""

    spec: PipelineSpec
    node_paths: list[PathKey]
    opaque_nodes: set[str] = field(default_factory=set)
    opaque_inputs: set[str] = field(default_factory=set)
    inputs_opaque: bool = False
    problems: list[Problem] = field(default_factory=list)


def structure(data: Any, source: SourceMap | None = None, file: str | None = None) -> Structured:
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        pos = source.value(()) if source else (1, 1)
        problem = Problem(
            "wrong-type",
            f"a pipeline file must be a mapping with 'name' and 'nodes', but this document is {what}",
            hint="start with 'name: my-pipeline' and a 'nodes:' list",
            file=file, line=pos[0], column=pos[1],
        )
        return Structured(PipelineSpec(name="<invalid>"), [], inputs_opaque=True, problems=[problem])
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = [_to_problem(err, data, source, file) for err in exc.errors()]
        partial = _partial_spec(data)
        partial.problems = problems
        return partial
    return Structured(spec, [("nodes", i) for i in range(len(spec.nodes))])


@lru_cache(maxsize=None)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _partial_spec(data: dict[str, Any]) -> Structured:
    """The valid parts of an invalid document; failing nodes and inputs stay known by name."""
    opaque_inputs: set[str] = set()
    inputs: dict[str, InputSpec] = {}
    raw_inputs = data.get("inputs")
    inputs_opaque = raw_inputs is not None and not isinstance(raw_inputs, dict)
    for name, raw in (raw_inputs or {}).items() if isinstance(raw_inputs, dict) else ():
        try:
            inputs[str(name)] = InputSpec.model_validate(raw if raw is not None else {})
        except ValidationError:
            opaque_inputs.add(str(name))
    models: dict[str, ModelDeclaration] = {}
    raw_models = data.get("models")
    for name, raw in raw_models.items() if isinstance(raw_models, dict) else ():
        try:
            models[str(name)] = ModelDeclaration.model_validate(raw)
        except ValidationError:
            models[str(name)] = ModelDeclaration()
    defaults = _salvage(_adapter(Defaults), data.get("defaults") or {}, Defaults) or Defaults()
    raw_outputs = data.get("outputs")
    outputs = (
        {str(k): v for k, v in raw_outputs.items() if isinstance(v, str)}
        if isinstance(raw_outputs, dict) else {}
    )
    nodes: list[Any] = []
    paths: list[PathKey] = []
    opaque_nodes: set[str] = set()
    raw_nodes = data.get("nodes")
    node_adapter = _adapter(Node)
    for index, raw in enumerate(raw_nodes if isinstance(raw_nodes, list) else ()):
        node = _salvage(node_adapter, raw, Node)
        if node is not None:
            nodes.append(node)
            paths.append(("nodes", index))
        elif isinstance(raw, dict) and isinstance(raw.get("id"), str):
            opaque_nodes.add(raw["id"])
    name = data.get("name")
    spec = PipelineSpec.model_construct(
        name=name if isinstance(name, str) else "<unnamed>",
        description="",
        version=1,
        inputs=inputs,
        outputs=outputs,
        defaults=defaults,
        models=models,
        nodes=nodes,
    )
    return Structured(spec, paths, opaque_nodes, opaque_inputs, inputs_opaque)


def _salvage(adapter: TypeAdapter[Any], raw: Any, root: Any) -> Any:
    """Validate a part; when its only faults are unknown keys, check it without them, so a typo
    in one key does not hide the rest of the part from the graph and model checks."""
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if not all(e["type"] == "extra_forbidden" for e in errors):
            return None
        cleaned = copy.deepcopy(raw)
        for err in errors:
            path = _data_path(tuple(err["loc"]), root)
            parent: Any = cleaned
            for part in path[:-1]:
                parent = parent[part] if isinstance(parent, (dict, list)) else None
            if not path or not isinstance(parent, dict):
                return None
            parent.pop(path[-1], None)
    try:
        return adapter.validate_python(cleaned)
    except ValidationError:
        return None


def _data_path(loc: tuple[Any, ...], root: Any = PipelineSpec) -> PathKey:
    """pydantic's loc minus the discriminator tags it inserts (``nodes.0.llm.prompt``).

    A tag is recognised by type, not by spelling: a ``tool`` node has a ``tool`` key too, so
    ``nodes.0.tool.tool`` is the tag followed by the key.
    """
    path: list[Any] = []
    tp: Any = root
    for part in loc:
        tagged = _tagged_member(tp, part)
        if tagged is not None:
            tp = tagged
            continue
        path.append(part)
        tp = _step_type(tp, part) if tp is not None else None
    return tuple(path)


def _tagged_member(tp: Any, part: Any) -> Any:
    """The union member ``part`` names when ``tp`` is a union discriminated by ``kind``."""
    if tp is None or not isinstance(part, str):
        return None
    members = [alt for alt in _unwrap(tp) if isinstance(alt, type) and issubclass(alt, BaseModel)]
    if len(members) < 2:
        return None
    for member in members:
        kind = member.model_fields.get("kind")
        if kind is not None and kind.default == part:
            return member
    return None


def _to_problem(err: Any, data: dict[str, Any], source: SourceMap | None, file: str | None) -> Problem:
    kind = err["type"]
    loc = tuple(err["loc"])
    path = _data_path(loc)
    where = describe_path(path, data)
    at_key = source.key(path) if source else (0, 0)
    at_value = source.value(path) if source else (0, 0)

    def make(code: str, message: str, hint: str | None, pos: tuple[int, int]) -> Problem:
        return Problem(code, message, hint=hint, file=file, line=pos[0], column=pos[1], node=_node_id(data, path))

    last = path[-1] if path else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = suggestion_hint(str(last), allowed) if allowed else None
        if hint is None and allowed:
            hint = "allowed keys here: " + ", ".join(sorted(allowed))
        return make("unknown-key", f"unknown key '{last}' in {describe_path(path[:-1], data)}", hint, at_key)
    if kind == "missing":
        parent = path[:-1]
        pos = source.value(parent) if source else (0, 0)
        description = _field_description(loc)
        hint = f"add '{last}:'" + (f" ({description})" if description else "")
        return make("missing-key", f"{describe_path(parent, data)} is missing the required key '{last}'", hint, pos)
    if kind == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag", "")
        kinds = ["llm", "retrieve", "python", "tool", "map"]
        hint = suggestion_hint(str(tag), kinds) or "kind must be one of: " + ", ".join(kinds)
        pos = source.value((*path, "kind")) if source else (0, 0)
        return make("unknown-node-kind", f"{where} has unknown kind '{tag}'", hint, pos)
    if kind == "union_tag_not_found":
        return make("missing-key", f"{where} has no 'kind'", "add 'kind: llm' (or retrieve, python, tool, map)", at_value)
    if kind == "string_pattern_mismatch" and last in ("id", "as"):
        return make(
            "invalid-id", f"{where} must be an identifier (letters, digits, underscore; not starting with a digit)",
            "references are written ${id.output}, so ids cannot contain '-', '.' or spaces; use '_'", at_value,
        )
    if kind == "literal_error":
        expected = _expected_literals((err.get("ctx") or {}).get("expected", ""))
        value = err.get("input")
        shown = value if isinstance(value, str) and len(value) <= 60 else preview(value)
        hint = (suggestion_hint(shown, expected) if isinstance(value, str) else None) or (
            "use one of: " + ", ".join(expected))
        return make("invalid-value", f"{where}: '{shown}' is not one of {', '.join(expected)}", hint, at_value)
    if any(kind.endswith(suffix) or kind == suffix for suffix in _TYPE_ERRORS):
        hint = next((h for prefix, h in _TYPE_HINTS if kind.startswith(prefix)), None)
        return make("wrong-type", f"{where}: {err['msg'].lower()} (got {preview(err.get('input'))})", hint, at_value)
    return make("invalid-value", f"{where}: {err['msg'][0].lower()}{err['msg'][1:]}", None, at_value)


def _expected_literals(text: str) -> list[str]:
    return [part for i, part in enumerate(text.split("'")) if i % 2 == 1]


def describe_path(path: PathKey, data: Any) -> str:
    """A readable name for a place in the document: ``node 'review' key 'prompt'``."""
    if not path:
        return "the pipeline"
    if path[0] == "nodes" and len(path) >= 2 and isinstance(path[1], int):
        raw = data.get("nodes") if isinstance(data, dict) else None
        node = raw[path[1]] if isinstance(raw, list) and path[1] < len(raw) else None
        node_id = node.get("id") if isinstance(node, dict) else None
        head = f"node '{node_id}'" if isinstance(node_id, str) else f"nodes[{path[1]}]"
        rest = path[2:]
        if rest and rest[0] == "node" and isinstance(node, dict) and node.get("kind") == "map":
            head, rest = f"the inner node of map {head[5:]}", rest[1:]
        return head if not rest else f"{head} key '{'.'.join(map(str, rest))}'"
    return "key '" + ".".join(map(str, path)) + "'"


def _unwrap(tp: Any) -> list[Any]:
    """The concrete alternatives of a type: Annotated and Optional stripped, unions split."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [tp]


def _step_type(tp: Any, part: Any) -> Any:
    for alt in _unwrap(tp):
        origin = typing.get_origin(alt)
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            kind_field = alt.model_fields.get("kind")
            if isinstance(part, str) and kind_field is not None and kind_field.default == part:
                return alt
            for name, info in alt.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        elif origin is list and isinstance(part, int):
            return typing.get_args(alt)[0]
        elif origin is dict:
            return typing.get_args(alt)[1]
    return None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    tp: Any = PipelineSpec
    for part in loc:
        tp = _step_type(tp, part)
        if tp is None:
            return None
    models = [alt for alt in _unwrap(tp) if isinstance(alt, type) and issubclass(alt, BaseModel)]
    return models[0] if len(models) == 1 else None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _field_description(loc: tuple[Any, ...]) -> str | None:
    model = _model_at(loc[:-1])
    if model is None:
        return None
    for name, info in model.model_fields.items():
        if loc[-1] in (name, info.alias):
            return info.description
    return None


def _node_id(data: Any, path: tuple[Any, ...]) -> str | None:
    """The id of the node ``path`` lies in (``("nodes", i, ...)``), when it has one."""
    if len(path) < 2 or path[0] != "nodes" or not isinstance(path[1], int) or not isinstance(data, dict):
        return None
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not 0 <= path[1] < len(nodes) or not isinstance(nodes[path[1]], dict):
        return None
    node_id = nodes[path[1]].get("id")
    return node_id if isinstance(node_id, str) else None
