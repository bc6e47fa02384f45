"""Routing between a weak and a strong model on recorded outcomes (``<shared>/data/routellm``).

GSM8K (dev half, with both models' responses): a *cascade* — the weak model answers first, a
router reads the prompt and the weak answer (its ``<<a=b>>`` arithmetic re-checked, the final
answer's consistency, hedges, the prompt's embedding) and escalates the least trustworthy answers
to the strong model. MMLU (correctness only, no responses): routing on the prompt alone
(embedding, subject, length), so no weak call is paid for requests sent strong.

Every figure is out of fold (5-fold cross-validation on the dev data: no row is scored by a router
trained on it). ``--gsm8k PATH`` instead trains on all of the dev half and evaluates on PATH (same
columns). Cost: tokens of each prompt and response (litellm's tokenizer) priced from litellm's
bundled map: weak = Mixtral-8x7B-Instruct (together_ai), strong = gpt-4-1106-preview. MMLU has no
responses: output is priced as one answer token for both.

Baselines in the same run: random routing (expected), always-weak, always-strong.

The shared data folder is ``--shared DIR``, else ``$CONTEXTFLOW_BENCH_SHARED``, else ``shared/``
beside the repository root (``<repo>/../shared``). Embeddings are cached in ``benchmarks/out/cache``
and plots written to ``--plot-dir`` (default ``benchmarks/out``), both ignored by git.

Exit codes: 0 with a ``skipped: ...`` line when ``<shared>/data/routellm`` is absent (with ``--json``
the last line is then ``{"skipped": ...}``); 2 when ``--gsm8k`` names no file; 0 after the figures.

    python benchmarks/routing.py [--shared DIR] [--gsm8k PATH] [--mmlu-rows N] [--plot-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import add_shared_argument, shared_dir, skip, usage_error

import contextflow  # noqa: F401  (offline settings)
from contextflow.core import catalog
from contextflow.core.tokens import count_tokens
from contextflow.cost.evaluation import Outcomes, curve, gain_per_dollar, metrics, plot
from contextflow.cost.router import embed, fit

OUTCOMES = Path("data") / "routellm"  # inside the shared folder
WEAK = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
CACHE = Path(__file__).resolve().parent / "out" / "cache"


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def tokens(texts: list[str]) -> np.ndarray:
    return np.array([count_tokens(t, "gpt-4") for t in texts], dtype=float)


def cached_embeddings(texts: list[str], tag: str) -> np.ndarray:
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"{tag}-{digest}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    vectors = embed(texts)
    print(f"  embedded {len(texts)} prompts in {time.perf_counter() - start:.1f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def costs(prompt_tokens: np.ndarray, weak_out: np.ndarray, strong_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, s = catalog.get(WEAK), catalog.get(STRONG)
    weak = prompt_tokens * w.input_cost_per_token + weak_out * w.output_cost_per_token
    strong = prompt_tokens * s.input_cost_per_token + strong_out * s.output_cost_per_token
    return weak, strong


def out_of_fold(rows_x: dict[str, Any], y: np.ndarray, folds: int = 5, seed: int = 0, strat: np.ndarray | None = None,
                **fit_args: Any) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    p = np.zeros(len(y))
    # The same folds for every head (``strat`` fixes them), so no head ever scores its training rows.
    labels = y if strat is None else strat
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), labels):
        def pick(value: Any, idx: np.ndarray) -> Any:
            if value is None:
                return None
            return value[idx] if isinstance(value, np.ndarray) else [value[i] for i in idx]
        router = fit(pick(rows_x["prompts"], train), y[train], weak=WEAK, strong=STRONG,
                     answers=pick(rows_x.get("answers"), train), categories=pick(rows_x.get("categories"), train),
                     embeddings=pick(rows_x["embeddings"], train), **fit_args)
        p[test] = router.predict_many(pick(rows_x["prompts"], test), pick(rows_x.get("answers"), test),
                                      pick(rows_x.get("categories"), test), pick(rows_x["embeddings"], test))
    return p


def report(name: str, outcomes: Outcomes, policies: dict[str, np.ndarray], plot_dir: Path) -> dict[str, Any]:
    curves = {label: curve(outcomes, p) for label, p in policies.items()}
    results = {label: metrics(outcomes, points) for label, points in curves.items()}
    print(f"\n{name}: weak accuracy {outcomes.weak_correct.mean():.3f}, strong {outcomes.strong_correct.mean():.3f}, "
          f"always-strong cost ${outcomes.strong_only_cost:.2f}, always-weak ${outcomes.weak_cost.sum():.2f} "
          f"({outcomes.weak_cost.sum() / outcomes.strong_only_cost:.1%} of strong)")
    for label, m in results.items():
        share = f"{m['cost_share_at_95']:.1%}" if m["cost_share_at_95"] is not None else "never"
        print(f"  {label:<34} 95% of strong accuracy at {share:>6} of its cost; APGR {m['apgr']:.3f}; "
              f"CPT50/80/95 {m['cpt_50']}/{m['cpt_80']}/{m['cpt_95']}; beats random everywhere: {m['beats_random_everywhere']}")
    best = next(iter(curves))
    print(f"  {best}, by threshold (share sent strong -> accuracy, cost share, random at that cost):")
    from contextflow.cost.evaluation import random_accuracy_at

    for point in curves[best][10:100:10]:
        print(f"    {point['strong_share']:.0%} -> {point['accuracy']:.3f}, {point['cost_share']:.1%}, random {random_accuracy_at(outcomes, point['cost']):.3f}")
    png = plot(curves, outcomes, plot_dir / f"routing-{name.lower()}.png", f"{name}: cost vs accuracy")
    print(f"  plot: {png}")
    return results[best]


def gsm8k(data: Path, path: Path | None, plot_dir: Path) -> dict[str, Any]:
    dev = read(data / "gsm8k_dev.csv")
    target = read(path) if path else dev

    def arrays(rows: list[dict[str, str]]) -> dict[str, Any]:
        return {"prompts": [r["prompt"] for r in rows], "answers": [r["weak_response"] for r in rows],
                "embeddings": cached_embeddings([r["prompt"] for r in rows], "gsm8k"),
                "y": np.array([r["weak_correct"] == "True" for r in rows], dtype=int),
                "strong": np.array([r["strong_correct"] == "True" for r in rows], dtype=int)}

    d, t = arrays(dev), arrays(target)
    prompt_tokens = tokens(t["prompts"])
    weak_cost, strong_cost = costs(prompt_tokens, tokens(t["answers"]), tokens([r["strong_response"] for r in target]))
    outcomes = Outcomes(t["y"].astype(bool), t["strong"].astype(bool), weak_cost, strong_cost, cascade=True)
    if path:
        router = fit(d["prompts"], d["y"], weak=WEAK, strong=STRONG, answers=d["answers"], embeddings=d["embeddings"], c="auto")
        p = router.predict_many(t["prompts"], t["answers"], None, t["embeddings"])
        no_embed = fit(d["prompts"], d["y"], weak=WEAK, strong=STRONG, answers=d["answers"], pca_dims=0, c="auto")
        p_plain = no_embed.predict_many(t["prompts"], t["answers"])
        strong_head = fit(d["prompts"], d["strong"], weak=WEAK, strong=STRONG, embeddings=d["embeddings"], pca_dims=16, c="auto")
        q = strong_head.predict_many(t["prompts"], None, None, t["embeddings"])
        out_model = np.polyfit(tokens(d["answers"]), tokens([r["strong_response"] for r in dev]), 1)
    else:
        both = d["y"] * 2 + d["strong"]
        p = out_of_fold(d, d["y"], strat=both, c="auto")
        p_plain = out_of_fold({**d, "embeddings": None}, d["y"], pca_dims=0, strat=both, c="auto")
        q = out_of_fold({**d, "answers": None}, d["strong"], strat=both, pca_dims=16, c="auto")
        out_model = None
    # The strong answer's length is predicted from the weak answer's (a linear fit; out of fold
    # when evaluating on the dev half), so the key uses no figure unknown before the strong call.
    weak_out = tokens(t["answers"])
    if out_model is not None:
        strong_out = np.polyval(out_model, weak_out)
    else:
        from sklearn.model_selection import KFold

        actual = tokens([r["strong_response"] for r in target])
        strong_out = np.zeros(len(weak_out))
        for train, test in KFold(5, shuffle=True, random_state=0).split(weak_out):
            strong_out[test] = np.polyval(np.polyfit(weak_out[train], actual[train], 1), weak_out[test])
    strong_price = catalog.get(STRONG)
    expected_strong = prompt_tokens * strong_price.input_cost_per_token + \
        np.maximum(strong_out, 10) * strong_price.output_cost_per_token
    from contextflow.cost.router_features import arithmetic_consistent

    verifier_only = np.array([1.0 if arithmetic_consistent(a) else 0.0 for a in t["answers"]]) + np.linspace(0, 1e-6, len(t["answers"]))
    return report("GSM8K", outcomes, {
        "cascade router, gain per $ (two heads)": gain_per_dollar(p, q, expected_strong),
        "cascade router (answer checks + embedding)": p,
        "cascade router (answer checks only)": p_plain,
        "arithmetic verifier alone": verifier_only,
        # An upper bound, not a policy: it knows which weak answers are wrong (seeded tie order).
        "oracle (knows the outcomes)": t["y"] + np.random.default_rng(0).random(len(t["y"])) * 1e-3,
    }, plot_dir)


def mmlu(data: Path, plot_dir: Path, rows_limit: int | None) -> dict[str, Any]:
    rows = read(data / "mmlu_outcomes.csv")
    if rows_limit:
        rng = np.random.default_rng(0)
        rows = [rows[i] for i in sorted(rng.choice(len(rows), rows_limit, replace=False))]
    prompts = [r["prompt"] for r in rows]
    d = {"prompts": prompts, "categories": [r["subject"] for r in rows],
         "embeddings": cached_embeddings(prompts, "mmlu")}
    y = np.array([r["weak_correct"] == "True" for r in rows], dtype=int)
    strong = np.array([r["strong_correct"] == "True" for r in rows], dtype=bool)
    one = np.ones(len(rows))
    weak_cost, strong_cost = costs(tokens(prompts), one, one)
    outcomes = Outcomes(y.astype(bool), strong, weak_cost, strong_cost, cascade=False)
    both = y * 2 + strong
    p = out_of_fold(d, y, pca_dims=64, strat=both)
    q = out_of_fold(d, strong.astype(int), pca_dims=64, strat=both)
    # The prompt's tokens are known before the call, so the extra cost of going strong is too.
    return report("MMLU", outcomes, {
        "prompt router, gain per $ (two heads)": gain_per_dollar(p, q, strong_cost - weak_cost),
        "prompt router (embedding + subject)": p,
    }, plot_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--gsm8k", type=Path, help="evaluate on this file (same columns) after training on the dev half")
    parser.add_argument("--mmlu-rows", type=int, default=None, help="a random sample of MMLU rows (default: all)")
    parser.add_argument("--plot-dir", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.gsm8k is not None and not args.gsm8k.is_file():
        usage_error(parser, f"--gsm8k {args.gsm8k} is not a file", args.json)
    data = shared_dir(args.shared) / OUTCOMES
    if not data.is_dir():
        return skip(f"{data} is absent (the recorded RouteLLM outcomes; pass --shared DIR or set "
                    "CONTEXTFLOW_BENCH_SHARED)", args.json)
    g = gsm8k(data, args.gsm8k, args.plot_dir)
    m = mmlu(data, args.plot_dir, args.mmlu_rows)
    figures = {
        "gsm8k_cost_share_at_95": g["cost_share_at_95"], "beats_random_everywhere": g["beats_random_everywhere"],
        "gsm8k_apgr": g["apgr"],
        "mmlu_cost_share_at_95": m["cost_share_at_95"], "mmlu_beats_random_everywhere": m["beats_random_everywhere"],
        "mmlu_apgr": m["apgr"],
    }
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
