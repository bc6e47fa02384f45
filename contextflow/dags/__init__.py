"""Pipelines as typed DAGs: the spec, YAML loading with positions, static checks, the Python builder,
and ``compile()``, which checks a pipeline once and returns the immutable plan the runtime runs.

    from contextflow.dags import Pipeline, compile, load_pipeline, validate_file
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Pipeline": "contextflow.dags.builder",
    "PipelineSpec": "contextflow.dags.spec",
    "PipelineError": "contextflow.dags.problems",
    "Problem": "contextflow.dags.problems",
    "load_pipeline": "contextflow.dags.loader",
    "load_pipeline_text": "contextflow.dags.loader",
    "check_pipeline": "contextflow.dags.loader",
    "dump_pipeline": "contextflow.dags.loader",
    "validate_file": "contextflow.dags.loader",
    "validate_spec": "contextflow.dags.validate",
    "validate_text": "contextflow.dags.validate",
    "evaluate_condition": "contextflow.dags.expressions",
    "compile": "contextflow.dags.compiler",
    "Plan": "contextflow.dags.plan",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, so `import contextflow.dags.spec` stays cheap for modules that need only the models.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'contextflow.dags' has no attribute '{name}'")
    return getattr(import_module(module), name)
