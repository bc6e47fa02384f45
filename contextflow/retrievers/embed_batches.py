"""Tokenize texts into length-sorted, token-budgeted, padded batches, in parallel workers.

The expensive part of feeding a small encoder is not the forward pass but everything around it:
tokenizing, padding, and the host-to-device copy. This module does all of that in worker threads
(the Rust tokenizer releases the GIL while it encodes), so the device thread only launches kernels.

Texts are cut into groups in input order; each group is tokenized once without padding, sorted by
real token length and split into batches whose padded size (rows x longest row) stays under a token
budget. Sorting inside a group keeps padding small without waiting for the whole corpus to be
tokenized, which is what lets tokenization overlap the forward pass.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class TokenBatch:
    """One padded batch; ``indices`` are positions in the caller's list of texts."""

    indices: np.ndarray
    input_ids: Any
    attention_mask: Any
    token_type_ids: Any | None
    real_tokens: int

    def __len__(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True)
class TokenizerSettings:
    """What the model's own tokenizer call does, copied so workers can reproduce it exactly."""

    tokenizer_json: str
    max_length: int
    truncation_side: str
    pad_left: bool
    pad_id: int
    pad_type_id: int
    lowercase: bool
    with_type_ids: bool


def settings_from_hf(hf_tokenizer: Any, max_length: int, lowercase: bool) -> TokenizerSettings:
    """Read the settings from a transformers fast tokenizer (raises AttributeError when not fast)."""
    backend = hf_tokenizer._tokenizer  # the Rust tokenizer behind every "fast" tokenizer
    pad_id = hf_tokenizer.pad_token_id
    return TokenizerSettings(
        tokenizer_json=backend.to_str(),
        max_length=int(max_length),
        truncation_side=str(getattr(hf_tokenizer, "truncation_side", "right")),
        pad_left=getattr(hf_tokenizer, "padding_side", "right") == "left",
        pad_id=int(pad_id) if pad_id is not None else 0,
        pad_type_id=int(getattr(hf_tokenizer, "pad_token_type_id", 0) or 0),
        lowercase=lowercase,
        with_type_ids="token_type_ids" in getattr(hf_tokenizer, "model_input_names", ()),
    )


class BatchTokenizer:
    """Turns groups of texts into padded batches; safe to call from several threads at once."""

    def __init__(
        self,
        settings: TokenizerSettings,
        *,
        batch_tokens: int,
        max_batch_size: int,
        pad_multiple: int = 1,
        pin_memory: bool = False,
        min_rows: int = 8,
        max_padding: float = 0.25,
    ) -> None:
        self.settings = settings
        self.batch_tokens = max(int(batch_tokens), settings.max_length)
        self.max_batch_size = max(1, int(max_batch_size))
        self.pad_multiple = max(1, int(pad_multiple))
        self.pin_memory = pin_memory
        self.min_rows = max(1, int(min_rows))
        self.max_padding = float(max_padding)
        self._local = threading.local()

    def _backend(self) -> Any:
        # One Rust tokenizer per thread: its truncation/padding state is mutable and shared
        # state between threads would race.
        backend = getattr(self._local, "backend", None)
        if backend is None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(self.settings.tokenizer_json)
            backend.no_padding()
            backend.enable_truncation(
                max_length=self.settings.max_length,
                stride=0,
                strategy="longest_first",
                direction=self.settings.truncation_side,
            )
            self._local.backend = backend
        return backend

    def tokenize_group(self, texts: Sequence[str], indices: np.ndarray) -> list[TokenBatch]:
        if self.settings.lowercase:
            texts = [t.lower() for t in texts]
        encodings = self._backend().encode_batch(list(texts), add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")
        sorted_lengths = lengths[order]
        batches: list[TokenBatch] = []
        start = 0
        while start < len(order):
            stop = start + self._rows_for(sorted_lengths[start:])
            chosen = order[start:stop]
            batches.append(self._pad([encodings[i] for i in chosen], lengths[chosen], indices[chosen]))
            start = stop
        return batches

    def _rows_for(self, lengths_desc: np.ndarray) -> int:
        """Rows for the next batch: within the token budget and the row cap, and, once the batch
        has ``min_rows``, no more rows than keep padding under ``max_padding`` of its cells."""
        longest = max(int(lengths_desc[0]), 1)
        cap = min(len(lengths_desc), self.max_batch_size, max(1, self.batch_tokens // longest))
        if cap <= self.min_rows:
            return cap
        real = np.cumsum(lengths_desc[:cap])
        cells = longest * np.arange(1, cap + 1)
        too_padded = (cells - real) > self.max_padding * cells
        too_padded[: self.min_rows] = False
        return int(np.argmax(too_padded)) if too_padded.any() else cap

    def _pad(self, encodings: list[Any], lengths: np.ndarray, indices: np.ndarray) -> TokenBatch:
        longest = int(lengths[0]) if len(lengths) else 0
        width = -(-longest // self.pad_multiple) * self.pad_multiple
        width = max(longest, min(width, self.settings.max_length))
        positions = np.arange(width)[None, :]
        if self.settings.pad_left:
            mask = positions >= (width - lengths)[:, None]
        else:
            mask = positions < lengths[:, None]
        total = int(lengths.sum())
        ids = np.full((len(encodings), width), self.settings.pad_id, dtype=np.int64)
        # Boolean assignment fills the masked cells in row-major order, which is exactly the order
        # of the concatenated token lists, for right and left padding alike.
        ids[mask] = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), np.int64, total)
        type_ids = None
        if self.settings.with_type_ids:
            type_ids = np.full((len(encodings), width), self.settings.pad_type_id, dtype=np.int64)
            type_ids[mask] = np.fromiter(
                itertools.chain.from_iterable(e.type_ids for e in encodings), np.int64, total
            )
        return TokenBatch(
            indices=indices.astype(np.int64, copy=False),
            input_ids=self._tensor(ids),
            attention_mask=self._tensor(mask.astype(np.int64)),
            token_type_ids=None if type_ids is None else self._tensor(type_ids),
            real_tokens=total,
        )

    def _tensor(self, array: np.ndarray) -> Any:
        import torch

        tensor = torch.from_numpy(array)
        # Pinned (page-locked) memory lets the host-to-device copy run asynchronously; pinning
        # here, in a worker, keeps that cost off the thread that drives the GPU.
        return tensor.pin_memory() if self.pin_memory else tensor


def group_bounds(n: int, group_size: int, workers: int, first: int = 256) -> list[tuple[int, int]]:
    """Cut ``range(n)`` into groups that start small and double up to ``group_size``.

    Small first groups get the device busy quickly; large later ones sort more texts together
    (less padding). No group is larger than an even share per worker, so small inputs are
    still tokenized by every worker.
    """
    share = -(-n // max(1, workers)) if n else 1
    cap = max(1, min(group_size, max(share, first)))
    bounds: list[tuple[int, int]] = []
    start, size = 0, min(first, cap)
    while start < n:
        stop = min(n, start + size)
        bounds.append((start, stop))
        start, size = stop, min(cap, size * 2)
    return bounds


def iter_token_batches(
    texts: Sequence[str],
    tokenizer: BatchTokenizer,
    pool: Executor,
    *,
    group_size: int,
    workers: int,
) -> Iterator[TokenBatch]:
    """Yield every text's batch once; groups are tokenized ahead on ``pool``'s threads."""
    bounds = iter(group_bounds(len(texts), group_size, workers))
    pending: deque[Future[list[TokenBatch]]] = deque()

    def submit_next() -> None:
        span = next(bounds, None)
        if span is not None:
            start, stop = span
            idx = np.arange(start, stop, dtype=np.int64)
            pending.append(pool.submit(tokenizer.tokenize_group, texts[start:stop], idx))

    # Enough groups ahead to keep every worker busy, few enough to bound the pinned memory held.
    for _ in range(workers + 2):
        submit_next()
    try:
        while pending:
            batches = pending.popleft().result()
            submit_next()
            yield from batches
    finally:
        for future in pending:
            future.cancel()
