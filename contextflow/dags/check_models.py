"""Model checks: unknown model names, prompts that cannot fit a context window, unmeetable budgets.

Model names are looked up in litellm's bundled price map (through ``contextflow.core.catalog``),
the pipeline's ``models:`` declarations and models registered in-process. The providers our own
litellm custom providers serve (``sim/``, ``local/``, ``replay/``) are known by prefix.

Token counts use ``contextflow.core.tokens.count_tokens`` (offline), but only where they can
matter: a UTF-8 byte count bounds the token count from above, so a prompt whose bytes fit is
never tokenized, and tokens are counted for the budget check only when a budget is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from contextflow.dags.check_context import CheckContext
from contextflow.dags.problems import suggestion_hint
from contextflow.dags.refs import _REF, find_refs
from contextflow.dags.spec import LLMNode, MapNode, RetrieveNode
from contextflow.dags.yaml_source import PathKey
from contextflow.core import catalog
from contextflow.core.tokens import count_tokens

#: Providers served by contextflow's own litellm custom providers; any model name under them is known.
CUSTOM_PROVIDERS = ("sim/", "local/", "replay/")


@dataclass(frozen=True)
class ModelLimits:
    name: str
    max_input_tokens: int | None
    input_cost_per_token: float
    output_cost_per_token: float


class ModelChecker:
    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._known: dict[str, ModelLimits | None | bool] = {}

    def run(self) -> None:
        ctx = self.ctx
        llm_nodes: list[tuple[LLMNode, PathKey, list[tuple[str, PathKey]]]] = []
        for node, path in ctx.iter_nodes():
            if ctx.nodes.get(node.id) is not node:
                continue
            for inner, inner_path in _with_inner(node, path):
                if isinstance(inner, LLMNode):
                    ladder = self._ladder(inner, inner_path)
                    llm_nodes.append((inner, inner_path, ladder))
                    for index, fallback in enumerate(inner.fallbacks):
                        self.known(fallback, (*inner_path, "fallbacks", index))
                    self._check_fit(inner, inner_path, ladder)
                    for index, verify in enumerate(inner.verify):
                        if verify.kind == "judge" and verify.model:
                            self.known(verify.model, (*inner_path, "verify", index, "model"))
                elif isinstance(inner, RetrieveNode) and inner.for_model:
                    if self.known(inner.for_model, (*inner_path, "for_model")):
                        self._check_window_budget(inner, inner_path)
        if ctx.spec.defaults.model:
            self.known(ctx.spec.defaults.model, ("defaults", "model"))
        self._check_budget(llm_nodes)

    # -- names -------------------------------------------------------------------------------
    def _ladder(self, node: LLMNode, path: PathKey) -> list[tuple[str, PathKey]]:
        if node.strategy != "fixed" and len(node.models or ()) < 2:
            self.ctx.add("invalid-value",
                         f"llm node '{node.id}' uses strategy '{node.strategy}', which needs a ladder of "
                         "at least two models", (*path, "strategy"),
                         hint="list them cheapest first: models: [CHEAP, STRONG]")
        if node.models:
            rungs = [(name, (*path, "models", i)) for i, name in enumerate(node.models)]
        elif node.model:
            rungs = [(node.model, (*path, "model"))]
        elif self.ctx.spec.defaults.model:
            return [(self.ctx.spec.defaults.model, ("defaults", "model"))]
        else:
            self.ctx.add("missing-model", f"llm node '{node.id}' names no model and there is no default model",
                         (*path, "id"), key=True,
                         hint="add 'model: NAME' to the node or 'defaults: {model: NAME}' to the pipeline")
            return []
        return [(name, rung_path) for name, rung_path in rungs if self.known(name, rung_path)]

    def _check_window_budget(self, node: RetrieveNode, path: PathKey) -> None:
        limits = self.limits(node.for_model or "")
        if isinstance(limits, ModelLimits) and limits.max_input_tokens and node.budget_tokens > limits.max_input_tokens:
            self.ctx.add("context-overflow",
                         f"retrieve node '{node.id}' packs up to {node.budget_tokens} tokens, more than "
                         f"'{node.for_model}' can read ({limits.max_input_tokens})",
                         (*path, "budget_tokens"), hint=f"set budget_tokens below {limits.max_input_tokens}")

    def known(self, name: str, path: PathKey) -> bool:
        """True when the model is known; reports unknown-model at ``path`` otherwise."""
        if self.limits(name) is not False:
            return True

        candidates = [*self.ctx.spec.models, *catalog.known_model_names()]
        hint = suggestion_hint(name, candidates)
        declare = f"declare it under 'models:' ({name}: {{max_input_tokens: 8192}}) if it is a custom model"
        self.ctx.add("unknown-model", f"unknown model '{name}': litellm's model map does not list it",
                     path, hint=f"{hint} Or {declare}" if hint else declare)
        return False

    def limits(self, name: str) -> ModelLimits | None | bool:
        """Limits of a known model (None when known but its limits are not), False when unknown."""
        if name not in self._known:
            self._known[name] = self._lookup(name)
        return self._known[name]

    def _lookup(self, name: str) -> ModelLimits | None | bool:
        declared = self.ctx.spec.models.get(name)
        if declared is not None:
            return ModelLimits(name, declared.max_input_tokens, declared.input_cost_per_token,
                               declared.output_cost_per_token)

        info = catalog.lookup(name)
        if info is not None:
            return ModelLimits(name, info.max_input_tokens, info.input_cost_per_token, info.output_cost_per_token)
        if name.startswith(CUSTOM_PROVIDERS):
            return None
        return False

    # -- sizes -------------------------------------------------------------------------------
    def _static_parts(self, node: LLMNode) -> tuple[str, list[str]]:
        """The prompt text without its references, and the ids of retrieve nodes it includes."""
        texts = [t for t in (node.system, node.prompt) if t]
        texts += [m.content for m in node.messages or ()]
        retrieved: list[str] = []
        for text in texts:
            for ref in find_refs(text):
                target = self.ctx.nodes.get(ref.root)
                if isinstance(target, RetrieveNode) and ref.root not in retrieved:
                    retrieved.append(ref.root)
        return "\n".join(_REF.sub("", t) for t in texts), retrieved

    def count(self, model: str, text: str) -> int:
        return count_tokens(text, model)

    def _check_fit(self, node: LLMNode, path: PathKey, ladder: list[tuple[str, PathKey]]) -> None:
        if not ladder:
            return
        static, retrieved = self._static_parts(node)
        output = _declared_output(node)
        window_tokens = sum(
            r.budget_tokens for r in (self.ctx.nodes[i] for i in retrieved) if isinstance(r, RetrieveNode)
        )
        upper = len(static.encode("utf-8")) + output + window_tokens
        for name, rung_path in ladder:
            limits = self.limits(name)
            if not isinstance(limits, ModelLimits) or not limits.max_input_tokens:
                continue
            if upper <= limits.max_input_tokens:
                continue  # bytes bound tokens from above: it fits without counting
            prompt = self.count(name, static) if static else 0
            need = prompt + output + window_tokens
            if need > limits.max_input_tokens:
                parts = [f"{prompt} prompt tokens"]
                if window_tokens:
                    parts.append(f"{window_tokens} tokens of retrieved context ({', '.join(retrieved)})")
                if output:
                    parts.append(f"{output} output tokens")
                self.ctx.add("context-overflow",
                             f"llm node '{node.id}' needs {need} tokens ({' + '.join(parts)}) but "
                             f"'{name}' has a {limits.max_input_tokens}-token context window",
                             rung_path,
                             hint="shorten the prompt, lower max_output_tokens or the retrieve node's "
                                  "budget_tokens, or use a model with a larger window")

    # -- budget ------------------------------------------------------------------------------
    def _check_budget(self, llm_nodes: list[tuple[LLMNode, PathKey, list[tuple[str, PathKey]]]]) -> None:
        budget = self.ctx.spec.defaults.budget
        if budget.max_cost_usd is None and budget.max_tokens is None:
            return
        total_cost = 0.0
        total_tokens = 0
        cheapest: list[tuple[float, str, str]] = []
        for node, _path, ladder in llm_nodes:
            static, _ = self._static_parts(node)
            choices: list[tuple[float, int, str]] = []
            for name, _rung in ladder:
                limits = self.limits(name)
                tokens = (self.count(name, static) if static else 0) + 1  # a reply has >= 1 token
                price = 0.0
                if isinstance(limits, ModelLimits):
                    price = (tokens - 1) * limits.input_cost_per_token + limits.output_cost_per_token
                choices.append((price, tokens, name))
            if not choices:
                continue
            min_cost = min(choices)[0]
            min_tokens = min(c[1] for c in choices)
            total_cost += min_cost
            total_tokens += min_tokens
            cheapest.append((min_cost, node.id, min(choices)[2]))
        top = sorted(cheapest, reverse=True)[:3]
        detail = ", ".join(f"{node_id} on {model} ${cost:.6f}" for cost, node_id, model in top)
        if budget.max_cost_usd is not None and total_cost > budget.max_cost_usd:
            self.ctx.add("budget-unmeetable",
                         f"max_cost_usd {budget.max_cost_usd} is below the cheapest possible run: "
                         f"${total_cost:.6f} for the prompts alone on the cheapest model of each node",
                         ("defaults", "budget", "max_cost_usd"),
                         hint=f"raise the budget or use cheaper models; largest: {detail}")
        if budget.max_tokens is not None and total_tokens > budget.max_tokens:
            self.ctx.add("budget-unmeetable",
                         f"max_tokens {budget.max_tokens} is below the fewest tokens a run can use: "
                         f"{total_tokens} (each llm node's prompt plus one reply token)",
                         ("defaults", "budget", "max_tokens"),
                         hint="raise max_tokens or shorten the prompts")


def _with_inner(node: Any, path: PathKey) -> Iterator[tuple[Any, PathKey]]:
    yield node, path
    if isinstance(node, MapNode):
        yield node.node, (*path, "node")


def _declared_output(node: LLMNode) -> int:
    if node.max_output_tokens:
        return node.max_output_tokens
    for key in ("max_tokens", "max_completion_tokens"):
        value = node.params.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 0
