"""Loading pipelines from YAML (checked, with positions) and writing them back.

    spec = load_pipeline("dags/review.yaml")          # PipelineSpec, or PipelineError listing
                                                       # every problem as file:line:col
    text = dump_pipeline(spec)                         # YAML that loads back to an equal spec

:func:`load_pipeline` runs every static check (see :mod:`contextflow.dags.validate`); a pipeline
that loads is one the scheduler can run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from contextflow.dags.imports import Allowlist
from contextflow.dags.problems import PipelineError, Problem
from contextflow.dags.spec import PipelineSpec
from contextflow.dags.validate import check_file, validate_spec, validate_text

__all__ = [
    "PipelineError",
    "Problem",
    "check_pipeline",
    "dump_pipeline",
    "load_pipeline",
    "load_pipeline_text",
    "pipeline_to_data",
    "validate_file",
    "Pipeline",
]


def load_pipeline(path: str | Path, *, allow_imports: Iterable[str] | Allowlist = (),
                  check_models: bool = True) -> PipelineSpec:
    """Read, parse and check a YAML pipeline; raises :class:`PipelineError` with ALL problems."""
    report = check_file(path, allow_imports=allow_imports, check_models=check_models)
    if report.problems or report.spec is None:
        raise PipelineError(report.problems, source=str(path))
    return report.spec


def load_pipeline_text(text: str, *, file: str | None = None,
                       allow_imports: Iterable[str] | Allowlist = (),
                       check_models: bool = True) -> PipelineSpec:
    report = validate_text(text, file=file, allow_imports=allow_imports, check_models=check_models)
    if report.problems or report.spec is None:
        raise PipelineError(report.problems, source=file)
    return report.spec


def validate_file(path: str | Path, *, allow_imports: Iterable[str] | Allowlist = ()) -> list[Problem]:
    """Every problem of a YAML pipeline file (empty when it is valid)."""
    return check_file(path, allow_imports=allow_imports).problems


def check_pipeline(spec: PipelineSpec, *, allow_imports: Iterable[str] | Allowlist = (),
                   check_models: bool = True) -> PipelineSpec:
    """Run the static checks on a spec built in Python; raises :class:`PipelineError`."""
    report = validate_spec(spec, allow_imports=allow_imports, check_models=check_models)
    if report.problems:
        raise PipelineError(report.problems, source=f"pipeline '{spec.name}'")
    return spec


# -- writing ---------------------------------------------------------------------------------

_FIRST_KEYS = ("id", "kind")


def pipeline_to_data(spec: PipelineSpec) -> dict[str, Any]:
    """The spec as plain data with defaults left out (what a person would write)."""
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data.setdefault("name", spec.name)
    for name, declared in spec.inputs.items():  # a type reads better written out, even the default
        data.setdefault("inputs", {})[name] = {"type": declared.type, **data.get("inputs", {}).get(name, {})}
    nodes = []
    for node, raw in zip(spec.nodes, data.get("nodes", [])):
        raw = _node_first(raw, node.kind)
        if node.kind == "map":
            raw["node"] = _node_first(raw.get("node", {}), node.node.kind)  # type: ignore[union-attr]
        nodes.append(raw)
    if nodes:
        data["nodes"] = nodes
    ordered = {k: data[k] for k in ("name", "description", "version", "inputs", "outputs", "defaults",
                                     "models", "nodes") if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    return ordered


def _node_first(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    # The kind is a discriminator: it must be written even though it equals the default.
    raw = {**raw, "kind": kind}
    head = {k: raw[k] for k in _FIRST_KEYS if k in raw}
    return {**head, **{k: v for k, v in raw.items() if k not in head}}


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks, keys in declaration order."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def dump_pipeline(spec: PipelineSpec) -> str:
    """YAML text for ``spec``; loading it gives back an equal spec."""
    return yaml.dump(pipeline_to_data(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)
