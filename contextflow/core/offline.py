"""Process-wide settings that keep contextflow offline.

litellm fetches its price map at import time and chromadb/hub libraries phone home unless told
not to; setting these before any of them is imported is the only reliable way to stop that.
``setdefault`` keeps a user's explicit choice.
"""

from __future__ import annotations

import os

_OFFLINE_DEFAULTS: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "LITELLM_LOG": "ERROR",
    # Weight loading takes a second or two; its per-tensor bars would bury a command's own output
    # (contextflow shows its own progress for long work).
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def apply_offline_defaults() -> None:
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
