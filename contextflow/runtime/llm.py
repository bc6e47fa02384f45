"""``llm`` nodes: render messages, pick the model(s), call through litellm under every policy.

Per attempt: reserve the worst case in the budget, take a per-model/provider slot, submit the call
to the executor under the timeout, settle the budget with the actual price. Per model: retry
transient errors with backoff. Per node: try fallbacks in order, then parse and validate structured
output, with one repair attempt. Model choice for ``strategy: cascade`` and ``route`` lives in
``contextflow.runtime.ladder``.

Each call becomes one :class:`~contextflow.core.attempts.Attempt`, written once: a failed call at
once, a successful one when the checks on its answer are done (:meth:`LLMCaller.finish`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Mapping

from contextflow.cost.budget import BudgetExceeded
from contextflow.cost.model_choice import models_to_call
from contextflow.core.rungs import parse_rung
from contextflow.dags.refs import render_template
from contextflow.dags.spec import LLMNode
from contextflow.core.errors import UserError
from contextflow.core.attempts import Attempt, StepDown
from contextflow.runtime.attempts import NodeError, Spend, submit_timed, with_retries
from contextflow.runtime.cache import cache_key, spec_fingerprint
from contextflow.runtime.calls import call_model, catalog_price, model_info, price_call, worst_case
from contextflow.runtime.context import RunContext, provider_of
from contextflow.core.events import AttemptStarted, Usage
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

_FALLBACK_OUTPUT_LIMIT = 4096
OWN_PROVIDERS = ("sim", "local", "replay")  # contextflow's litellm custom providers


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
    """A successful call's answer. ``attempt`` is that call, not yet recorded: it is written
    (:meth:`LLMCaller.finish`) once the checks on its answer are done."""

    value: Any
    text: str
    model: str
    attempt: Attempt


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
        self.step_note: StepDown | None = None  # set when the budget made this node step down

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

    async def attempt(
        self, number: int, model: str, messages: list[dict[str, Any]], purpose: str
    ) -> tuple[dict[str, Any], Attempt]:
        """One call. A failed call is recorded at once; a successful one comes back with its raw
        answer, unrecorded, because its checks (validation, verifiers, routing) come next."""
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
        reservation = ctx.budget.reserve(cost_cap, token_cap, label=self.node_id, model=rung.model)
        started, wall = time.monotonic(), time.time()
        try:
            async with ctx.limits.slot(rung.model):
                # Started once a slot is held, so an attempt's span and latency are the call itself
                # and time spent queueing behind a provider limit shows as a gap in the node's span.
                ctx.emit(AttemptStarted(ctx.run_id, self.node_id, number, model, prompt=messages, item=self.item))
                started, wall = time.monotonic(), time.time()
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
            self.spend.record(ctx, self.node_id, Attempt(
                number, False, model, item=self.item, purpose=purpose, latency_s=time.monotonic() - started,
                provider=provider_of(model), started_at=wall, error=str(exc) or type(exc).__name__,
                error_type=error_kind(exc), prompt=messages,
            ))
            raise
        latency = time.monotonic() - started
        usage = Usage(**raw["usage"])
        cost, source = price_call(rung.model, usage, raw.get("provider_cost_usd"))
        ctx.budget.settle(reservation, cost, usage.total_tokens)  # what was billed, above the price map or not
        if source == "provider":
            ctx.budget.observe_bill(rung.model, cost, catalog_price(rung.model, usage))
        self.spend.usage.add(usage)
        self.spend.cost_usd += cost
        attempt = Attempt(
            number, True, model, item=self.item, purpose=purpose, usage=usage, cost_usd=cost, cost_source=source,
            latency_s=latency, provider=provider_of(model), response_model=raw.get("response_model"),
            started_at=wall, stepped_down=self.step_note, prompt=messages, response=raw["content"],
            time_to_first_token_s=raw.get("time_to_first_token_s"),
        )
        self.step_note = None
        return raw, attempt

    def finish(self, outcome: CallOutcome, **checks: Any) -> CallOutcome:
        """Record the call behind ``outcome`` with what its checks found (verdicts, routing...)."""
        attempt = dataclasses.replace(outcome.attempt, **checks) if checks else outcome.attempt
        self.spend.record(self.ctx, self.node_id, attempt)
        return outcome

    async def call_one_model(self, model: str, messages: list[dict[str, Any]]) -> CallOutcome:
        """One model with retries; structured output parsed, with one repair attempt."""
        raw, attempt = await with_retries(
            self.ctx, self.policies, lambda n: self.attempt(n, model, messages, "call"), self.spend
        )
        text = raw["content"] or ""
        schema = self.node.output_schema
        if schema is None:
            return CallOutcome(text, text, model, attempt)
        try:
            return CallOutcome(parse_structured(text, schema), text, model, attempt)
        except OutputValidationError as first:
            self.spend.record(self.ctx, self.node_id, dataclasses.replace(attempt, validation_error=str(first)))
            fixed = repair_messages(messages, text, str(first))
            raw, attempt = await with_retries(
                self.ctx, self.policies, lambda n: self.attempt(n, model, fixed, "repair"), self.spend
            )
            text = raw["content"] or ""
            try:
                return CallOutcome(parse_structured(text, schema), text, model, attempt)
            except OutputValidationError as second:
                self.spend.record(self.ctx, self.node_id, dataclasses.replace(attempt, validation_error=str(second)))
                raise OutputValidationError(
                    f"{second} (after one repair attempt; model {model})", raw=text
                ) from None

    def rung_worst_case(self, rung: str, messages: list[dict[str, Any]]) -> tuple[float, int]:
        """The dollars (at the catalog price) and tokens a call on ``rung`` could use at most."""
        base = parse_rung(rung).model
        return worst_case(base, messages, output_limit(self.node, self.params_for(base), base))

    def stepped_down(self, models: list[str], messages: list[dict[str, Any]]) -> list[str]:
        """With a model plan (``arun(plan_models=True)``): swap the first model for the best lower
        rung of the node's planned ladder whose worst case fits what is left of the cost budget.

        A rung this node already tried is not tried again; when nothing fits, the reservation
        refuses the call as before (the cap itself is never the planner's job).
        """
        ladder = self.ctx.model_plan.get(self.node_id)
        if not ladder or not models or models[0] not in ladder or self.ctx.budget.caps.max_cost_usd is None:
            return models
        tried = {a.model for a in self.spend.attempts}
        for rung in reversed(ladder[: ladder.index(models[0]) + 1]):
            if rung != models[0] and rung in tried:
                break
            fit = self.ctx.budget.fits(self.rung_worst_case(rung, messages)[0], 0, model=parse_rung(rung).model)
            if fit:
                if rung != models[0]:
                    self.step_note = StepDown(models[0], fit.left_cost_usd or 0.0)
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
    """The models the node calls, in order; chosen before the run by :mod:`contextflow.cost.model_choice`."""
    return models_to_call(node)
