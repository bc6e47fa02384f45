"""What-if replay: re-price a recorded run under other models, prices or policies, offline.

A policy file (YAML or JSON) says what changes::

    models: {gpt-4o: gpt-4o-mini}          # substitute a model everywhere
    prices: {gpt-4o-mini: {input_cost_per_token: 1.5e-7, output_cost_per_token: 6e-7}}
    quality: {gpt-4o-mini: 0.8}            # prior quality overrides
    nodes:                                 # per-node ladders
      answer: {models: [gpt-4o-mini, gpt-4o], strategy: cascade}
      title: {models: [gpt-4o-mini, gpt-4o], strategy: route, router: routers/r.json}  # needs a traced run

Each llm node's recorded attempts give its token counts and, where a rung was actually tried, its
real cost and verdict. A rung that was never tried is estimated: the node's recorded tokens at
that model's price, and its prior quality as the chance its answer passes. A cascade's expected
cost is what each rung costs times the chance the cascade reaches it. Every row says which of
its figures were recorded and which estimated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from contextflow.core import catalog
from contextflow.core.attempts import Attempt
from contextflow.core.errors import UserError
from contextflow.cost.router import Router
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.analysis.outcomes import last_user_text
from contextflow.trace import TraceStore
from contextflow.trace.sink import drain


@dataclass(frozen=True)
class NodeReplay:
    node_id: str
    before_models: list[str]
    before_cost_usd: float
    before_quality: float
    after_models: list[str]
    after_cost_usd: float
    after_quality: float
    source: str  # "recorded", "estimated" or "mixed"

    @property
    def cost_delta(self) -> float:
        return self.after_cost_usd - self.before_cost_usd


@dataclass(frozen=True)
class ReplayReport:
    run_id: str
    nodes: list[NodeReplay]

    @property
    def before_cost_usd(self) -> float:
        return sum(n.before_cost_usd for n in self.nodes)

    @property
    def after_cost_usd(self) -> float:
        return sum(n.after_cost_usd for n in self.nodes)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "before_cost_usd": self.before_cost_usd, "after_cost_usd": self.after_cost_usd,
                "nodes": [{**n.__dict__, "cost_delta": n.cost_delta} for n in self.nodes]}


def load_policy(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the policy file {path}: {exc.strerror}", hint="give an existing YAML or JSON file") from None
    try:
        policy = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UserError(f"{where}: the policy is not valid YAML/JSON", hint=str(exc).splitlines()[0]) from None
    unknown = set(policy) - {"models", "prices", "quality", "nodes"} if isinstance(policy, dict) else {"(not a mapping)"}
    if unknown:
        raise UserError(f"{path}: unknown policy key(s) {', '.join(sorted(unknown))}",
                        hint="a policy has models:, prices:, quality: and nodes: sections")
    return policy


class _Pricer:
    def __init__(self, policy: Mapping[str, Any]) -> None:
        self.prices = policy.get("prices") or {}
        self.quality = policy.get("quality") or {}

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        base = model.split("@", 1)[0]
        price = self.prices.get(model) or self.prices.get(base)
        if price:
            return input_tokens * float(price.get("input_cost_per_token", 0)) + output_tokens * float(price.get("output_cost_per_token", 0))
        info = catalog.lookup(base)
        if info is None:
            raise UserError(f"the policy uses '{model}', which has no known price",
                            hint=f"add it under prices: {{{model}: {{input_cost_per_token: ..., output_cost_per_token: ...}}}}")
        return info.cost(input_tokens, output_tokens)

    def overrides_price(self, model: str) -> bool:
        return bool(self.prices.get(model) or self.prices.get(model.split("@", 1)[0]))

    def prior(self, model: str) -> float:
        return float(self.quality.get(model, catalog.quality_of(model)))


def _route_choice(node_id: str, override: Mapping[str, Any], ladder: list[str], prompt: str | None) -> str:
    """The rung a trained router picks for the node's recorded prompt."""
    if not override.get("router"):
        raise UserError(f"the policy routes node '{node_id}' but names no router", hint="add router: PATH.json")
    if prompt is None:
        raise UserError(f"routing node '{node_id}' in a replay needs its prompt, which this run did not record",
                        hint="replay a run that was traced (the trace keeps prompts)")

    return Router.load(override["router"]).choose(prompt, ladder)[0]


def _typed(attempts: Iterable[Attempt | Mapping[str, Any]]) -> list[Attempt]:
    """Recorded attempts, typed: from the run store already, or the rows of a JSON export."""
    return [a if isinstance(a, Attempt) else Attempt.from_dict(a) for a in attempts
            if isinstance(a, (Attempt, Mapping))]


def replay_node(node_id: str, node_spec: Mapping[str, Any], attempts: Iterable[Attempt | Mapping[str, Any]],
                policy: Mapping[str, Any], *, prompt: str | None = None) -> NodeReplay | None:
    recorded_attempts = _typed(attempts)
    calls = [a for a in recorded_attempts if a.ok and a.model]
    if not calls:
        return None
    pricer = _Pricer(policy)
    by_model = {str(a.model): a for a in calls}
    before_models = list(dict.fromkeys(str(a.model) for a in calls))
    before_cost = sum(a.cost_usd for a in recorded_attempts)
    last = calls[-1]
    verdict = last.passed
    before_quality = (1.0 if verdict else 0.0) if verdict is not None else pricer.prior(str(last.model))
    tokens_in, tokens_out = last.usage.input_tokens, last.usage.output_tokens

    override = (policy.get("nodes") or {}).get(node_id) or {}
    substitute = policy.get("models") or {}
    if override.get("models"):
        ladder, strategy = list(override["models"]), override.get("strategy", "cascade")
    elif override.get("model"):
        ladder, strategy = [override["model"]], "fixed"
    else:
        original = list(node_spec.get("models") or []) if node_spec.get("strategy") == "cascade" else []
        # A substitution can make neighbouring rungs the same model: a cascade would not call it twice.
        ladder = list(dict.fromkeys(substitute.get(m, m) for m in (original or [before_models[-1]])))
        strategy = "cascade" if original else "fixed"
    if strategy == "route":
        ladder, strategy = [_route_choice(node_id, override, ladder, prompt)], "fixed"
    reach, cost, quality, recorded = 1.0, 0.0, 0.0, []
    for index, model in enumerate(ladder if strategy == "cascade" else ladder[-1:]):
        seen = by_model.get(model)
        if seen is not None:
            # A recorded call keeps its real cost unless the policy re-prices its model.
            spent = (pricer.cost(model, seen.usage.input_tokens, seen.usage.output_tokens)
                     if pricer.overrides_price(model) else seen.cost_usd)
            cost += reach * spent
            outcome = seen.passed
            p_pass = float(outcome) if outcome is not None else pricer.prior(model)
            recorded.append(True)  # a call on record: its real cost (and verdict, when checked)
        else:
            cost += reach * pricer.cost(model, tokens_in, tokens_out)
            p_pass = pricer.prior(model)
            recorded.append(False)
        final = strategy != "cascade" or index == len(ladder) - 1
        quality += reach * p_pass  # the chance the answer kept is one that passes
        if final:
            break
        reach *= 1.0 - p_pass
    source = "recorded" if all(recorded) else ("estimated" if not any(recorded) else "mixed")
    return NodeReplay(node_id, before_models, before_cost, before_quality, ladder, cost, quality, source)


def replay_nodes(run_id: str, spec: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]], policy: Mapping[str, Any]) -> ReplayReport:
    specs = {n.get("id"): n for n in (spec.get("nodes") or [])}
    for name, declared in (spec.get("models") or {}).items():
        # The pipeline's own model declarations (prices, quality) apply to its replay too.
        catalog.register_model(name, **declared)
    unknown = set((policy.get("nodes") or {})) - set(specs) - set(nodes)
    if unknown:
        raise UserError(f"the policy names node(s) {', '.join(sorted(unknown))} that run {run_id} does not have",
                        hint=f"its nodes are {', '.join(sorted(set(specs) | set(nodes)))}")
    rows = []
    for node_id, result in nodes.items():
        row = replay_node(node_id, specs.get(node_id, {}), result.get("attempts") or [], policy,
                          prompt=result.get("prompt"))
        if row is not None:
            rows.append(row)
    return ReplayReport(run_id, rows)


def replay_run(store_path: str | Path, run_id: str, policy: Mapping[str, Any]) -> ReplayReport:
    """Replay a run recorded in the run store (``StateDir.runs_db``)."""

    with SQLiteRunStore(store_path, readonly=True) as store:
        record = store.get_run(run_id)
        if record is None:
            recent = ", ".join(r.run_id for r in store.list_runs(5)) or "none"
            raise UserError(f"no run '{run_id}' in {store_path}", hint=f"recent runs: {recent}")
        results = store.load_nodes(run_id)
    prompts = _traced_prompts(Path(store_path).with_name("traces.db"), run_id)
    nodes = {nid: {"attempts": r.attempts, "model": r.model, "cost_usd": r.cost_usd, "prompt": prompts.get(nid)}
             for nid, r in results.items()}
    return replay_nodes(run_id, record.spec, nodes, policy)


def _traced_prompts(traces_db: Path, run_id: str) -> dict[str, str]:
    """Each node's first recorded prompt (its last user message), when the run was traced."""

    drain(traces_db)  # a run of this process may still be writing its spans
    if not traces_db.exists():
        return {}
    prompts: dict[str, str] = {}
    for span in TraceStore(traces_db).spans(run_id):
        prompt = (span.get("attributes") or {}).get("contextflow.prompt")
        if span.get("kind") == "attempt" and prompt and span.get("node_id") not in prompts:
            prompts[span["node_id"]] = last_user_text(prompt)
    return prompts


def replay_export(path: str | Path, policy: Mapping[str, Any]) -> ReplayReport:
    """Replay a JSON export: ``{"run_id", "spec"?, "nodes": {node_id: {"attempts": [...]}}}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the run export {path}: {exc}", hint="export a run as JSON first") from None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if isinstance(nodes, list):
        nodes = {n["node_id"]: n for n in nodes if isinstance(n, dict) and "node_id" in n}
    if not isinstance(nodes, dict):
        raise UserError(f"{path} has no 'nodes' with recorded attempts", hint='expected {"run_id": ..., "nodes": {...}}')
    return replay_nodes(str(data.get("run_id", path.stem)), data.get("spec") or {}, nodes, policy)
