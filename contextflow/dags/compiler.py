"""``compile()``: every static check, once, then an immutable :class:`~contextflow.dags.plan.Plan`.

    from contextflow.dags import compile

    plan = compile("dags/review.yaml")     # or a builder Pipeline, a PipelineSpec, a dict, a Plan
    plan.order, plan.deps["report"]        # the dependency graph, in topological order
    plan.where("review")                   # 'dags/review.yaml:12:9', for messages about the node

Anything but a plan is checked with exactly the problems and messages ``contextflow validate``
reports (for a dict, without line and column; for a builder pipeline, at the Python line that
declared each node), and a pipeline with any problem raises :class:`PipelineError` listing all of
them. One problem is let through: an llm node naming no model when the pipeline has no default
(``missing-model``), because model choice gives every such node a model when it runs
(:mod:`contextflow.cost.model_choice`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

from contextflow.core.errors import UserError
from contextflow.dags.builder import Pipeline
from contextflow.dags.imports import Allowlist
from contextflow.dags.plan import Plan, make_plan
from contextflow.dags.problems import PipelineError
from contextflow.dags.spec import PipelineSpec
from contextflow.dags.validate import ValidationReport, check_file, validate_data, validate_spec

#: Everything :func:`compile` (and so ``run``) accepts.
PipelineLike = Union[Plan, Pipeline, PipelineSpec, Mapping[str, Any], str, os.PathLike[str]]

#: Problems a pipeline may have and still run: a node without a model gets one at run time.
RUNTIME_RESOLVED = frozenset({"missing-model"})


def compile(  # noqa: A001 - the name says what it does; it shadows the builtin only where imported
    pipeline: PipelineLike,
    *,
    allow_imports: Iterable[str] | Allowlist = (),
    check_models: bool = True,
) -> Plan:
    """A checked, immutable plan of ``pipeline``; a plan is returned as it is.

    ``allow_imports``: module prefixes python and tool nodes may import, beyond the defaults.
    ``check_models``: also check model names, context windows and budgets (``validate
    --no-models`` skips them).
    """
    if isinstance(pipeline, Plan):
        return pipeline
    report, source = _check(pipeline, allow_imports, check_models)
    if report.spec is None or report.graph is None or any(p.code not in RUNTIME_RESOLVED for p in report.problems):
        raise PipelineError(report.problems, source=source)
    return make_plan(report.spec, report.graph, report.positions)


def _check(pipeline: Any, allow_imports: Iterable[str] | Allowlist,
           check_models: bool) -> tuple[ValidationReport, str]:
    if isinstance(pipeline, Pipeline):
        # A copy: the plan must not change when the builder (or the nodes it holds) changes later.
        spec = pipeline.spec.model_copy(deep=True)
        report = validate_spec(spec, allow_imports=allow_imports, check_models=check_models,
                               origins=pipeline.origins)
        return report, f"pipeline '{spec.name}'"
    if isinstance(pipeline, PipelineSpec):
        spec = pipeline.model_copy(deep=True)
        return validate_spec(spec, allow_imports=allow_imports, check_models=check_models), f"pipeline '{spec.name}'"
    if isinstance(pipeline, Mapping):
        data = copy.deepcopy(dict(pipeline))
        name = data.get("name") if isinstance(data.get("name"), str) else None
        report = validate_data(data, allow_imports=allow_imports, check_models=check_models)
        return report, f"pipeline '{name}'" if name else "pipeline"
    if isinstance(pipeline, (str, os.PathLike)):
        path = Path(pipeline)
        return check_file(path, allow_imports=allow_imports, check_models=check_models), str(path)
    raise UserError(
        f"cannot run a {type(pipeline).__name__}: expected a pipeline",
        hint="pass a contextflow Pipeline, a PipelineSpec, a dict, the path of a YAML file, or a compiled Plan",
    )
