"""Embedding on a Dask cluster: batches fan out to workers (GPU workers when the cluster has them).

:class:`DaskEncoder` has the shape of :class:`~contextflow.retrievers.encoder.Encoder`
(``encode``, ``encode_stream``, ``model_id``, ``dim``), so the index's embedding store uses it
unchanged: each worker loads the model once (the encoder cache is per process) and encodes
whole batches; vectors come back in order, and ``encode_stream`` hands each finished batch to
the store while the others are still running.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from contextflow.retrievers.encoder import get_encoder


def _encode_on_worker(texts: list[str], model: str | None) -> np.ndarray:
    return get_encoder(model).encode(texts)


def _describe_on_worker(model: str | None) -> tuple[str, int]:
    encoder = get_encoder(model)
    return encoder.model_id, encoder.dim


class DaskEncoder:
    """Encode on a ``distributed.Client``'s workers, ``batch_size`` texts per task."""

    def __init__(self, client: Any, model: str | None = None, batch_size: int = 256) -> None:
        self.client = client
        self.model = model
        self.batch_size = batch_size
        # A fresh look: the client's cached scheduler_info() can predate the workers.
        workers = client.sync(client.scheduler.identity).get("workers", {}).values()
        self.uses_gpus = any((w.get("resources") or {}).get("GPU", 0) > 0 for w in workers)
        self.model_id, self.dim = client.submit(_describe_on_worker, model, pure=False, resources=self._resources()).result()

    def _resources(self) -> dict[str, float] | None:
        return {"GPU": 1} if self.uses_gpus else None

    def _futures(self, texts: Sequence[str]) -> list[tuple[int, Any]]:
        futures = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            futures.append((start, self.client.submit(_encode_on_worker, batch, self.model, pure=False,
                                                      resources=self._resources())))
        return futures

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = self.client.gather([future for _, future in self._futures(texts)])
        return np.vstack(parts).astype(np.float32, copy=False)

    def encode_stream(self, texts: Sequence[str], batch_callback: Callable[[np.ndarray, np.ndarray], None],
                      *, show_progress: bool = False, **_: Any) -> int:
        """Call ``batch_callback(indices, vectors)`` as each worker's batch finishes."""
        from distributed import as_completed

        futures = self._futures(texts)
        start_of = {future.key: start for start, future in futures}
        delivered = 0
        for future in as_completed([future for _, future in futures]):
            vectors = np.asarray(future.result(), dtype=np.float32)
            start = start_of[future.key]
            batch_callback(np.arange(start, start + len(vectors)), vectors)
            delivered += len(vectors)
        return delivered
