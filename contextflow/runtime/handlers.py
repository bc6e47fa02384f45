"""Node handlers by kind: each turns (node, finished upstream values) into a NodeResult.

A handler raises :class:`NodeError` to fail its node; the scheduler persists either outcome.
Map nodes run their inner step once per element through the same handlers, so every element
gets the same retries, cache, budget and limits as a plain node.
"""

from __future__ import annotations

import asyncio
import time
from collections import ChainMap
from pathlib import Path
from functools import lru_cache
from typing import Any, Awaitable, Callable, Mapping

from contextflow.cost.budget import BudgetExceeded
from contextflow.dags.imports import Allowlist, registered_function, resolve_callable
from contextflow.dags.refs import find_refs, iter_refs, lookup, resolve_value
from contextflow.dags.spec import LLMNode, MapNode, PythonNode, RetrieveNode, ToolNode
from contextflow.core.errors import UserError
from contextflow.runtime.attempts import NodeError, Spend, function_attempt, submit_timed
from contextflow.runtime.cache import CacheEntry, cache_key, spec_fingerprint
from contextflow.runtime.context import RunContext
from contextflow.core.attempts import Attempt
from contextflow.core.events import RetrievalFinished, Usage
from contextflow.runtime.executor import Work, is_async_callable
from contextflow.runtime.ladder import call_by_strategy
from contextflow.runtime.llm import LLMCaller, node_cache_key, primary_models, render_messages
from contextflow.runtime.policies import NodePolicies, policies_for
from contextflow.runtime.progress import reported_tool_call
from contextflow.core.results import NodeResult
from contextflow.runtime.structured import OutputValidationError, validate
from contextflow.runtime.tools import BUILTIN_TOOLS
import contextflow.context as context_engine

Handler = Callable[[RunContext, Any, Mapping[str, Any], str, NodePolicies, "int | None"], Awaitable[NodeResult]]


def _ok(node_id: str, value: Any, spend: Spend, started: float, model: str | None = None) -> NodeResult:
    return NodeResult(
        node_id, "succeeded", value, spend.usage, spend.cost_usd, model, spend.attempts, False, started, time.time()
    )


def _cached(ctx: RunContext, policies: NodePolicies, key: str) -> CacheEntry | None:
    if ctx.cache is None or not policies.cache.enabled:
        return None
    return ctx.cache.get(key, ttl_s=policies.cache.ttl_s)


def _cache_hit(node_id: str, key: str, entry: CacheEntry, started: float) -> NodeResult:
    record = Attempt(0, True, entry.model, cache_hit=True, cache_key=key, original_cost_usd=entry.cost_usd)
    return NodeResult(node_id, "cached", entry.value, Usage(), 0.0, entry.model, [record], True, started, time.time())


def _store(ctx: RunContext, policies: NodePolicies, key: str, result: NodeResult) -> None:
    if ctx.cache is not None and policies.cache.enabled:
        ctx.cache.put(key, CacheEntry(result.value, result.usage, result.cost_usd, result.model, time.time()))


async def run_llm(
    ctx: RunContext, node: LLMNode, scope: Mapping[str, Any], node_id: str, policies: NodePolicies, item: int | None = None
) -> NodeResult:
    started = time.time()
    messages = render_messages(node, scope)
    models = list(node.models) if node.strategy != "fixed" and node.models else primary_models(ctx, node)
    caching = ctx.cache is not None and policies.cache.enabled
    key = node_cache_key(node, models, messages) if caching else ""
    hit = _cached(ctx, policies, key) if caching else None
    if hit is not None:
        return _cache_hit(node_id, key, hit, started)
    spend = Spend()
    caller = LLMCaller(ctx, node, node_id, policies, spend, item, scope)
    outcome = await call_by_strategy(caller, models, messages)
    result = _ok(node_id, outcome.value, spend, started, outcome.model)
    if caching:
        _store(ctx, policies, key, result)
    return result


async def _run_callable(
    ctx: RunContext, node: Any, node_id: str, policies: NodePolicies, kind: str, fn: Callable[..., Any],
    kwargs: dict[str, Any], item: int | None,
) -> tuple[Any, Spend]:
    """Run ``fn`` through the executor with the node's timeout and retry policy.

    Written as one loop rather than through ``with_retries`` because python nodes are the
    scheduler's cheapest and most numerous: every coroutine layer shows in per-node overhead.
    """
    spend = Spend()
    is_async = is_async_callable(fn)
    resources = node.resources
    failures = 0
    while True:
        number = spend.take_attempt_number()
        started = time.monotonic()
        work = Work(node_id, kind, fn, kwargs, is_async, resources, number)
        try:
            value = await submit_timed(ctx, work, policies)
        except (UserError, BudgetExceeded, asyncio.CancelledError):
            raise
        except Exception as exc:
            spend.attempts.append(function_attempt(number, started=started, item=item, error=exc))
            failures += 1
            left = ctx.budget.remaining_wall_s()
            delay = policies.retry.delay(failures, ctx.rng)
            if not policies.retry.should_retry(exc, failures) or (left is not None and delay >= left):
                message = f"{kind} node '{node_id}' failed: {type(exc).__name__}: {exc}"
                raise NodeError(message, cause=exc, spend=spend) from exc
            await ctx.sleep(delay)
            continue
        spend.attempts.append(function_attempt(number, started=started, item=item))
        return value, spend


def _arg_plan(ctx: RunContext, node: Any) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A node's arguments as a function of the scope, worked out once per node object.

    Arguments without references are returned as they are; an argument that is exactly one
    reference is a direct lookup; anything else goes through ``resolve_value``.
    """
    cached = _ARG_PLANS.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1]
    plan = _compile_args(dict(node.args))
    if len(_ARG_PLANS) >= _ARG_PLANS_MAX:
        _ARG_PLANS.clear()
    _ARG_PLANS[id(node)] = (node, plan)  # holding the node keeps its id from being reused
    return plan


_ARG_PLANS: dict[int, tuple[Any, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {}
_ARG_PLANS_MAX = 65536


def _compile_args(args: dict[str, Any]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    if not args:
        return lambda scope: {}
    dynamic: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = []
    for name, value in args.items():
        if not any(True for _ in iter_refs(value)):
            continue
        whole = find_refs(value.strip()) if isinstance(value, str) else []
        if len(whole) == 1 and whole[0].start == 0 and whole[0].end == len(value.strip()):
            dynamic.append((name, lambda scope, ref=whole[0]: lookup(ref, scope)))
        else:
            dynamic.append((name, lambda scope, value=value: resolve_value(value, scope)))
    if not dynamic:
        return lambda scope: dict(args)
    constant = {k: v for k, v in args.items() if k not in dict(dynamic)}

    def resolve(scope: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(constant)
        for name, get in dynamic:
            out[name] = get(scope)
        return out

    return resolve


def _callable(path: str, allowlist: Allowlist) -> Callable[..., Any]:
    return registered_function(path) or _imported(path, allowlist)


@lru_cache(maxsize=4096)
def _imported(path: str, allowlist: Allowlist) -> Callable[..., Any]:
    return resolve_callable(path, allowlist)


def _python_key(node: PythonNode, kwargs: dict[str, Any]) -> str:
    dump = node.model_dump(mode="json", exclude_none=True)
    return cache_key({"kind": "python", "spec": spec_fingerprint(dump), "args": kwargs})


async def run_python(
    ctx: RunContext, node: PythonNode, scope: Mapping[str, Any], node_id: str, policies: NodePolicies, item: int | None = None
) -> NodeResult:
    started = time.time()
    fn = _callable(node.function, ctx.allowlist)
    kwargs = _arg_plan(ctx, node)(scope)
    key = _python_key(node, kwargs) if policies.cache.enabled and ctx.cache is not None else ""
    if key:
        hit = _cached(ctx, policies, key)
        if hit is not None:
            return _cache_hit(node_id, key, hit, started)
    value, spend = await _run_callable(ctx, node, node_id, policies, "python", fn, kwargs, item)
    if node.output_schema is not None:
        plain = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        try:
            validate(plain, node.output_schema)
        except OutputValidationError as exc:
            raise NodeError(f"python node '{node_id}' returned a value that {exc}", cause=exc, spend=spend) from None
    result = _ok(node_id, value, spend, started)
    if key:
        _store(ctx, policies, key, result)
    return result


async def run_tool(
    ctx: RunContext, node: ToolNode, scope: Mapping[str, Any], node_id: str, policies: NodePolicies, item: int | None = None
) -> NodeResult:
    started = time.time()
    kwargs = _arg_plan(ctx, node)(scope)
    builtin = BUILTIN_TOOLS.get(node.tool)
    if builtin is not None:
        fn = builtin
        kwargs = {**kwargs, "workdir": str(ctx.workdir)}
    else:
        fn = _callable(node.tool, ctx.allowlist)
    call = _run_callable(ctx, node, node_id, policies, "tool", fn, kwargs, item)
    value, spend = await reported_tool_call(ctx, node_id, node.tool, kwargs, item, call)
    return _ok(node_id, value, spend, started)


async def run_retrieve(
    ctx: RunContext, node: RetrieveNode, scope: Mapping[str, Any], node_id: str, policies: NodePolicies, item: int | None = None
) -> NodeResult:
    started = time.time()
    query = str(resolve_value(node.query, scope))
    repo_path = Path(str(resolve_value(node.repo, scope))).expanduser()
    repo = str(repo_path if repo_path.is_absolute() else (ctx.workdir / repo_path).resolve())
    kwargs = {
        "repo": repo, "query": query, "budget_tokens": node.budget_tokens, "retrievers": node.retrievers,
        "model": node.for_model, "fmt": node.format, "state": ctx.state,
    }
    t0 = time.monotonic()
    window, spend = await _run_callable(ctx, node, node_id, policies, "retrieve", context_engine.build_context, kwargs, item)
    items = [i.model_dump(mode="json") if hasattr(i, "model_dump") else dict(i) for i in getattr(window, "items", [])]
    ctx.emit(
        RetrievalFinished(
            ctx.run_id, node_id, query, node.budget_tokens, int(getattr(window, "used_tokens", 0)), items,
            latency_s=time.monotonic() - t0,
        )
    )
    return _ok(node_id, window, spend, started)


async def run_map(
    ctx: RunContext, node: MapNode, scope: Mapping[str, Any], node_id: str, policies: NodePolicies, item: int | None = None
) -> NodeResult:
    started = time.time()
    elements = resolve_value(node.over, scope)
    if isinstance(elements, (str, bytes)) or not hasattr(elements, "__iter__"):
        raise NodeError(
            f"map node '{node_id}': {node.over} is a {type(elements).__name__}, not a list",
            spend=Spend(),
        )
    elements = list(elements)
    inner = node.node
    inner_policies = policies_for(inner, ctx.spec.defaults)
    handler = HANDLERS[inner.kind]
    limit = asyncio.Semaphore(node.max_concurrency or ctx.spec.defaults.max_concurrency)

    async def one(index: int, element: Any) -> NodeResult:
        async with limit:
            return await handler(ctx, inner, ChainMap({node.as_: element}, scope), node_id, inner_policies, index)

    tasks = [asyncio.ensure_future(one(i, e)) for i, e in enumerate(elements)]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    spend = Spend()
    for index, result in enumerate(results):
        spend.usage.add(result.usage)
        spend.cost_usd += result.cost_usd
        spend.attempts.extend(a.with_item(index) for a in result.attempts)
    models = {r.model for r in results if r.model}
    out = _ok(node_id, [r.value for r in results], spend, started, models.pop() if len(models) == 1 else None)
    out.cache_hit = bool(results) and all(r.cache_hit for r in results)
    return out


HANDLERS: dict[str, Handler] = {
    "llm": run_llm,
    "python": run_python,
    "tool": run_tool,
    "retrieve": run_retrieve,
    "map": run_map,
}
