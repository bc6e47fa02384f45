"""``run``/``arun`` and ``resume``/``aresume``: the library's entry points for executing a pipeline."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from contextflow.core import catalog
from contextflow.cost.budget import Budget, Ledger, MemoryLedger
from contextflow.dags.imports import Allowlist
from contextflow.dags.plan import Plan, PlanError, build_plan
from contextflow.dags.spec import BudgetSpec, PipelineSpec
from contextflow.core.errors import UserError
from contextflow.runtime.cache import ResultCache
from contextflow.runtime.checkpoints import CHECKPOINT_MODES, CheckpointMode
from contextflow.runtime.context import CallLimits, RunContext
from contextflow.core.events import EventBus, EventSink
from contextflow.runtime.executor import Executor, LocalExecutor
from contextflow.runtime.gates import Gate
from contextflow.core.results import RunResult
from contextflow.runtime.scheduler import Scheduler
from contextflow.runtime.store import RunStore
from contextflow.core.state import StateDir
from contextflow.dags.loader import load_pipeline
from contextflow.dags.problems import PipelineError
from contextflow.runtime.approvals import gate_for
from contextflow.runtime.calls import litellm_module
from contextflow.cost import planner
from contextflow.runtime.llm import default_model
from contextflow.runtime.progress import watch_budget

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list, tuple),
    "object": (dict,),
}


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def load_spec(
    pipeline: PipelineSpec | str | os.PathLike[str] | Mapping[str, Any], *, allow_imports: Iterable[str] = ()
) -> PipelineSpec:
    """A spec from a spec, a dict or a YAML file (checked by ``contextflow.dags.loader``).

    A pipeline whose only problem is that some llm node names no model is accepted: at run time
    such nodes use ``--model``, ``$CONTEXTFLOW_MODEL``, a hosted model whose API key is set, or
    the embedded local model.
    """
    if isinstance(pipeline, PipelineSpec):
        return pipeline
    if isinstance(pipeline, Mapping):
        return PipelineSpec.model_validate(dict(pipeline))

    path = Path(pipeline)
    try:
        return load_pipeline(path, allow_imports=list(allow_imports))
    except PipelineError as exc:
        if exc.problems and all(p.code == "missing-model" for p in exc.problems):
            return load_pipeline(path, allow_imports=list(allow_imports), check_models=False)
        raise


def bind_inputs(spec: PipelineSpec, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inputs with defaults applied; unknown, missing or mistyped inputs are a UserError."""
    given = dict(inputs or {})
    unknown = sorted(set(given) - set(spec.inputs))
    if unknown:
        declared = ", ".join(spec.inputs) or "none"
        raise UserError(f"unknown input(s): {', '.join(unknown)}", hint=f"the pipeline declares: {declared}")
    bound: dict[str, Any] = {}
    for name, decl in spec.inputs.items():
        if name in given:
            value = given[name]
            expected = _TYPES[decl.type]
            if value is not None and (not isinstance(value, expected) or (decl.type != "boolean" and isinstance(value, bool))):
                raise UserError(
                    f"input '{name}' should be {decl.type}, got {type(value).__name__}: {value!r}"
                )
            bound[name] = value
        elif decl.default is not None:
            bound[name] = decl.default
        elif decl.required:
            raise UserError(f"missing required input '{name}'", hint=f"pass it, e.g. --input {name}=...")
        else:
            bound[name] = None
    return bound


def _budget(
    spec: PipelineSpec, override: BudgetSpec | None, spent_cost: float = 0.0, spent_tokens: int = 0,
    ledger: Ledger | None = None,
) -> Budget:
    """The run's budget. ``ledger`` (e.g. a SQLiteLedger shared by worker processes) replaces the
    in-process books; it must already hold what earlier parts of the run spent."""
    chosen = override or spec.defaults.budget
    books = ledger if ledger is not None else MemoryLedger(spent_cost, spent_tokens)
    return Budget(chosen.max_cost_usd, chosen.max_tokens, chosen.max_wall_s, ledger=books)


async def _execute(
    spec: PipelineSpec,
    inputs: dict[str, Any],
    *,
    run_id: str,
    state: StateDir,
    store: RunStore,
    sinks: Iterable[EventSink],
    trace: bool,
    executor: Executor | None,
    budget: Budget,
    model: str | None,
    workdir: Path,
    cache: bool,
    allow_imports: Iterable[str],
    gate: Gate | None,
    prior: dict[str, Any] | None = None,
    resumed: bool = False,
    checkpoint: CheckpointMode = "node",
    plan: Plan | None = None,
    autonomy: str | None = None,
    model_plan: dict[str, list[str]] | None = None,
) -> RunResult:
    if gate is None:
        gate = gate_for(spec, autonomy, store, run_id)
    try:
        plan = plan if plan is not None and plan.spec is spec else build_plan(spec)
    except PlanError as exc:
        raise UserError(f"pipeline '{spec.name}': {exc}") from None
    for name, declared in spec.models.items():
        catalog.register_model(name, **declared.model_dump())
    if any(n.kind == "llm" or (n.kind == "map" and n.node.kind == "llm") for n in spec.nodes):
        # litellm takes seconds to import: do it before the loop runs nodes, not inside the first call.

        litellm_module()
    bus = EventBus(list(sinks))
    watch_budget(bus, budget)  # BudgetWarning events as a cap nears
    own_executor = executor is None
    executor = executor or LocalExecutor()
    ctx = RunContext(
        run_id=run_id, spec=spec, bus=bus, budget=budget, executor=executor,
        limits=CallLimits(spec.defaults.provider_limits), allowlist=Allowlist.build(allow_imports), state=state,
        cache=ResultCache(state.cache_dir) if cache else None, workdir=workdir, default_model=model,
    )
    if model_plan:
        ctx.extras["model_plan"] = model_plan  # the ladders llm calls may step down (LLMCaller)
    scheduler = Scheduler(
        plan, ctx, inputs=inputs, store=store, prior=prior, gate=gate, resumed=resumed, checkpoint=checkpoint
    )
    try:
        return await scheduler.execute()
    finally:
        if own_executor:
            await executor.aclose()


async def arun(
    pipeline: Plan | PipelineSpec | str | os.PathLike[str] | Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    project: str | os.PathLike[str] | None = None,
    sinks: Iterable[EventSink] = (),
    trace: bool = True,
    executor: Executor | None = None,
    run_id: str | None = None,
    budget: BudgetSpec | None = None,
    autonomy: str | None = None,
    model: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    allow_imports: Iterable[str] = (),
    gate: Gate | None = None,
    checkpoint: CheckpointMode = "node",
    ledger: Ledger | None = None,
    plan_models: bool = False,
) -> RunResult:
    """Run a pipeline (a built plan, a spec, a YAML path or a dict) and return its result.

    ``plan_models``: before the run, cap each llm node's ladder at the rung the budget-aware
    planner (:mod:`contextflow.cost.planner`) chooses, and let calls step down a rung when what
    is left of the budget cannot cover a rung's worst case.

    Every finished node is checkpointed in the project's run store as it finishes
    (``checkpoint``: see :mod:`contextflow.runtime.checkpoints`), so an interrupted run can be
    continued with :func:`aresume`.
    """
    if checkpoint not in CHECKPOINT_MODES:
        raise UserError(f"unknown checkpoint mode '{checkpoint}'", hint=f"use one of {', '.join(CHECKPOINT_MODES)}")
    plan = pipeline if isinstance(pipeline, Plan) else None
    spec = plan.spec if plan is not None else load_spec(pipeline)  # type: ignore[arg-type]
    bound = bind_inputs(spec, inputs)
    planned: dict[str, str] | None = None
    if plan_models:
        planned = planner.plan_rungs(spec, budget, default_model=model or spec.defaults.model or default_model())
        spec, plan = planner.apply_plan(spec, planned), None
    state = StateDir.for_project(project).ensure()
    run_id = run_id or new_run_id()
    root = Path(workdir) if workdir is not None else Path(project) if project is not None else Path.cwd()
    allow_imports = list(allow_imports)
    options = {"model": model, "workdir": str(root.resolve()), "cache": cache, "allow_imports": allow_imports,
               "autonomy": autonomy, "checkpoint": checkpoint, "planned_rungs": planned}
    store = RunStore(state.runs_db)
    try:
        store.create_run(
            run_id, pipeline=spec.name, spec=spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
            inputs=bound, project=str(project) if project is not None else None,
            budget=budget.model_dump() if budget else None, options=options,
        )
        store.claim_run(run_id)
        return await _execute(
            spec, bound, run_id=run_id, state=state, store=store, sinks=sinks, trace=trace, executor=executor,
            budget=_budget(spec, budget, ledger=ledger), model=model, workdir=root, cache=cache, allow_imports=allow_imports,
            gate=gate, checkpoint=checkpoint, plan=plan, autonomy=autonomy,
            model_plan=_model_plan(spec, planned),
        )
    finally:
        store.release_run(run_id)
        store.close()


async def aresume(
    run_id: str,
    *,
    project: str | os.PathLike[str] | None = None,
    sinks: Iterable[EventSink] = (),
    trace: bool = True,
    executor: Executor | None = None,
    budget: BudgetSpec | None = None,
    gate: Gate | None = None,
    ledger: Ledger | None = None,
) -> RunResult:
    """Continue a run: nodes already finished keep their stored results; the rest run now."""
    state = StateDir.for_project(project)
    if not state.runs_db.exists():
        raise UserError(f"no run store at {state.runs_db}", hint="run a pipeline first, or pass the project folder")
    store = RunStore(state.runs_db)
    try:
        record = store.get_run(run_id)
        if record is None:
            recent = ", ".join(r.run_id for r in store.list_runs(5)) or "none"
            raise UserError(f"no run '{run_id}' in {state.runs_db}", hint=f"recent runs: {recent}")
        spec = PipelineSpec.model_validate(record.spec)
        prior = {nid: r for nid, r in store.load_nodes(run_id).items() if r.finished}
        spent_cost = sum(r.cost_usd for r in prior.values())
        spent_tokens = sum(r.usage.total_tokens for r in prior.values())
        if budget is None and record.budget:
            budget = BudgetSpec.model_validate(record.budget)
        options = record.options
        store.claim_run(run_id)
        store.set_run_status(run_id, "running")
        return await _execute(
            spec, record.inputs, run_id=run_id, state=state, store=store, sinks=sinks, trace=trace,
            executor=executor, budget=_budget(spec, budget, spent_cost, spent_tokens, ledger), model=options.get("model"),
            workdir=Path(options.get("workdir") or Path.cwd()), cache=bool(options.get("cache", True)),
            allow_imports=options.get("allow_imports") or (), gate=gate, prior=prior, resumed=True,
            checkpoint=options.get("checkpoint") or "node", autonomy=options.get("autonomy"),
            model_plan=_model_plan(spec, options.get("planned_rungs")),
        )
    finally:
        store.release_run(run_id)
        store.close()


def _model_plan(spec: PipelineSpec, planned: Mapping[str, str] | None) -> dict[str, list[str]] | None:
    if not planned:
        return None

    return planner.planned_ladders(spec)


def run(pipeline: PipelineSpec | str | os.PathLike[str] | Mapping[str, Any], inputs: Mapping[str, Any] | None = None,
        **options: Any) -> RunResult:
    """Synchronous :func:`arun`."""
    return run_sync(arun(pipeline, inputs, **options))


def resume(run_id: str, **options: Any) -> RunResult:
    """Synchronous :func:`aresume`."""
    return run_sync(aresume(run_id, **options))
