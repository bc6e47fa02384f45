"""The model catalog: prices and context windows from litellm's bundled map, plus custom models.

litellm's map is read offline (``LITELLM_LOCAL_MODEL_COST_MAP`` is set by ``contextflow``), so
prices are those of the installed litellm release. Models litellm does not know (local or
self-hosted ones) are declared with :func:`register_model` or a pipeline's ``models:`` section.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from contextflow.core.errors import UserError



@dataclass(frozen=True)
class ModelInfo:
    name: str
    provider: str
    input_cost_per_token: float
    output_cost_per_token: float
    max_input_tokens: int
    max_output_tokens: int
    quality: float | None = None
    custom: bool = False

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * self.input_cost_per_token + output_tokens * self.output_cost_per_token


class UnknownModelError(KeyError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(
            f"unknown model '{name}': litellm's bundled price map does not list it.{hint} "
            "Declare it under 'models:' in the pipeline or with contextflow.cost.register_model()."
        )

    def __str__(self) -> str:
        return str(self.args[0])


_custom: dict[str, ModelInfo] = {}
_EFFORT_SUFFIXES = ("minimal", "low", "medium", "high")  # the same list as rungs.EFFORTS

#: The project's own litellm providers (see ``contextflow.providers``): their models are not in
#: litellm's price map and have no tokenizer there.
OWN_PROVIDERS = ("sim", "local", "replay")
#: What a ``sim/<name>`` model costs until it is configured: sim models cost something so budgets
#: have work to do.
SIM_INPUT_COST = 1e-6
SIM_OUTPUT_COST = 2e-6


def _sim_default(name: str) -> ModelInfo:
    return ModelInfo(name=name, provider="sim", input_cost_per_token=SIM_INPUT_COST,
                     output_cost_per_token=SIM_OUTPUT_COST, max_input_tokens=128_000, max_output_tokens=4096,
                     custom=True)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _litellm_map() -> dict[str, dict[str, Any]]:
    """litellm's bundled price map. Read from its JSON file when litellm is not imported yet:
    importing litellm takes seconds, and ``contextflow validate`` should not pay that."""
    import sys

    if "litellm" not in sys.modules:
        bundled = _bundled_price_file()
        if bundled is not None:
            table = json.loads(bundled.read_text(encoding="utf-8"))
            return {k: v for k, v in table.items() if k != "sample_spec" and isinstance(v, dict)}
    import litellm

    return {k: v for k, v in litellm.model_cost.items() if k != "sample_spec" and isinstance(v, dict)}


def _bundled_price_file() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(spec.submodule_search_locations[0]) / "model_prices_and_context_window_backup.json"
    return candidate if candidate.is_file() else None


def _provider_of(name: str, entry: dict[str, Any] | None) -> str:
    if entry and entry.get("litellm_provider"):
        return str(entry["litellm_provider"])
    return name.split("/", 1)[0] if "/" in name else "unknown"


def register_model(
    name: str,
    *,
    input_cost_per_token: float = 0.0,
    output_cost_per_token: float = 0.0,
    max_input_tokens: int = 8192,
    max_output_tokens: int = 2048,
    quality: float | None = None,
    provider: str | None = None,
) -> ModelInfo:
    """Declare a model unknown to litellm (a local model costs 0 by default)."""
    info = ModelInfo(
        name=name,
        provider=provider or _provider_of(name, None),
        input_cost_per_token=input_cost_per_token,
        output_cost_per_token=output_cost_per_token,
        max_input_tokens=max_input_tokens,
        max_output_tokens=max_output_tokens,
        quality=quality,
        custom=True,
    )
    with _lock:
        _custom[name] = info
    return info


def known_model_names() -> list[str]:
    return sorted(set(_litellm_map()) | set(_custom))


def lookup(name: str) -> ModelInfo | None:
    """The model's info, or None when neither litellm nor a declaration knows it."""
    if name in _custom:
        return _custom[name]
    table = _litellm_map()
    entry = table.get(name)
    base, _, effort = name.rpartition("@")
    if entry is None and base and effort in _EFFORT_SUFFIXES:
        # A ladder rung ``MODEL@effort`` is the same model (same prices and window) at more test-time compute.
        found = lookup(base)
        return None if found is None else ModelInfo(**{**found.__dict__, "name": name})
    if entry is None and "/" in name:
        entry = table.get(name.split("/", 1)[1])
    if entry is None:
        return _sim_default(name) if name.startswith("sim/") else None
    max_in = entry.get("max_input_tokens") or entry.get("max_tokens") or 8192
    max_out = entry.get("max_output_tokens") or entry.get("max_tokens") or 4096
    return ModelInfo(
        name=name,
        provider=_provider_of(name, entry),
        input_cost_per_token=float(entry.get("input_cost_per_token") or 0.0),
        output_cost_per_token=float(entry.get("output_cost_per_token") or 0.0),
        max_input_tokens=int(max_in),
        max_output_tokens=int(max_out),
    )


def get(name: str) -> ModelInfo:
    """The model's info; raises :class:`UnknownModelError` with did-you-mean suggestions."""
    info = lookup(name)
    if info is None:
        import difflib

        raise UnknownModelError(name, difflib.get_close_matches(name, known_model_names(), n=3))
    return info


# -- quality priors ------------------------------------------------------------------------------
# Shipped as data (quality_priors.json) so they can be revised without a code change; users
# override them per model with set_quality(), a pipeline's models: declaration, or a JSON file
# named by CONTEXTFLOW_QUALITY_PRIORS.

DEFAULT_QUALITY = 0.5
_quality_overrides: dict[str, float] = {}


@lru_cache(maxsize=1)
def _shipped_priors() -> dict[str, Any]:
    import os

    data = json.loads((Path(__file__).with_name("quality_priors.json")).read_text(encoding="utf-8"))
    extra = os.environ.get("CONTEXTFLOW_QUALITY_PRIORS")
    if extra:
        try:
            data.update(json.loads(Path(extra).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise UserError(f"CONTEXTFLOW_QUALITY_PRIORS={extra} could not be read: {exc}",
                            hint="point it at a JSON object of model name -> quality in [0, 1]") from None
    return data


def set_quality(name: str, quality: float) -> None:
    """Override a model's prior quality (in [0, 1]) for this process."""
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality of '{name}' must lie in [0, 1], got {quality}")
    with _lock:
        _quality_overrides[name] = float(quality)


def quality_of(name: str) -> float:
    """The model's prior quality in [0, 1]; a rung like ``o3-mini@high`` adds its effort's offset.

    Order: set_quality(), a register_model(quality=...) declaration, the shipped priors (exact
    name, the name without its provider prefix, then the longest matching ``prefix*`` pattern),
    else DEFAULT_QUALITY.
    """
    base, _, effort = name.partition("@")
    offset = float(_shipped_priors().get("_effort", {}).get(effort, 0.0)) if effort else 0.0
    return min(1.0, max(0.0, _base_quality(base) + offset))


def _base_quality(name: str) -> float:
    if name in _quality_overrides:
        return _quality_overrides[name]
    custom = _custom.get(name)
    if custom is not None and custom.quality is not None:
        return custom.quality
    priors = _shipped_priors()
    candidates = [name] + ([name.split("/", 1)[1]] if "/" in name else [])
    for candidate in candidates:
        value = priors.get(candidate)
        if isinstance(value, (int, float)):
            return float(value)
    patterns = [k for k in priors if k.endswith("*") and any(c.startswith(k[:-1]) for c in candidates)]
    if patterns:
        return float(priors[max(patterns, key=len)])
    return DEFAULT_QUALITY
