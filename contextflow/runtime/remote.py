"""Running a work item in another process: the part every out-of-process executor shares.

Dask ships :func:`run_remote` with a :class:`~contextflow.runtime.executor.Work` item to a worker;
a Ray executor would ship the same function. It does three things a plain ``work.fn(**kwargs)``
does not:

- prepares the process once: contextflow's offline settings, and for model calls litellm with
  contextflow's providers (``sim/``, ``local/``, ``replay/``) registered;
- declares the called model the way the driver's catalog knows it (a pipeline's ``models:``
  entries live in the driver process), so a provider that prices from the catalog charges the
  same on a worker as locally; :func:`declarations_for` picks what to ship;
- runs coroutine work on one long-lived event loop per process rather than a fresh
  ``asyncio.run`` per call, because litellm caches its async HTTP clients, and a client bound
  to a closed loop fails on the next call;
- keeps errors classifiable. litellm's exceptions pickle but do not unpickle (their
  ``__init__`` wants keyword arguments); an engine that cannot ship an error sends a bare
  ``Exception(str)`` instead, and the scheduler would then treat a rate limit as a permanent
  failure and stop retrying. Dask 2026.x patches such errors through tblib itself; other engines
  (Ray, plain ``multiprocessing``) do not, so :func:`make_portable` registers a reducer that
  rebuilds the same class with the same attributes in any case.
"""

from __future__ import annotations

import asyncio
import copyreg
import pickle
import threading
from typing import Any

from contextflow.core import catalog
from contextflow.runtime.executor import Work
from contextflow.runtime.calls import litellm_module

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
_providers_ready = False


def _process_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="contextflow-remote-loop", daemon=True).start()
            _loop = loop
        return _loop


def prepare_process(kind: str) -> None:
    """Offline settings always; litellm with contextflow's providers before the first model call."""
    global _providers_ready

    if kind == "llm" and not _providers_ready:
        litellm_module()  # quiets litellm and calls contextflow.providers.register_all()
        _providers_ready = True


def declarations_for(work: Work) -> tuple[catalog.ModelInfo, ...]:
    """The driver's custom catalog entry for the model a call names (empty for other work)."""
    model = work.kwargs.get("model") if work.kind == "llm" else None
    info = catalog.lookup(model) if isinstance(model, str) else None
    return (info,) if info is not None and info.custom else ()


def _declare(declarations: tuple[catalog.ModelInfo, ...]) -> None:
    for info in declarations:
        if catalog.lookup(info.name) != info:
            catalog.register_model(
                info.name, input_cost_per_token=info.input_cost_per_token,
                output_cost_per_token=info.output_cost_per_token, max_input_tokens=info.max_input_tokens,
                max_output_tokens=info.max_output_tokens, quality=info.quality, provider=info.provider,
            )


def run_remote(work: Work, declarations: tuple[catalog.ModelInfo, ...] = ()) -> Any:
    """Run ``work`` to completion in this (worker) process; errors come back classifiable."""
    prepare_process(work.kind)
    _declare(declarations)
    try:
        if work.is_async:
            future = asyncio.run_coroutine_threadsafe(work.fn(**work.kwargs), _process_loop())
            return future.result()
        return work.fn(**work.kwargs)
    except Exception as exc:
        make_portable(exc)
        raise


def _rebuild_error(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def _reduce_error(error: BaseException) -> tuple[Any, ...]:
    state = {}
    for name, value in vars(error).items():
        try:
            pickle.dumps(value)
        except Exception:  # e.g. an HTTP response object: the message and status code are enough
            continue
        state[name] = value
    args = tuple(a if _picklable(a) else str(a) for a in error.args)
    return _rebuild_error, (type(error), args, state)


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
        return True
    except Exception:
        return False


def make_portable(error: BaseException) -> BaseException:
    """Make ``error`` (and errors of its class) survive pickling with their class and attributes."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        copyreg.pickle(type(error), _reduce_error)  # type: ignore[arg-type]
    return error
