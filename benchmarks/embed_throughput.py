"""Embedding throughput: contextflow's pipelined Encoder against plain sentence-transformers encode.

On real source code (the .py files of an installed package, cut at line boundaries into chunks of
about ``--chunk-tokens`` model tokens), in one run on one device, it measures chunks/s and tokens/s
of (a) ``SentenceTransformer.encode`` as a user would call it (fp16 weights on CUDA, fp32 on the
CPU, its default batch size) and (b) ``Encoder.encode``, best of ``--repeat`` interleaved rounds.
It then checks the pipeline's vectors against a plain fp32 CPU encode on a sample of chunks
(cosine per chunk; the minimum is reported). With ``--chroma`` it also times writing the vectors
to a chromadb PersistentClient after encoding versus overlapped with it (``encode_stream``).

    python benchmarks/embed_throughput.py --chunks 600             # CPU: about 1-2 minutes on 2 cores
    python benchmarks/embed_throughput.py --chunks 100000 --json   # GPU machine
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import contextflow  # noqa: F401  (offline defaults before any HF import)

import numpy as np


def source_files(packages: str) -> list[Path]:
    files: list[Path] = []
    for package in packages.split(","):
        spec = importlib.util.find_spec(package.strip())
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"package {package!r} is not installed here; pass --package with others")
        files.extend(sorted(Path(list(spec.submodule_search_locations)[0]).rglob("*.py")))
    return files


def source_chunks(packages: str, count: int, chunk_tokens: int, tokenizer) -> list[str]:
    """Cut the packages' .py files (sorted, so runs are comparable) into ~chunk_tokens chunks."""
    chunks: list[str] = []
    files = source_files(packages)
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true"  # only for this preparation; the pipeline sets its own
    try:
        for first in range(0, len(files), 64):
            texts = [f.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                     for f in files[first : first + 64]]
            flat = [line for lines in texts for line in lines]
            counts = iter([len(e.ids) for e in tokenizer.encode_batch(flat, add_special_tokens=False)])
            for lines in texts:
                block: list[str] = []
                tokens = 0
                for line in lines:
                    block.append(line)
                    tokens += next(counts)
                    if tokens >= chunk_tokens:
                        chunks.append("".join(block))
                        block, tokens = [], 0
                if block and "".join(block).strip():
                    chunks.append("".join(block))
                if len(chunks) >= count:
                    return chunks[:count]
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved
    if len(chunks) < count:
        print(f"note: only {len(chunks)} chunks in {packages}; add packages with --package a,b", file=sys.stderr)
    return chunks


def free_cores() -> int:
    """Cores not busy with other work: OpenMP threads that share a core with another process
    spin at barriers and run far slower than fewer threads would (seen on a 2-core machine with one
    core busy elsewhere)."""
    cores = os.cpu_count() or 1
    return max(1, cores - round(os.getloadavg()[0]))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def chroma_overlap(encoder, texts: list[str], vectors: np.ndarray) -> dict[str, float]:
    """Seconds for encode-then-write versus encode_stream writing while it encodes."""
    import chromadb
    from chromadb.config import Settings

    def collection(folder: str, name: str):
        client = chromadb.PersistentClient(path=folder, settings=Settings(anonymized_telemetry=False))
        return client, client.create_collection(name, metadata={"hnsw:space": "cosine"})

    limit = 5000
    with tempfile.TemporaryDirectory() as folder:
        client, serial = collection(folder, "serial")

        def encode_then_write() -> None:
            found = encoder.encode(texts)
            for start in range(0, len(texts), limit):
                part = slice(start, start + limit)
                serial.add(ids=[str(i) for i in range(len(texts))][part], embeddings=found[part])

        serial_s, _ = timed(encode_then_write)
        _, streamed = collection(folder, "streamed")

        def write(indices: np.ndarray, batch: np.ndarray) -> None:
            streamed.add(ids=[str(i) for i in indices], embeddings=batch)

        stream_s, _ = timed(lambda: encoder.encode_stream(texts, write))
        assert streamed.count() == serial.count() == len(texts)
        del client
    return {"encode_then_write_s": serial_s, "encode_stream_s": stream_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=None, help="chunks to embed (default 600 CPU, 100000 GPU)")
    parser.add_argument("--chunk-tokens", type=int, default=250)
    parser.add_argument("--package", default="transformers,torch",
                        help="installed packages (comma-separated) whose .py files are chunked")
    parser.add_argument("--device", default=None, help="cuda, cpu (default: auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: the cores not already busy, by the load average)")
    parser.add_argument("--repeat", type=int, default=None, help="interleaved rounds, best kept (default 1 CPU, 3 GPU)")
    parser.add_argument("--slices", type=int, default=None, help="interleaved slices per round (default 6 CPU, 1 GPU)")
    parser.add_argument("--plain-batch-size", type=int, default=32, help="sentence-transformers' default is 32")
    parser.add_argument("--batch-tokens", type=int, default=None, help="pipeline token budget per batch")
    parser.add_argument("--dtype", default=None, help="pipeline precision: fp16, bf16, fp32 (default: auto)")
    parser.add_argument("--sample", type=int, default=256,
                        help="chunks checked against the fp32 CPU reference on a GPU (on the CPU: all of them)")
    parser.add_argument("--chroma", action="store_true", help="also time chromadb writes overlapped vs after")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object with the figures")
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from contextflow.retrievers.encoder import Encoder, choose_device

    torch.set_num_threads(args.threads or free_cores())
    device = choose_device(args.device)
    on_cuda = device.startswith("cuda")
    count = args.chunks or (100_000 if on_cuda else 600)
    repeat = args.repeat or (3 if on_cuda else 1)

    encoder = Encoder(device=device, dtype=args.dtype, batch_tokens=args.batch_tokens)
    plain = SentenceTransformer(encoder.model_source, device=device)
    if on_cuda:
        plain.half()  # the plain GPU baseline as a user would run it: encode with fp16 weights
    max_len = plain.max_seq_length
    from tokenizers import Tokenizer

    # A private copy without the truncation that tokenizer.json may carry, to count real tokens.
    backend = Tokenizer.from_str(plain[0].tokenizer._tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    texts = source_chunks(args.package, count, args.chunk_tokens, backend)
    tokens = int(sum(min(len(e.ids), max_len) for e in backend.encode_batch(texts)))
    print(f"{len(texts)} chunks of {args.package} source, {tokens} tokens "
          f"({tokens / max(len(texts), 1):.0f}/chunk, cut at {max_len}); device {device}, "
          f"torch threads {torch.get_num_threads()}, pipeline: {encoder!r}")

    warm = texts[: min(len(texts), 256)]
    plain.encode(warm, batch_size=args.plain_batch_size, normalize_embeddings=True)
    encoder.encode(warm)
    sync(device)

    def run_plain(part: list[str]) -> np.ndarray:
        return plain.encode(part, batch_size=args.plain_batch_size, normalize_embeddings=True,
                            convert_to_numpy=True)

    # Other processes share the cores here, so both methods are timed slice by slice, in
    # alternating order (ABBA), so a burst of outside load hits both about equally.
    slices = max(1, min(args.slices or (1 if on_cuda else 6), len(texts)))
    bounds = np.linspace(0, len(texts), slices + 1).astype(int)
    plain_best = pipe_best = float("inf")
    vectors = np.empty((len(texts), encoder.dim), np.float32)
    plain_vectors = np.empty_like(vectors)
    for round_no in range(repeat):
        plain_s = pipe_s = 0.0
        for k in range(slices):
            part = slice(bounds[k], bounds[k + 1])
            order = ("plain", "pipeline") if (k + round_no) % 2 == 0 else ("pipeline", "plain")
            for method in order:
                if method == "plain":
                    took, plain_vectors[part] = timed(lambda: run_plain(texts[part]))
                    plain_s += took
                else:
                    took, vectors[part] = timed(lambda: encoder.encode(texts[part]))
                    pipe_s += took
        plain_best, pipe_best = min(plain_best, plain_s), min(pipe_best, pipe_s)
        print(f"round {round_no + 1}: plain {len(texts) / plain_s:,.1f} chunks/s, "
              f"pipeline {len(texts) / pipe_s:,.1f} chunks/s", flush=True)

    rng = np.random.default_rng(0)
    size = min(args.sample, len(texts)) if on_cuda else len(texts)
    sample = np.sort(rng.choice(len(texts), size=size, replace=False))
    if on_cuda:
        reference_model = SentenceTransformer(encoder.model_source, device="cpu")
        reference = reference_model.encode([texts[i] for i in sample], normalize_embeddings=True)
    else:
        reference = plain_vectors[sample]  # the plain run here *is* the fp32 CPU reference
    cosines = (vectors[sample] * reference).sum(1) / (
        np.linalg.norm(vectors[sample], axis=1) * np.linalg.norm(reference, axis=1))
    plain_cos = (plain_vectors[sample] * reference).sum(1)

    result = {
        "device": torch.cuda.get_device_name(0) if on_cuda else f"cpu ({os.cpu_count()} cores)",
        "chunks": len(texts),
        "tokens": tokens,
        "chunks_per_s": round(len(texts) / pipe_best, 1),
        "plain_chunks_per_s": round(len(texts) / plain_best, 1),
        "tokens_per_s": round(tokens / pipe_best, 1),
        "plain_tokens_per_s": round(tokens / plain_best, 1),
        "ratio": round(plain_best / pipe_best, 3),
        "min_cosine": float(cosines.min()),
        "plain_min_cosine": float(plain_cos.min()),
        "cosine_sample": int(len(sample)),
        "torch_threads": torch.get_num_threads(),
        "slices": int(slices), "repeat": int(repeat),
        "dtype": str(encoder.dtype).replace("torch.", ""),
    }
    if args.chroma:
        result.update({k: round(v, 3) for k, v in chroma_overlap(encoder, texts, vectors).items()})
    print(f"plain encode : {result['plain_chunks_per_s']:>10,.1f} chunks/s {result['plain_tokens_per_s']:>12,.0f} tokens/s")
    print(f"pipeline     : {result['chunks_per_s']:>10,.1f} chunks/s {result['tokens_per_s']:>12,.0f} tokens/s")
    print(f"ratio pipeline/plain: {result['ratio']:.2f}x; min cosine vs fp32 CPU on {len(sample)} chunks: "
          f"{result['min_cosine']:.6f}")
    if "encode_stream_s" in result:
        print(f"chromadb: encode then write {result['encode_then_write_s']:.2f} s, "
              f"written while encoding {result['encode_stream_s']:.2f} s")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
