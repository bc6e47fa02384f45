"""A learned router: predicts whether the cheaper model's answer will be good enough.

Trained from recorded outcomes (a CSV like ``../shared/data/routellm``, or verdicts from the run
store) on the prompt's embedding (the same sentence-transformers model the retrievers use,
reduced with PCA) plus cheap features of the prompt and, in a cascade, of the cheap answer. A
logistic model gives ``p`` = P(cheap answer suffices); the call goes to the strong model when
``p < threshold``. The threshold is calibrated to a target share of strong calls or a target
quality on the training outcomes.

Routers are saved as plain JSON (weights and scalers, no pickle), so loading one never runs code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from contextflow.cost.router_features import feature_matrix
from contextflow.core.errors import UserError
from contextflow.retrievers.encoder import get_encoder

Mode = Literal["prompt", "cascade"]


@dataclass
class Router:
    mode: Mode
    weak: str
    strong: str
    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    pca_mean: list[float] = field(default_factory=list)
    pca_components: list[list[float]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    # -- features ------------------------------------------------------------------------------
    def features(self, prompts: Sequence[str], answers: Sequence[str] | None = None,
                 categories: Sequence[str] | None = None, embeddings: np.ndarray | None = None) -> np.ndarray:
        parts = [feature_matrix(list(prompts), list(answers) if self.mode == "cascade" and answers is not None else None)]
        if self.mode == "cascade" and answers is None:
            raise ValueError("a cascade router needs the cheap model's answers")
        if self.categories:
            index = {c: i for i, c in enumerate(self.categories)}
            onehot = np.zeros((len(prompts), len(self.categories)))
            for row, category in enumerate(categories or [""] * len(prompts)):
                if category in index:
                    onehot[row, index[category]] = 1.0
            parts.append(onehot)
        if self.pca_components:
            vectors = embeddings if embeddings is not None else embed(list(prompts))
            parts.append((vectors - np.asarray(self.pca_mean)) @ np.asarray(self.pca_components).T)
        return np.hstack(parts)

    def predict_many(self, prompts: Sequence[str], answers: Sequence[str] | None = None,
                     categories: Sequence[str] | None = None, embeddings: np.ndarray | None = None) -> np.ndarray:
        x = (self.features(prompts, answers, categories, embeddings) - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = x @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    def predict(self, prompt: str, answer: str | None = None, category: str | None = None) -> float:
        """P(the cheaper model's answer suffices) for one prompt."""
        return float(self.predict_many([prompt], None if answer is None else [answer], [category or ""])[0])

    def choose(self, prompt: str, models: Sequence[str], answer: str | None = None) -> tuple[str, dict[str, Any]]:
        """The model to call (cheapest first in ``models``) and the decision for the trace."""
        p = self.predict(prompt, answer)
        chosen = models[0] if p >= self.threshold else models[-1]
        return chosen, {"candidates": list(models), "prediction": p, "threshold": self.threshold,
                        "chosen": chosen, "router": self.meta.get("name", "router")}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Router":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            raise UserError(f"no router at {path}", hint="train one with `contextflow router train`") from None
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path} is not a contextflow router: {exc}") from None


def embed(prompts: list[str]) -> np.ndarray:
    return np.asarray(get_encoder().encode(prompts), dtype=np.float64)


def fit(
    prompts: Sequence[str],
    weak_correct: Sequence[bool],
    *,
    weak: str,
    strong: str,
    answers: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
    pca_dims: int = 32,
    c: float | Literal["auto"] = 0.5,
    name: str = "router",
) -> Router:
    """Train a router on recorded outcomes (``weak_correct[i]``: was the cheap answer good)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(weak_correct, dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("the outcomes need both successes and failures of the cheaper model to learn from")
    mode: Mode = "cascade" if answers is not None else "prompt"
    router = Router(mode=mode, weak=weak, strong=strong, coef=[], intercept=0.0, mean=[], scale=[],
                    categories=sorted(set(categories)) if categories else [], meta={"name": name, "rows": len(y)})
    if pca_dims > 0:
        vectors = embeddings if embeddings is not None else embed(list(prompts))
        pca = PCA(n_components=min(pca_dims, vectors.shape[0] - 1, vectors.shape[1]), random_state=0).fit(vectors)
        router.pca_mean, router.pca_components = pca.mean_.tolist(), pca.components_.tolist()
    x = router.features(prompts, answers, categories, embeddings)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    if c == "auto":  # regularisation chosen by inner cross-validation on the training rows only
        from sklearn.linear_model import LogisticRegressionCV

        import warnings

        model = LogisticRegressionCV(Cs=[0.01, 0.03, 0.1, 0.3, 1.0], cv=5, scoring="neg_log_loss", max_iter=2000)
        with warnings.catch_warnings():  # scikit-learn's notices about future defaults, not about this fit
            warnings.simplefilter("ignore", FutureWarning)
            model.fit((x - mean) / scale, y)
        router.meta["c"] = float(model.C_[0])
    else:
        model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    router.coef, router.intercept = model.coef_[0].tolist(), float(model.intercept_[0])
    router.mean, router.scale = mean.tolist(), scale.tolist()
    return router


def calibrate(p_weak_ok: np.ndarray, *, strong_share: float | None = None, weak_correct: np.ndarray | None = None,
              strong_correct: np.ndarray | None = None, target_quality: float | None = None) -> float:
    """A threshold sending ``strong_share`` of calls to the strong model, or the smallest share
    that reaches ``target_quality`` (a fraction of the strong model's accuracy) on outcomes."""
    order = np.sort(p_weak_ok)
    if strong_share is not None:
        k = int(round(strong_share * len(order)))
        return float(order[k - 1] + 1e-12) if k > 0 else 0.0
    if target_quality is None or weak_correct is None or strong_correct is None:
        raise ValueError("give strong_share, or target_quality with the outcomes")
    goal = target_quality * float(np.mean(strong_correct))
    ranked = np.argsort(p_weak_ok)
    correct = np.asarray(weak_correct, dtype=float).copy()
    if correct.mean() >= goal:
        return 0.0
    for i in ranked:
        correct[i] = strong_correct[i]
        if correct.mean() >= goal:
            return float(p_weak_ok[i] + 1e-12)
    return 1.0 + 1e-9
