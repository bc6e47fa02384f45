"""Offline evaluation of routing policies on recorded outcomes: curves and RouteLLM's metrics.

A policy ranks requests by how likely the cheap answer suffices; sending the lowest-ranked share
to the strong model traces a cost/quality curve. Metrics, as RouteLLM (arXiv 2406.18665) defines
them: PGR (performance gap recovered) = (acc - acc_weak) / (acc_strong - acc_weak); APGR, the
area under PGR against the share of strong calls; CPT(x) = the smallest share of strong calls
reaching PGR x. Cost counts every call made (a cascade pays for the weak call too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from contextflow.core.tokens import count_tokens
from contextflow.core import catalog


@dataclass
class Outcomes:
    weak_correct: np.ndarray
    strong_correct: np.ndarray
    weak_cost: np.ndarray
    strong_cost: np.ndarray
    cascade: bool  # True: every request first pays for the weak call

    @property
    def strong_only_cost(self) -> float:
        return float(self.strong_cost.sum())


def curve(outcomes: Outcomes, p_weak_ok: np.ndarray, points: int = 101) -> list[dict[str, float]]:
    """Accuracy and cost when the ``share`` of requests least likely to be fine go strong."""
    order = np.argsort(p_weak_ok, kind="stable")
    n = len(order)
    rows = []
    for share in np.linspace(0, 1, points):
        k = int(round(share * n))
        strong = np.zeros(n, dtype=bool)
        strong[order[:k]] = True
        correct = np.where(strong, outcomes.strong_correct, outcomes.weak_correct)
        cost = outcomes.strong_cost[strong].sum()
        cost += outcomes.weak_cost.sum() if outcomes.cascade else outcomes.weak_cost[~strong].sum()
        rows.append({"strong_share": k / n, "accuracy": float(correct.mean()),
                     "cost": float(cost), "cost_share": float(cost / outcomes.strong_only_cost)})
    return rows


def random_accuracy_at(outcomes: Outcomes, cost: float) -> float:
    """Expected accuracy of random routing (no weak call first) spending ``cost``."""
    weak_total, strong_total = outcomes.weak_cost.sum(), outcomes.strong_only_cost
    q = float(np.clip((cost - weak_total) / (strong_total - weak_total), 0, 1))
    return q * float(outcomes.strong_correct.mean()) + (1 - q) * float(outcomes.weak_correct.mean())


def metrics(outcomes: Outcomes, points: list[dict[str, float]]) -> dict[str, Any]:
    acc_w, acc_s = float(outcomes.weak_correct.mean()), float(outcomes.strong_correct.mean())
    gap = acc_s - acc_w
    shares = np.array([p["strong_share"] for p in points])
    pgr = np.array([(p["accuracy"] - acc_w) / gap for p in points]) if gap > 0 else np.zeros(len(points))
    apgr = float(np.sum((pgr[1:] + pgr[:-1]) / 2 * np.diff(shares)))
    cpt = {}
    for level in (0.5, 0.8, 0.95):
        reached = shares[pgr >= level]
        cpt[f"cpt_{int(level * 100)}"] = float(reached.min()) if reached.size else None
    goal = 0.95 * acc_s
    good = [p["cost_share"] for p in points if p["accuracy"] >= goal]
    interior = [p for p in points if 0 < p["strong_share"] < 1]
    margins = [p["accuracy"] - random_accuracy_at(outcomes, p["cost"]) for p in interior]
    return {
        "weak_accuracy": acc_w, "strong_accuracy": acc_s, "apgr": apgr, **cpt,
        "cost_share_at_95": float(min(good)) if good else None,
        "beats_random_everywhere": bool(margins) and min(margins) > 0,
        "worst_margin_vs_random": float(min(margins)) if margins else None,
    }


def plot(curves: dict[str, list[dict[str, float]]], outcomes: Outcomes, path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, points in curves.items():
        ax.plot([p["cost_share"] for p in points], [p["accuracy"] for p in points], label=label)
    weak_share = outcomes.weak_cost.sum() / outcomes.strong_only_cost
    ax.plot([weak_share, 1], [outcomes.weak_correct.mean(), outcomes.strong_correct.mean()], "--", color="grey", label="random")
    ax.axhline(0.95 * outcomes.strong_correct.mean(), color="red", lw=0.8, ls=":", label="95% of strong")
    ax.set_xlabel("cost (share of always-strong)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluate_router(router: Any, rows: Any, *, plot_path: str | Path | None = None) -> dict[str, Any]:
    """A router on held-out outcome rows: its own threshold's accuracy, $ cost (every call,
    priced by the catalog from counted tokens), strong share, and the curve's APGR/CPT."""

    p = router.predict_many(rows.prompts, rows.weak_responses, rows.categories)
    cascade = router.mode == "cascade"
    weak, strong = catalog.get(router.weak), catalog.get(router.strong)
    prompt_tokens = np.array([count_tokens(t, "gpt-4") for t in rows.prompts], dtype=float)

    def out(responses: list[str] | None) -> np.ndarray:
        return np.array([count_tokens(t, "gpt-4") for t in responses], dtype=float) if responses else np.ones(len(p))

    outcomes = Outcomes(np.asarray(rows.weak_correct, bool), np.asarray(rows.strong_correct, bool),
                        prompt_tokens * weak.input_cost_per_token + out(rows.weak_responses) * weak.output_cost_per_token,
                        prompt_tokens * strong.input_cost_per_token + out(rows.strong_responses) * strong.output_cost_per_token,
                        cascade)
    to_strong = p < router.threshold
    correct = np.where(to_strong, outcomes.strong_correct, outcomes.weak_correct)
    cost = outcomes.strong_cost[to_strong].sum() + (outcomes.weak_cost.sum() if cascade else outcomes.weak_cost[~to_strong].sum())
    points = curve(outcomes, p)
    summary = metrics(outcomes, points)
    if plot_path:
        plot({"router": points}, outcomes, plot_path, f"router {router.meta.get('name', '')}")
    return {"rows": len(p), "accuracy": float(correct.mean()), "cost_usd": float(cost),
            "cost_share": float(cost / outcomes.strong_only_cost), "strong_share": float(to_strong.mean()),
            **summary, "plot": str(plot_path) if plot_path else None}


def gain_per_dollar(p_weak_ok: np.ndarray, p_strong_ok: np.ndarray | None, extra_cost: np.ndarray) -> np.ndarray:
    """A routing key (lower goes strong first): the expected accuracy gained per extra dollar.

    Sending request i strong gains P(strong right) - P(weak right) and costs the strong call
    (in a cascade) or the difference of the two calls. Ranking by gain alone sends long, costly
    prompts first and can lose to random routing in cost terms; per dollar it does not.
    ``p_strong_ok`` None assumes the strong model is always right.
    """
    gain = (1.0 if p_strong_ok is None else np.asarray(p_strong_ok)) - np.asarray(p_weak_ok)
    return -gain / np.maximum(np.asarray(extra_cost, dtype=float), 1e-12)
