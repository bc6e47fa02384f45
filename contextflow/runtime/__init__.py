"""The runtime: a concurrent scheduler for pipelines, with retries, caching, budgets and resume.

It runs against the stores and event sinks it is given (a :class:`RunStore`: ``SQLiteRunStore``
on ``runs.db``, or ``MemoryRunStore``) and never prints. The entry points with
the project's default stores (run store and trace) are in :mod:`contextflow.api`::

    from contextflow import run
    result = run("pipeline.yaml", {"question": "..."})
    result.outputs, result.cost_usd, result.run_id
"""

from contextflow.core.results import NodeResult, RunResult
from contextflow.runtime.api import arun, aresume, bind_inputs, load_spec, new_run_id, resume, run
from contextflow.runtime.executor import Executor, LocalExecutor, Work
from contextflow.runtime.memory_store import MemoryRunStore
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime.store import RunStore

__all__ = [
    "Executor",
    "LocalExecutor",
    "MemoryRunStore",
    "NodeResult",
    "RunResult",
    "RunStore",
    "SQLiteRunStore",
    "Work",
    "arun",
    "aresume",
    "bind_inputs",
    "load_spec",
    "new_run_id",
    "resume",
    "run",
]
