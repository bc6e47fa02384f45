"""Model providers registered with litellm's custom-provider API.

``sim/<name>`` (simulated, for tests and benchmarks), ``local/<name>`` (small models run in
process with transformers) and, when present, ``replay/`` (recorded responses). Call
:func:`register_all` before calling these models through litellm; it is idempotent, and the
runtime calls it before its first model call.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_lock = threading.Lock()
_registered: set[str] = set()

# Modules that contribute a provider: each has ``register() -> dict`` (a custom_provider_map entry)
# or registers itself and returns None.
_PROVIDER_MODULES = ("contextflow.providers.simulated", "contextflow.providers.local", "contextflow.providers.replay")


def register_all() -> list[str]:
    """Add every available contextflow provider to ``litellm.custom_provider_map`` (once each)."""
    import litellm

    with _lock:
        for module_name in _PROVIDER_MODULES:
            if module_name in _registered:
                continue
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                if exc.name == module_name:
                    continue  # an optional provider that is not part of this installation
                raise
            entry = module.register()
            if entry:
                existing = [e for e in litellm.custom_provider_map if e.get("provider") != entry["provider"]]
                litellm.custom_provider_map = [*existing, entry]
            _registered.add(module_name)
        if litellm.custom_provider_map:
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
        return sorted(e["provider"] for e in litellm.custom_provider_map)


def declare_default(model: str) -> Any:
    """Catalog entry for a provider's model that nobody declared (``sim/x``: default sim prices)."""
    if model.startswith("sim/"):
        from contextflow.providers import simulated

        simulated.configure(model)
        from contextflow.cost import catalog

        return catalog.lookup(model)
    return None
