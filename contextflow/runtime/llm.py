"""``llm`` nodes: render messages, pick the model(s), call through litellm under every policy.

Per attempt: reserve the worst case in the budget, take a per-model/provider slot, submit the call
to the executor under the timeout, settle the budget with the actual price. Per model: retry
transient errors with backoff. Per node: try fallbacks in order, then parse and validate structured
output, with one repair attempt. Model choice for ``strategy: cascade`` and ``route`` lives in
``contextflow.runtime.ladder``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping

from contextflow.cost.budget import BudgetExceeded
from contextflow.core.rungs import parse_rung
from contextflow.dags.refs import render_template
from contextflow.dags.spec import LLMNode
from contextflow.core.errors import UserError
from contextflow.runtime.attempts import NodeError, Spend, attempt_record, submit_timed, with_retries
from contextflow.runtime.cache import cache_key, spec_fingerprint
from contextflow.runtime.calls import call_model, model_info, price_call, worst_case
from contextflow.runtime.context import RunContext, provider_of
from contextflow.core.events import AttemptFinished, AttemptStarted, Usage
from contextflow.runtime.executor import Work
from contextflow.runtime.policies import NodePolicies, error_kind
from contextflow.runtime.progress import model_call
from contextflow.runtime.structured import (
    OutputValidationError,
    parse_structured,
    repair_messages,
    response_format_for,
    schema_instruction,
)

LOCAL_DEFAULT_MODEL = "local/smollm2-135m"
_KEY_DEFAULTS = (("OPENAI_API_KEY", "gpt-4o-mini"), ("ANTHROPIC_API_KEY", "claude-haiku-4-5"))
_FALLBACK_OUTPUT_LIMIT = 4096
OWN_PROVIDERS = ("sim", "local", "replay")  # contextflow's litellm custom providers


def default_model() -> str:
    """``$CONTEXTFLOW_MODEL``, else a small hosted model when its API key is set, else the local model."""
    chosen = os.environ.get("CONTEXTFLOW_MODEL")
    if chosen:
        return chosen
    for env, model in _KEY_DEFAULTS:
        if os.environ.get(env):
            return model
    return LOCAL_DEFAULT_MODEL


def render_messages(node: LLMNode, scope: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if node.system:
        messages.append({"role": "system", "content": render_template(node.system, scope)})
    for message in node.messages or ():
        messages.append({"role": message.role, "content": render_template(message.content, scope)})
    if node.prompt:
        messages.append({"role": "user", "content": render_template(node.prompt, scope)})
    if node.output_schema is not None:
        instruction = schema_instruction(node.output_schema)
        if messages and messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
        else:
            messages.insert(0, {"role": "system", "content": instruction})
    if not any(m["role"] == "user" for m in messages):
        raise UserError(f"llm node '{node.id}' has no user message", hint="give it a prompt: or messages: with a user turn")
    return messages


def output_limit(node: LLMNode, params: Mapping[str, Any], model: str) -> int:
    for value in (node.max_output_tokens, params.get("max_tokens"), params.get("max_completion_tokens")):
        if value:
            return int(value)
    info = model_info(model)
    return info.max_output_tokens if info else _FALLBACK_OUTPUT_LIMIT


@dataclass
class CallOutcome:
    value: Any
    text: str
    model: str


class LLMCaller:
    """Calls for one llm node (or one element of a map over an llm node)."""

    def __init__(
        self, ctx: RunContext, node: LLMNode, node_id: str, policies: NodePolicies, spend: Spend, item: int | None,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        self.ctx = ctx
        self.node = node
        self.node_id = node_id
        self.policies = policies
        self.spend = spend
        self.item = item
        self.scope = scope  # the node's upstream values (verifiers bind them by name)
        self.step_note: dict[str, Any] | None = None  # set when the budget made this node step down

    def params_for(self, model: str) -> dict[str, Any]:
        params = dict(self.node.params)
        explicit = self.node.max_output_tokens or params.get("max_tokens") or params.get("max_completion_tokens")
        if self.node.max_output_tokens:
            params["max_tokens"] = self.node.max_output_tokens
        elif not explicit and self.ctx.budget.limits_calls:
            # The worst-case reservation is only a bound if the provider is held to it.
            params["max_tokens"] = output_limit(self.node, params, model)
        if self.node.output_schema is not None and "response_format" not in params:
            params["response_format"] = response_format_for(self.node.output_schema, self.node.id)
        return params

    async def attempt(self, number: int, model: str, messages: list[dict[str, Any]], purpose: str) -> dict[str, Any]:
        ctx = self.ctx
        # A rung ``MODEL@effort`` calls MODEL with litellm's reasoning_effort; events and records keep the rung.
        rung = parse_rung(model)
        params = {**self.params_for(rung.model), **rung.params}
        if rung.effort and provider_of(rung.model) in OWN_PROVIDERS:
            params["allowed_openai_params"] = ["reasoning_effort"]  # litellm refuses it for custom providers otherwise
        if ctx.budget.limits_calls:
            cost_cap, token_cap = worst_case(rung.model, messages, output_limit(self.node, params, rung.model))
        else:
            cost_cap, token_cap = 0.0, 0
        reservation = ctx.budget.reserve(cost_cap, token_cap, label=self.node_id)
        started = time.monotonic()
        try:
            async with ctx.limits.slot(rung.model):
                # Started once a slot is held, so an attempt's span and latency are the call itself
                # and time spent queueing behind a provider limit shows as a gap in the node's span.
                ctx.emit(AttemptStarted(ctx.run_id, self.node_id, number, model, prompt=messages, item=self.item))
                started = time.monotonic()
                call, call_args = model_call(  # streamed when the run's token deltas are consumed
                    ctx, self.node_id, number, self.item, call_model,
                    {"model": rung.model, "messages": messages, "params": params},
                )
                work = Work(
                    self.node_id, "llm", call, call_args,
                    is_async=True, resources=dict(self.node.resources), attempt=number,
                )
                raw = await submit_timed(ctx, work, self.policies)
        except BaseException as exc:
            ctx.budget.settle(reservation, 0.0, 0)
            record = attempt_record(number, ok=False, started=started, model=model, error=exc, purpose=purpose)
            self.spend.attempts.append(record)
            ctx.emit(
                AttemptFinished(
                    ctx.run_id, self.node_id, number, model, False, Usage(), 0.0, cost_source="none",
                    latency_s=record["latency_s"], provider=provider_of(model), error=record["error"],
                    error_type=record["error_type"], item=self.item,
                )
            )
            raise
        usage = Usage(**raw["usage"])
        cost, source = price_call(rung.model, usage, raw.get("provider_cost_usd"))
        ctx.budget.settle(reservation, cost, usage.total_tokens)
        self.spend.usage.add(usage)
        self.spend.cost_usd += cost
        record = attempt_record(
            number, ok=True, started=started, model=model, purpose=purpose, cost_usd=cost,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        )
        if self.step_note is not None:
            record["stepped_down"], self.step_note = self.step_note, None
        self.spend.attempts.append(record)
        ctx.emit(
            AttemptFinished(
                ctx.run_id, self.node_id, number, model, True, usage, cost, cost_source=source,
                latency_s=record["latency_s"], provider=provider_of(model), response_model=raw.get("response_model"),
                response=raw["content"], item=self.item, time_to_first_token_s=raw.get("time_to_first_token_s"),
            )
        )
        return raw

    async def call_one_model(self, model: str, messages: list[dict[str, Any]]) -> CallOutcome:
        """One model with retries; structured output parsed, with one repair attempt."""
        raw = await with_retries(self.ctx, self.policies, lambda n: self.attempt(n, model, messages, "call"), self.spend)
        text = raw["content"] or ""
        schema = self.node.output_schema
        if schema is None:
            return CallOutcome(text, text, model)
        try:
            return CallOutcome(parse_structured(text, schema), text, model)
        except OutputValidationError as first:
            self.spend.attempts[-1]["validation_error"] = str(first)
            fixed = repair_messages(messages, text, str(first))
            raw = await with_retries(self.ctx, self.policies, lambda n: self.attempt(n, model, fixed, "repair"), self.spend)
            text = raw["content"] or ""
            try:
                return CallOutcome(parse_structured(text, schema), text, model)
            except OutputValidationError as second:
                self.spend.attempts[-1]["validation_error"] = str(second)
                raise OutputValidationError(
                    f"{second} (after one repair attempt; model {model})", raw=text
                ) from None

    def planned_cost_left(self) -> float | None:
        """What is left of the cost cap when the run plans its models (``plan_models``), else None."""
        cap = self.ctx.budget.caps.max_cost_usd
        if cap is None or self.node_id not in (self.ctx.extras.get("model_plan") or {}):
            return None
        totals = self.ctx.budget.totals()
        return cap - totals.spent_cost_usd - totals.reserved_cost_usd

    def rung_worst_case(self, rung: str, messages: list[dict[str, Any]]) -> float:
        """The dollars a call on ``rung`` could cost at most (what its reservation would hold)."""
        base = parse_rung(rung).model
        return worst_case(base, messages, output_limit(self.node, self.params_for(base), base))[0]

    def stepped_down(self, models: list[str], messages: list[dict[str, Any]]) -> list[str]:
        """With a model plan (``arun(plan_models=True)``): swap the first model for the best lower
        rung of the node's ladder whose worst case fits what is left of the cost budget.

        A rung this node already tried is not tried again; when nothing fits, the reservation
        refuses the call as before (the cap itself is never the planner's job).
        """
        ladder = (self.ctx.extras.get("model_plan") or {}).get(self.node_id)
        left = self.planned_cost_left()
        if not ladder or not models or models[0] not in ladder or left is None:
            return models
        tried = {a.get("model") for a in self.spend.attempts}
        for rung in reversed(ladder[: ladder.index(models[0]) + 1]):
            if rung != models[0] and rung in tried:
                break
            if self.rung_worst_case(rung, messages) <= left:
                if rung != models[0]:
                    self.step_note = {"planned": models[0], "budget_left_usd": left}
                return [rung, *models[1:]]
        return models

    async def call_with_fallbacks(self, models: list[str], messages: list[dict[str, Any]]) -> CallOutcome:
        models = self.stepped_down(models, messages)
        failures: list[str] = []
        last: BaseException | None = None
        for model in models:
            try:
                return await self.call_one_model(model, messages)
            except BudgetExceeded as exc:
                raise NodeError(str(exc), cause=exc, spend=self.spend) from None
            except OutputValidationError as exc:
                raise NodeError(str(exc), cause=exc, spend=self.spend) from None
            except Exception as exc:
                last = exc
                failures.append(f"{model}: {error_kind(exc)}: {exc}")
        tried = "; ".join(failures)
        raise NodeError(f"every model failed ({tried})", cause=last, spend=self.spend)


def node_cache_key(node: LLMNode, models: list[str], messages: list[dict[str, Any]]) -> str:
    return cache_key(
        {
            "kind": "llm",
            "spec": spec_fingerprint(node.model_dump(mode="json", by_alias=True, exclude_none=True)),
            "messages": messages,
            "models": models,
            "params": node.params,
        }
    )


def primary_models(ctx: RunContext, node: LLMNode) -> list[str]:
    # ctx.default_model is the run's override (``--model``): it beats the pipeline's default.
    model = node.model or ctx.default_model or ctx.spec.defaults.model or default_model()
    return [model, *[m for m in node.fallbacks if m != model]]
