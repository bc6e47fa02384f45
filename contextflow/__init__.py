"""contextflow: context engineering, typed LLM-call DAGs, a cost-aware scheduler and traces.

Heavy dependencies (litellm, torch, chromadb) are imported lazily by the modules that need them,
so ``import contextflow`` stays fast.
"""

from __future__ import annotations

from contextflow._offline import apply_offline_defaults

apply_offline_defaults()

__version__ = "0.1.0"

__all__ = ["__version__"]
