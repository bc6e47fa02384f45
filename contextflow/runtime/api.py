"""``run``/``arun`` and ``resume``/``aresume``: the engine's entry points for executing a pipeline.

They run against the run store and event sinks they are given (a ``RunStore``: the project's
``runs.db``, or a ``MemoryRunStore``) and never choose a store themselves; :mod:`contextflow.api`
is where the project's defaults are opened.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from contextflow.core import catalog
from contextflow.cost.budget import Budget, Ledger, MemoryLedger
from contextflow.cost.model_choice import ModelChoice, ModelOptions, choose_models
from contextflow.dags.compiler import PipelineLike, compile
from contextflow.dags.imports import Allowlist
from contextflow.dags.plan import Plan
from contextflow.dags.spec import BudgetSpec, PipelineSpec
from contextflow.core.db import StateError
from contextflow.core.errors import UserError
from contextflow.runtime.cache import MemoryResultCache, ResultCache
from contextflow.runtime.checkpoints import CHECKPOINT_MODES, CheckpointMode
from contextflow.runtime.context import CallLimits, RunContext
from contextflow.core.events import EventBus, EventSink
from contextflow.runtime.executor import Executor, LocalExecutor
from contextflow.runtime.gates import Gate
from contextflow.runtime.interrupts import run_sync
from contextflow.core.results import RunResult
from contextflow.runtime.scheduler import Scheduler
from contextflow.runtime.store import RunStore
from contextflow.core.state import StateDir
from contextflow.runtime.approvals import gate_for, granted
from contextflow.runtime.calls import litellm_module
from contextflow.runtime.progress import watch_budget

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list, tuple),
    "object": (dict,),
}


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def load_spec(pipeline: PipelineLike, *, allow_imports: Iterable[str] = ()) -> PipelineSpec:
    """The checked spec of anything :func:`contextflow.dags.compile` accepts.

    A pipeline whose only problem is that some llm node names no model is accepted: at run time
    such nodes get one from :mod:`contextflow.cost.model_choice` (``model=``/``--model``,
    ``$CONTEXTFLOW_MODEL``, a hosted model whose API key is set, or the embedded local model).
    """
    return compile(pipeline, allow_imports=list(allow_imports)).spec


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
    plan: Plan,
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
    result_cache: ResultCache | MemoryResultCache | None = None,
    prior: dict[str, Any] | None = None,
    resumed: bool = False,
    checkpoint: CheckpointMode = "node",
    autonomy: str | None = None,
    model_plan: dict[str, list[str]] | None = None,
) -> RunResult:
    spec = plan.spec
    if gate is None:
        gate = gate_for(spec, autonomy, store, run_id)
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
        limits=CallLimits(spec.defaults.provider_limits, budget=budget), allowlist=Allowlist.build(allow_imports), state=state,
        cache=(result_cache if result_cache is not None else ResultCache(state.cache_dir)) if cache else None,  # type: ignore[arg-type]
        workdir=workdir, default_model=model,
        model_plan={nid: tuple(ladder) for nid, ladder in (model_plan or {}).items()},
    )
    scheduler = Scheduler(
        plan, ctx, inputs=inputs, store=store, prior=prior, gate=gate, resumed=resumed, checkpoint=checkpoint
    )
    try:
        return await scheduler.execute()
    finally:
        if own_executor:
            await executor.aclose()


async def arun(
    pipeline: PipelineLike,
    inputs: Mapping[str, Any] | None = None,
    *,
    store: RunStore,
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
    result_cache: ResultCache | MemoryResultCache | None = None,
    allow_imports: Iterable[str] = (),
    gate: Gate | None = None,
    checkpoint: CheckpointMode = "node",
    ledger: Ledger | None = None,
    plan_models: bool = False,
    ladder: str | Sequence[str] | None = None,
) -> RunResult:
    """Run a pipeline (a builder ``Pipeline``, a compiled ``Plan``, a spec, a dict or a YAML path)
    and return its result. Anything but a plan is checked first (:func:`contextflow.dags.compile`):
    a pipeline with problems raises ``PipelineError`` before any model is called.

    ``model``/``ladder`` choose models as ``--model``/``--ladder`` do on the command line
    (:mod:`contextflow.cost.model_choice`, which also reads ``$CONTEXTFLOW_MODEL``,
    ``$CONTEXTFLOW_LADDER``, API keys and ``$CONTEXTFLOW_OFFLINE``).

    ``plan_models``: before the run, cap each llm node's ladder at the rung the budget-aware
    planner (:mod:`contextflow.cost.planner`) chooses, and let calls step down a rung when what
    is left of the budget cannot cover a rung's worst case.

    Every finished node is checkpointed in ``store`` as it finishes (``checkpoint``: see
    :mod:`contextflow.runtime.checkpoints`), so an interrupted run can be continued with
    :func:`aresume` on the same store. ``cache``: reuse results of identical earlier calls, from
    ``result_cache`` (default: the files under the project's state folder).
    """
    if checkpoint not in CHECKPOINT_MODES:
        raise UserError(f"unknown checkpoint mode '{checkpoint}'", hint=f"use one of {', '.join(CHECKPOINT_MODES)}")
    allow_imports = list(allow_imports)
    compiled = compile(pipeline, allow_imports=allow_imports)
    choice = choose_models(compiled.spec, ModelOptions.from_environment(model=model, ladder=ladder),
                           plan=plan_models, budget=budget)
    plan = compiled.with_spec(choice.spec)
    spec = plan.spec
    bound = bind_inputs(spec, inputs)
    state = StateDir.for_project(project)
    run_id = run_id or new_run_id()
    root = Path(workdir) if workdir is not None else Path(project) if project is not None else Path.cwd()
    options = {"model": model, "workdir": str(root.resolve()), "cache": cache, "allow_imports": allow_imports,
               "autonomy": autonomy, "checkpoint": checkpoint, "model_options": choice.options.to_dict(),
               "planned_rungs": dict(choice.planned) if choice.planned else None}
    store.create_run(
        run_id, pipeline=spec.name, spec=spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
        inputs=bound, project=str(project) if project is not None else None,
        budget=budget.model_dump() if budget else None, options=options,
    )
    store.claim_run(run_id)
    try:
        return await _execute(
            plan, bound, run_id=run_id, state=state, store=store, sinks=sinks, trace=trace, executor=executor,
            budget=_budget(spec, budget, ledger=ledger), model=model, workdir=root, cache=cache, allow_imports=allow_imports,
            gate=gate, checkpoint=checkpoint, autonomy=autonomy, result_cache=result_cache,
            model_plan=_model_plan(choice),
        )
    finally:
        _release(store, run_id)


async def aresume(
    run_id: str,
    *,
    store: RunStore,
    project: str | os.PathLike[str] | None = None,
    sinks: Iterable[EventSink] = (),
    trace: bool = True,
    executor: Executor | None = None,
    budget: BudgetSpec | None = None,
    gate: Gate | None = None,
    ledger: Ledger | None = None,
    result_cache: ResultCache | MemoryResultCache | None = None,
) -> RunResult:
    """Continue a run of ``store``: nodes already finished keep their stored results; the rest run now."""
    state = StateDir.for_project(project)
    record = store.get_run(run_id)
    if record is None:
        recent = ", ".join(r.run_id for r in store.list_runs(5)) or "none"
        where = getattr(store, "path", None) or "the run store"
        raise UserError(f"no run '{run_id}' in {where}", hint=f"recent runs: {recent}")
    options = record.options
    allow_imports = list(options.get("allow_imports") or ())
    plan, choice = _recompiled(record.spec, options, allow_imports)
    spec = plan.spec
    prior = {nid: r for nid, r in store.load_nodes(run_id).items() if r.finished}
    spent_cost = sum(r.cost_usd for r in prior.values())
    spent_tokens = sum(r.usage.total_tokens for r in prior.values())
    if budget is None and record.budget:
        budget = BudgetSpec.model_validate(record.budget)
    store.claim_run(run_id)
    try:
        books = _budget(spec, budget, spent_cost, spent_tokens, ledger)
        books.grant(*granted(store, run_id))  # what people approved spending past the caps
        return await _execute(
            plan, record.inputs, run_id=run_id, state=state, store=store, sinks=sinks, trace=trace,
            executor=executor, budget=books, model=options.get("model"),
            workdir=Path(options.get("workdir") or Path.cwd()), cache=bool(options.get("cache", True)),
            allow_imports=allow_imports, gate=gate, prior=prior, resumed=True,
            checkpoint=options.get("checkpoint") or "node", autonomy=options.get("autonomy"),
            model_plan=_model_plan(choice), result_cache=result_cache,
        )
    finally:
        _release(store, run_id)


def _release(store: RunStore, run_id: str) -> None:
    """Give up the run's ownership. A failure here (a full disk) must not hide the run's result:
    an owner that has exited never blocks a later resume."""
    try:
        store.release_run(run_id)
    except StateError:
        pass


def _recompiled(stored: Mapping[str, Any], options: Mapping[str, Any],
                allow_imports: list[str]) -> tuple[Plan, ModelChoice]:
    """A stored run's plan, checked again, on the models that run chose.

    The stored spec names the models chosen when the run started, so no option or environment
    variable is applied again: setting an API key (or a ladder) between the start and the resume
    does not move the rest of the run onto other models. A run stored before its models were
    recorded (no ``model_options``) gets them as a new run would.
    """
    # The models were checked when the run started, and the stored spec holds the ladders its
    # model choice made (``--model`` turns a cascade into one rung, which a file may not declare).
    compiled = compile(stored, allow_imports=allow_imports, check_models=False)
    recorded = isinstance(options.get("model_options"), Mapping)
    model_options = ModelOptions() if recorded else ModelOptions.from_environment(model=options.get("model"))
    choice = choose_models(compiled.spec, model_options, planned=options.get("planned_rungs"))
    return compiled.with_spec(choice.spec), choice


def _model_plan(choice: ModelChoice) -> dict[str, list[str]] | None:
    """The ladders llm calls may step down within (only when the run planned its models)."""
    ladders = {node_id: list(ladder) for node_id in choice.nodes if (ladder := choice.step_down_ladder(node_id))}
    return ladders or None


def run(pipeline: PipelineLike, inputs: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
    """Synchronous :func:`arun`."""
    return run_sync(arun(pipeline, inputs, **options))


def resume(run_id: str, **options: Any) -> RunResult:
    """Synchronous :func:`aresume`."""
    return run_sync(aresume(run_id, **options))
