"""Declaring pipelines in Python: a chainable builder plus Hamilton-style decorated functions.

    from pydantic import BaseModel
    from contextflow.dags import Pipeline

    class Review(BaseModel):
        findings: list[str]
        severity: str

    p = (
        Pipeline("review")
        .input("diff", str)
        .llm("review", prompt="Review this diff:\\n${inputs.diff}", model="gpt-4o-mini", output=Review)
    )

    @p.python_node
    def summary(review: Review, diff: str) -> str:      # parameters = upstream nodes or inputs
        return f"{len(review['findings'])} findings in {len(diff)} characters"

    p.output("summary", p.out.summary)
    spec = p.spec                    # the same PipelineSpec the equivalent YAML loads to
    print(p.to_yaml())

Decorated functions are registered, so the import allowlist permits them.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from pydantic import BaseModel

from contextflow.dags.imports import Allowlist, register_function, signature_of_callable
from contextflow.dags.schema_types import annotation_schema
from contextflow.dags.spec import (
    Defaults,
    InputSpec,
    LLMNode,
    MapNode,
    ModelDeclaration,
    Node,
    PipelineSpec,
    PythonNode,
    RetrieveNode,
    ToolNode,
)
from contextflow.core.errors import UserError
from contextflow.dags.validate import validate_spec
from contextflow.dags.problems import PipelineError
from contextflow.dags.loader import dump_pipeline
from contextflow.dags.loader import load_pipeline
from contextflow.dags.loader import load_pipeline_text
from contextflow.dags.structure import structure
from contextflow.dags.yaml_source import parse_yaml

F = TypeVar("F", bound=Callable[..., Any])

_PY_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object",
}


class RefText(str):
    """A reference as text (``${review.output}``) whose attributes reach deeper fields."""

    def __getattr__(self, field: str) -> "RefText":
        if field.startswith("__"):
            raise AttributeError(field)
        return RefText(self[:-1] + "." + field + "}")

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        if isinstance(index, int):
            return RefText(self[:-1] + f".{index}}}") if index >= 0 else str.__getitem__(self, index)
        return str.__getitem__(self, index)


class _Roots:
    def __init__(self, template: str) -> None:
        self._template = template

    def __getattr__(self, name: str) -> RefText:
        if name.startswith("__"):
            raise AttributeError(name)
        return RefText(self._template.format(name))

    def __getitem__(self, name: str) -> RefText:
        return RefText(self._template.format(name))


@dataclass
class _PendingPython:
    """A decorated function whose parameters are bound to nodes/inputs when the spec is built."""

    node_id: str
    func: Callable[..., Any]
    path: str
    options: dict[str, Any]
    args: dict[str, Any]
    tool: bool = False


def _schema_of(output: Any) -> dict[str, Any] | None:
    if output is None:
        return None
    if isinstance(output, dict):
        return output
    if isinstance(output, type) and issubclass(output, BaseModel):
        return output.model_json_schema()
    schema = annotation_schema(output)
    if schema is None:
        raise UserError(f"cannot turn {output!r} into an output schema",
                        hint="pass a pydantic model class, a JSON Schema dict, or a plain type")
    return schema


def _caller_outside_builder() -> tuple[str, int] | None:
    """(file, line) of the first frame outside this module: the user's declaring call."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


class Pipeline:
    """Builds a :class:`PipelineSpec` step by step; every method returns the pipeline."""

    def __init__(self, name: str, *, description: str = "", defaults: Defaults | Mapping[str, Any] | None = None,
                 models: Mapping[str, ModelDeclaration | Mapping[str, Any]] | None = None) -> None:
        self.name = name
        self.description = description
        self._defaults = defaults if isinstance(defaults, Defaults) else Defaults.model_validate(defaults or {})
        self._models = {k: ModelDeclaration.model_validate(v) for k, v in (models or {}).items()}
        self._inputs: dict[str, InputSpec] = {}
        self._outputs: dict[str, str] = {}
        self._nodes: list[Node | _PendingPython] = []
        self._origins: list[tuple[str, int] | None] = []
        self._loaded: PipelineSpec | None = None
        #: ``p.inputs.question`` -> ``${inputs.question}``; ``p.out.review.findings`` -> ``${review.output.findings}``
        self.inputs = _Roots("${{inputs.{}}}")
        self.out = _Roots("${{{}.output}}")

    # -- declarations ------------------------------------------------------------------------
    def input(self, name: str, type: Any = str, *, description: str = "", default: Any = None,
              required: bool | None = None) -> "Pipeline":
        json_type = type if isinstance(type, str) else _PY_TYPES.get(type)
        if json_type is None:
            origin = getattr(type, "__origin__", None)
            json_type = _PY_TYPES.get(origin)
        if json_type is None:
            raise UserError(f"input '{name}': unsupported type {type!r}",
                            hint="use str, int, float, bool, list or dict (or a JSON type name)")
        spec = InputSpec(type=json_type, description=description, default=default,
                         required=required if required is not None else default is None)
        self._inputs[name] = spec
        return self._touch()

    def output(self, name: str, ref: str) -> "Pipeline":
        self._outputs[name] = str(ref)
        return self._touch()

    def model(self, name: str, **declaration: Any) -> "Pipeline":
        """Declare a custom model (prices, context window) unknown to litellm's map."""
        self._models[name] = ModelDeclaration(**declaration)
        return self._touch()

    def defaults(self, **values: Any) -> "Pipeline":
        self._defaults = Defaults.model_validate({**self._defaults.model_dump(exclude_unset=True), **values})
        return self._touch()

    def add(self, node: Node) -> "Pipeline":
        self._nodes.append(node)
        self._origins.append(_caller_outside_builder())
        return self._touch()

    def llm(self, id: str, prompt: str | None = None, *, model: str | None = None,
            models: list[str] | None = None, output: Any = None, **options: Any) -> "Pipeline":
        return self.add(LLMNode(id=id, prompt=prompt, model=model, models=models,
                                output_schema=_schema_of(output), **options))

    def retrieve(self, id: str, query: str, **options: Any) -> "Pipeline":
        return self.add(RetrieveNode(id=id, query=query, **options))

    def python(self, id: str, function: Callable[..., Any] | str, *, args: Mapping[str, Any] | None = None,
               output: Any = None, **options: Any) -> "Pipeline":
        path = function if isinstance(function, str) else register_function(function)
        if output is None and callable(function):
            sig = signature_of_callable(function)
            output_schema = sig.returns if sig else None
        else:
            output_schema = _schema_of(output)
        return self.add(PythonNode(id=id, function=path, args=dict(args or {}),
                                   output_schema=output_schema, **options))

    def tool(self, id: str, tool: Callable[..., Any] | str, *, args: Mapping[str, Any] | None = None,
             side_effects: Iterable[str] = (), **options: Any) -> "Pipeline":
        path = tool if isinstance(tool, str) else register_function(tool)
        return self.add(ToolNode(id=id, tool=path, args=dict(args or {}),
                                 side_effects=list(side_effects), **options))  # type: ignore[arg-type]

    def map(self, id: str, over: str, node: Node, *, as_: str = "item", **options: Any) -> "Pipeline":
        return self.add(MapNode.model_validate({"id": id, "over": str(over), "as": as_, "node": node, **options}))

    def python_node(self, func: F | None = None, *, id: str | None = None, output: Any = None,
                    args: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Decorator: the function becomes a ``python`` node named after it. Each parameter is
        bound by name to the node of that id or the input of that name (explicit ``args`` win)."""
        return self._decorator(func, id=id, output=output, args=args, options=options, tool=False)

    def tool_node(self, func: F | None = None, *, id: str | None = None,
                  side_effects: Iterable[str] = (), args: Mapping[str, Any] | None = None,
                  **options: Any) -> Any:
        """Decorator for a side-effecting step; ``side_effects`` drives approvals."""
        options = {**options, "side_effects": list(side_effects)}
        return self._decorator(func, id=id, output=None, args=args, options=options, tool=True)

    def _decorator(self, func: Any, *, id: str | None, output: Any, args: Mapping[str, Any] | None,
                   options: dict[str, Any], tool: bool) -> Any:
        def wrap(target: F) -> F:
            path = register_function(target)
            opts = dict(options)
            if not tool:
                if output is not None:
                    opts["output_schema"] = _schema_of(output)
                else:
                    sig = signature_of_callable(target)
                    opts["output_schema"] = sig.returns if sig else None
            self._nodes.append(_PendingPython(id or target.__name__, target, path, opts, dict(args or {}), tool))
            code = getattr(target, "__code__", None)
            self._origins.append((code.co_filename, code.co_firstlineno) if code else None)
            self._touch()
            return target

        return wrap(func) if func is not None else wrap

    # -- results -----------------------------------------------------------------------------
    def _touch(self) -> "Pipeline":
        self._loaded = None
        return self

    @property
    def spec(self) -> PipelineSpec:
        if self._loaded is not None:
            return self._loaded
        node_ids = {n.node_id if isinstance(n, _PendingPython) else n.id for n in self._nodes}
        nodes = [self._bind(n, node_ids) if isinstance(n, _PendingPython) else n for n in self._nodes]
        return PipelineSpec(name=self.name, description=self.description, inputs=dict(self._inputs),
                            outputs=dict(self._outputs), defaults=self._defaults, models=dict(self._models),
                            nodes=nodes)

    def _bind(self, pending: _PendingPython, node_ids: set[str]) -> Node:
        args = dict(pending.args)
        for name, param in inspect.signature(pending.func).parameters.items():
            if name in args or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if name in node_ids and name != pending.node_id:
                args[name] = f"${{{name}.output}}"
            elif name in self._inputs:
                args[name] = f"${{inputs.{name}}}"
            elif param.default is inspect.Parameter.empty:
                raise UserError(
                    f"parameter '{name}' of {pending.path} matches no node and no input",
                    hint=f"add a node or input named '{name}', give it a default, or pass args={{'{name}': ...}}",
                )
        if pending.tool:
            return ToolNode(id=pending.node_id, tool=pending.path, args=args, **pending.options)
        return PythonNode(id=pending.node_id, function=pending.path, args=args, **pending.options)

    def validate(self, *, allow_imports: Iterable[str] | Allowlist = ()) -> list[Any]:
        """Every problem (see :mod:`contextflow.dags.validate`); empty when the pipeline is sound."""

        return validate_spec(self.spec, allow_imports=allow_imports, origins=self.origins).problems

    @property
    def origins(self) -> dict[int, tuple[str, int]]:
        """Where each node was declared, ``(file, line)`` by node index, so problems point at user code."""
        return {i: origin for i, origin in enumerate(self._origins) if origin is not None}

    def check(self, *, allow_imports: Iterable[str] | Allowlist = ()) -> PipelineSpec:
        problems = self.validate(allow_imports=allow_imports)
        if problems:
            raise PipelineError(problems, source=f"pipeline '{self.name}'")
        return self.spec

    def to_yaml(self) -> str:
        return dump_pipeline(self.spec)

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> "Pipeline":
        pipeline = cls(spec.name, description=spec.description, defaults=spec.defaults, models=spec.models)
        pipeline._inputs = dict(spec.inputs)
        pipeline._outputs = dict(spec.outputs)
        pipeline._nodes = list(spec.nodes)
        pipeline._origins = [None] * len(spec.nodes)
        pipeline._loaded = spec
        return pipeline

    @classmethod
    def from_yaml(cls, source: str | Path, *, allow_imports: Iterable[str] | Allowlist = (),
                  check: bool = True) -> "Pipeline":
        """Load from a file path or from YAML text; checked unless ``check=False``."""

        is_path = isinstance(source, Path) or (
            "\n" not in source and (Path(source).suffix in (".yaml", ".yml") or Path(source).is_file())
        )
        if check:
            spec = (load_pipeline(source, allow_imports=allow_imports) if is_path
                    else load_pipeline_text(str(source), allow_imports=allow_imports))
        else:
            text = Path(source).read_text(encoding="utf-8") if is_path else str(source)
            parsed = parse_yaml(text)
            structured = structure(parsed.data, parsed.source)
            problems = [*parsed.problems, *structured.problems]
            if problems:
                raise PipelineError(problems)
            spec = structured.spec
        return cls.from_spec(spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Pipeline):
            return self.spec == other.spec
        if isinstance(other, PipelineSpec):
            return self.spec == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, nodes={len(self._nodes)})"
