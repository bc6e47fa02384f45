"""The runtime: a concurrent scheduler for pipelines, with retries, caching, budgets and resume.

    from contextflow.runtime import run
    result = run("pipeline.yaml", {"question": "..."})
    result.outputs, result.cost_usd, result.run_id
"""

from contextflow.runtime.api import arun, aresume, bind_inputs, load_spec, new_run_id, resume, run
from contextflow.runtime.approvals import approve, decisions, edit, pending, reject
from contextflow.runtime.executor import Executor, LocalExecutor, Work
from contextflow.runtime.results import NodeResult, RunResult
from contextflow.runtime.store import RunStore

__all__ = [
    "Executor",
    "LocalExecutor",
    "NodeResult",
    "RunResult",
    "RunStore",
    "Work",
    "approve",
    "arun",
    "aresume",
    "bind_inputs",
    "decisions",
    "edit",
    "load_spec",
    "new_run_id",
    "pending",
    "reject",
    "resume",
    "run",
]
