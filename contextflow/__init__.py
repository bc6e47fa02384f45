"""contextflow: context engineering, typed LLM-call DAGs, a cost-aware scheduler and traces.

    from contextflow import Pipeline, compile, run

Heavy dependencies (litellm, torch, chromadb) are imported lazily by the modules that need them,
and the names below are loaded on first use, so ``import contextflow`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from contextflow.core.offline import apply_offline_defaults

apply_offline_defaults()

__version__ = "0.1.0"

# Public names and the module that defines each (loaded on first access).
_EXPORTS = {
    "run": "contextflow.api", "arun": "contextflow.api", "resume": "contextflow.api", "aresume": "contextflow.api",
    "approve": "contextflow.api", "edit": "contextflow.api", "reject": "contextflow.api",
    "pending": "contextflow.api", "decisions": "contextflow.api",
    "stream": "contextflow.api", "astream": "contextflow.api",
    "Pipeline": "contextflow.dags.builder", "compile": "contextflow.dags.compiler",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'contextflow' has no attribute '{name}'")
    return getattr(import_module(module), name)
