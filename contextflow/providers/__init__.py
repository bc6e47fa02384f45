"""Model providers registered with litellm's custom-provider API.

``sim/<name>`` (simulated, for tests and benchmarks), ``local/<name>`` (small models run in
process with transformers) and ``replay/<name>`` (recorded responses). Call
:func:`register_all` before calling these models through litellm; it is idempotent, and the
runtime calls it before its first model call. This is the one place that registers them.
"""

from __future__ import annotations

import threading
from types import ModuleType

from contextflow.providers import local, replay, simulated

_lock = threading.Lock()
_registered: set[str] = set()

# Each module has ``register() -> dict``: its ``litellm.custom_provider_map`` entry.
_PROVIDER_MODULES: tuple[ModuleType, ...] = (simulated, local, replay)


def register_all() -> list[str]:
    """Add every contextflow provider to ``litellm.custom_provider_map`` (once each)."""
    import litellm  # heavy: imported only when a model is about to be called

    with _lock:
        for module in _PROVIDER_MODULES:
            if module.__name__ in _registered:
                continue
            entry = module.register()
            if entry:
                existing = [e for e in litellm.custom_provider_map if e.get("provider") != entry["provider"]]
                litellm.custom_provider_map = [*existing, entry]
            _registered.add(module.__name__)
        if litellm.custom_provider_map:
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
        return sorted(e["provider"] for e in litellm.custom_provider_map)
