"""Every static check of a pipeline, collected in one pass with source positions.

    report = validate_text(yaml_text, file="review.yaml")
    for problem in report.problems:
        print(problem.format())        # review.yaml:12:14: unknown-node-ref: ...

The checks, in order: YAML syntax and duplicate keys (:mod:`yaml_source`); unknown, missing and
ill-typed keys (:mod:`structure`); duplicate ids, references, fields, types, ``when:``
expressions and cycles (:mod:`check_refs`); import paths and output schemas (:mod:`check_code`);
model names, context windows and budgets (:mod:`check_models`). Each is linear in nodes + edges.
The report keeps the dependency graph the reference checks built and where each node was
declared: :func:`contextflow.dags.compile` turns a clean report into a plan without a second pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import networkx as nx

from contextflow.dags.check_code import check_code
from contextflow.dags.check_context import CheckContext
from contextflow.dags.check_fields import check_fields
from contextflow.dags.check_models import ModelChecker
from contextflow.dags.check_refs import RefChecker
from contextflow.dags.imports import Allowlist
from contextflow.dags.plan import SourcePosition
from contextflow.dags.problems import Problem, sort_problems
from contextflow.dags.spec import PipelineSpec
from contextflow.dags.structure import structure
from contextflow.dags.yaml_source import SourceMap, gc_paused, parse_yaml


@dataclass
class ValidationReport:
    """The outcome of checking one pipeline: the (possibly partial) spec and every problem."""

    spec: PipelineSpec | None
    problems: list[Problem]
    source: SourceMap | None = None
    graph: nx.DiGraph | None = field(default=None, repr=False)
    #: Where each node (by id) was declared.
    positions: dict[str, SourcePosition] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems


def _allowlist(allow_imports: Iterable[str] | Allowlist) -> Allowlist:
    return allow_imports if isinstance(allow_imports, Allowlist) else Allowlist.build(allow_imports)


def validate_spec(
    spec: PipelineSpec,
    *,
    allow_imports: Iterable[str] | Allowlist = (),
    check_models: bool = True,
    origins: dict[int, tuple[str, int]] | None = None,
    _ctx: CheckContext | None = None,
) -> ValidationReport:
    """Check a spec built in Python or loaded from YAML. ``origins`` maps node indices to the
    (file, line) of the Python call that declared them, so problems point at user code."""
    ctx = _ctx or CheckContext(spec, allowlist=_allowlist(allow_imports), origins=dict(origins or {}))
    with gc_paused():
        graph = RefChecker(ctx).run()
        check_code(ctx)
        check_fields(ctx)
        if check_models:
            ModelChecker(ctx).run()
    positions = {node_id: SourcePosition(*ctx.node_position(node_id)) for node_id in ctx.nodes}
    return ValidationReport(spec, sort_problems(ctx.problems), ctx.source, graph, positions)


def validate_text(
    text: str,
    *,
    file: str | None = None,
    allow_imports: Iterable[str] | Allowlist = (),
    check_models: bool = True,
) -> ValidationReport:
    with gc_paused():
        parsed = parse_yaml(text, file=file)
    if parsed.data is None and parsed.problems:
        return ValidationReport(None, parsed.problems, parsed.source)
    return _validate_data(parsed.data, parsed.source, file, parsed.problems, allow_imports, check_models)


def validate_data(
    data: Any,
    *,
    file: str | None = None,
    allow_imports: Iterable[str] | Allowlist = (),
    check_models: bool = True,
) -> ValidationReport:
    """Check pipeline data that is already parsed (a dict built in Python): the same problems and
    messages as for the equivalent YAML file, without line and column."""
    return _validate_data(data, None, file, [], allow_imports, check_models)


def _validate_data(data: Any, source: SourceMap | None, file: str | None, earlier: list[Problem],
                   allow_imports: Iterable[str] | Allowlist, check_models: bool) -> ValidationReport:
    with gc_paused():
        structured = structure(data, source, file)
    ctx = CheckContext(
        structured.spec,
        source=source,
        file=file,
        node_paths=structured.node_paths,
        opaque_nodes=structured.opaque_nodes,
        opaque_inputs=structured.opaque_inputs,
        inputs_opaque=structured.inputs_opaque,
        allowlist=_allowlist(allow_imports),
        problems=[*earlier, *structured.problems],
    )
    report = validate_spec(structured.spec, check_models=check_models, _ctx=ctx)
    if report.problems and structured.problems:
        report.spec = None  # a partial spec must never be run
    elif report.problems:
        report.spec = structured.spec
    return report


def check_file(path: str | Path, *, allow_imports: Iterable[str] | Allowlist = (),
             check_models: bool = True) -> ValidationReport:
    """Check a YAML pipeline file; a missing or unreadable file is a problem, not an exception."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ValidationReport(None, [Problem("file-not-found", f"no such file: {path}",
                                               hint="check the path", file=str(path))])
    except (OSError, UnicodeDecodeError) as exc:
        return ValidationReport(None, [Problem("file-unreadable", f"cannot read {path}: {exc}",
                                               hint="the file must be UTF-8 text", file=str(path))])
    return validate_text(text, file=str(path), allow_imports=allow_imports, check_models=check_models)
