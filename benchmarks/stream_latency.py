"""Time to first token through ``contextflow.astream()`` against the provider's own stream.

For each model (the local ``local/smollm2-135m`` and a sim model with a fixed latency) the same
prompt is sent ``--repeats`` times each way, alternating:

* direct: ``litellm.acompletion(stream=True)``, timed from the call to its first content chunk;
* astream: a one-node pipeline through ``contextflow.astream`` with the library's default stores
  (run store and trace), timed from the call to its first TokenDelta, so the figure includes
  starting the run (run record, plan, budget, events) as well as the streamed call.

The median of each is reported, with the ratio astream / direct and whether it is within the
target (at most 1.05x plus 5 ms). The astream figure is also split in two: starting the run (up
to the model call's AttemptStarted) and the streamed call itself (AttemptStarted to the first
TokenDelta), so the cost of the streaming path shows apart from the cost of recording a run.
On a busy machine the medians move with the load; the best-of ratio (fastest astream over
fastest direct) is printed too, as it moves less. The local model's converted weights are read from
``--models-dir`` (or ``$CONTEXTFLOW_MODELS_DIR``, else the library's default folder); the first
use converts them there (about 20 s). Runs go to a temporary state folder.

    python benchmarks/stream_latency.py [--repeats 7] [--models-dir DIR] [--json]

With ``--json`` the last line is one JSON object: ``first_token_ms`` and ``direct_first_token_ms``
(local model), ``ratio``, ``within_target``, ``run_start_ms``, ``call_first_token_ms``, and the
same with a ``sim_`` prefix for the sim model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import contextflow  # noqa: F401  (offline defaults before litellm is imported)

LOCAL = "local/smollm2-135m"
SIM = "sim/stream-bench"
PROMPT = "Name three colours of the rainbow."
MAX_TOKENS = 16


async def _direct(model: str) -> float:
    from contextflow.runtime.calls import litellm_module

    litellm = litellm_module()
    started = time.perf_counter()
    stream = await litellm.acompletion(model=model, messages=[{"role": "user", "content": PROMPT}], stream=True,
                                       stream_options={"include_usage": True}, max_tokens=MAX_TOKENS)
    first = None
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    if first is None:
        raise SystemExit(f"{model} streamed no text")
    return first


async def _through_astream(model: str) -> tuple[float, float]:
    """(seconds to the first token, seconds to the model call's start)."""
    from contextflow import astream
    from contextflow.core.events import AttemptStarted, RunFinished, TokenDelta

    spec = {"name": "stream-latency",
            "nodes": [{"id": "answer", "kind": "llm", "model": model, "prompt": PROMPT, "max_output_tokens": MAX_TOKENS}]}
    started = time.perf_counter()
    first = call = None
    async with astream(spec, cache=False) as events:
        async for event in events:
            if call is None and isinstance(event, AttemptStarted):
                call = time.perf_counter() - started
            if first is None and isinstance(event, TokenDelta):
                first = time.perf_counter() - started
            elif isinstance(event, RunFinished) and event.status != "succeeded":
                raise SystemExit(f"the run ended {event.status}: {event.error}")
    if first is None or call is None:
        raise SystemExit(f"{model}: the run streamed no token")
    return first, call


async def _measure(model: str, repeats: int) -> dict[str, float]:
    await _direct(model)  # warm: the model is loaded, litellm's first-call set-up is done
    await _through_astream(model)
    direct, streamed, starts = [], [], []
    for _ in range(repeats):
        direct.append(await _direct(model))
        first, call = await _through_astream(model)
        streamed.append(first)
        starts.append(call)
    d, s = statistics.median(direct), statistics.median(streamed)
    call_part = statistics.median(f - c for f, c in zip(streamed, starts))
    return {"direct_ms": d * 1000, "astream_ms": s * 1000, "ratio": s / d, "within_target": s <= 1.05 * d + 0.005,
            "best_ratio": min(streamed) / min(direct),
            "run_start_ms": statistics.median(starts) * 1000, "call_ms": call_part * 1000,
            "call_within_target": call_part <= 1.05 * d + 0.005}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models-dir", type=Path, default=None, help="folder of the local model's converted weights")
    parser.add_argument("--sim-latency-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from contextflow.providers import local, simulated

    models_dir = args.models_dir or Path(os.environ.get(local.MODELS_DIR_ENV) or local.models_dir())
    os.environ[local.MODELS_DIR_ENV] = str(models_dir)  # chosen before the state folder moves to a temp one
    os.environ["CONTEXTFLOW_HOME"] = tempfile.mkdtemp(prefix="cf-stream-")
    simulated.configure(SIM, latency_ms=args.sim_latency_ms, chunk_delay_ms=2.0)

    results = {model: asyncio.run(_measure(model, args.repeats)) for model in (LOCAL, SIM)}
    for model, r in results.items():
        print(f"{model}: first token direct {r['direct_ms']:.1f} ms, through astream() {r['astream_ms']:.1f} ms,"
              f" ratio {r['ratio']:.3f} ({'within' if r['within_target'] else 'outside'} 1.05x + 5 ms;"
              f" best of {args.repeats}: {r['best_ratio']:.3f});"
              f" of which starting the run {r['run_start_ms']:.1f} ms and the streamed call {r['call_ms']:.1f} ms"
              f" ({'within' if r['call_within_target'] else 'outside'} the target)")
    if args.json:
        loc, sim = results[LOCAL], results[SIM]
        print(json.dumps({
            "first_token_ms": round(loc["astream_ms"], 2), "direct_first_token_ms": round(loc["direct_ms"], 2),
            "ratio": round(loc["ratio"], 4), "within_target": loc["within_target"], "best_ratio": round(loc["best_ratio"], 4),
            "run_start_ms": round(loc["run_start_ms"], 2), "call_first_token_ms": round(loc["call_ms"], 2),
            "call_within_target": loc["call_within_target"],
            "sim_first_token_ms": round(sim["astream_ms"], 2), "sim_direct_first_token_ms": round(sim["direct_ms"], 2),
            "sim_ratio": round(sim["ratio"], 4), "sim_within_target": sim["within_target"],
            "sim_best_ratio": round(sim["best_ratio"], 4),
            "sim_run_start_ms": round(sim["run_start_ms"], 2), "sim_call_first_token_ms": round(sim["call_ms"], 2),
            "sim_call_within_target": sim["call_within_target"],
            "repeats": args.repeats, "models_dir": str(models_dir),
        }))


if __name__ == "__main__":
    main()
