"""Indexing speed on a real repository: full index, one-file re-index and warm query latency.

The repository is a copy of ``--repo DIR``, or else a ``git archive`` of pylint at HEAD (~4k files)
from a bare clone at ``<mirrors>/pylint-dev+pylint/repo``, where the mirrors folder is ``--mirrors DIR``
or ``$CONTEXTFLOW_BENCH_MIRRORS``. Either way the benchmark works on a private copy in a temporary
folder (removed at the end) and never writes to the folder it was given. The baseline is what a
non-incremental indexer pays after a one-file edit: a full index from scratch. Targets: one-file
re-index under 2 s, warm query under 300 ms.

Exit codes: 2 when neither ``--repo`` nor a mirrors folder is given; 0 with a ``skipped: ...`` line
when the mirrors folder holds no pylint clone (with ``--json`` the last line is then
``{"skipped": ...}``); 0 after the figures otherwise.

Run: ``python benchmarks/index_speed.py (--repo DIR | --mirrors DIR) [--embeddings] [--queries 20] --json``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import folder_from, skip, usage_error

import contextflow  # noqa: F401
from contextflow.context import build_context
from contextflow.core.state import StateDir
from contextflow.retrievers.index import RepoIndex, open_index

DEFAULT_CLONE = Path("pylint-dev+pylint") / "repo"  # inside the mirrors folder
QUERIES = [
    "false positive unused-import when a module is only used in a type annotation",
    "crash in the similarity checker with ignore-imports enabled",
    "how are configuration options parsed from pyproject.toml",
    "add a new message for redefined loop variable",
    "too-many-branches counts elif incorrectly",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=None, help="Folder to index (default: pylint extracted from its mirror).")
    parser.add_argument("--mirrors", type=Path, default=None,
                        help="Folder of bare clones named owner+name/repo (default $CONTEXTFLOW_BENCH_MIRRORS).")
    parser.add_argument("--embeddings", action="store_true", help="Include embeddings (slow on a CPU: minutes).")
    parser.add_argument("--queries", type=int, default=20, help="Warm queries to time.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    clone: Path | None = None
    if args.repo is None:
        mirrors = folder_from(args.mirrors, "CONTEXTFLOW_BENCH_MIRRORS")
        if mirrors is None:
            usage_error(parser, "nothing to index: pass --repo DIR, or --mirrors DIR (or set "
                        "CONTEXTFLOW_BENCH_MIRRORS) for pylint from a bare clone there", args.json)
        clone = mirrors / DEFAULT_CLONE
        if not clone.is_dir():
            return skip(f"{clone} is absent (git clone --bare https://github.com/pylint-dev/pylint {clone}, "
                        "or pass --repo DIR)", args.json)
    elif not args.repo.is_dir():
        usage_error(parser, f"--repo {args.repo} is not a folder", args.json)
    work = Path(tempfile.mkdtemp(prefix="cf-index-speed-"))
    try:
        if clone is not None:
            root = work / "pylint"
            root.mkdir()
            archive = subprocess.run(["git", f"--git-dir={clone}", "archive", "HEAD"], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
        else:
            root = work / args.repo.name
            shutil.copytree(args.repo, root, symlinks=True)
        retrievers = ["bm25", "ast"] + (["embeddings"] if args.embeddings else [])

        t0 = time.perf_counter()
        full = RepoIndex(root, StateDir(work / "state-full")).update(embeddings=args.embeddings)
        full_s = time.perf_counter() - t0
        print(f"full index: {full.files} files, {full.chunks} chunks, embedded {full.embedded} in {full_s:.2f}s")

        state = StateDir(work / "state-full")
        index = open_index(root, state)
        build_context(root, QUERIES[0], budget_tokens=8000, retrievers=retrievers, state=state)  # load + warm up
        target = max((p for p in root.rglob("*.py") if ".git" not in p.parts), key=lambda p: p.stat().st_size)
        rel = target.relative_to(root).as_posix()
        original = target.read_text()
        times = []
        for n in range(3):
            target.write_text(original + f"\n\ndef added_by_benchmark_{n}():\n    return {n}\n")
            t1 = time.perf_counter()
            report = index.update(embeddings=args.embeddings)
            times.append(time.perf_counter() - t1)
            assert report.changed == [rel], report.changed
        reindex_s = statistics.median(times)
        print(f"one-file re-index ({rel}, {target.stat().st_size // 1024} KiB): median {reindex_s:.3f}s of 3,"
              f" embedded {report.embedded} chunks")

        latencies = []
        for n in range(args.queries):
            t2 = time.perf_counter()
            build_context(root, QUERIES[n % len(QUERIES)], budget_tokens=8000, retrievers=retrievers, state=state)
            latencies.append(time.perf_counter() - t2)
        query_s = statistics.median(latencies)
        p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
        print(f"warm query ({','.join(retrievers)}, 8k budget, with freshness walk): median {query_s * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms")
        settled = []
        for n in range(args.queries):
            t3 = time.perf_counter()
            build_context(root, QUERIES[n % len(QUERIES)], budget_tokens=8000, retrievers=retrievers, state=state,
                          refresh=False)
            settled.append(time.perf_counter() - t3)
        query_nowalk_s = statistics.median(settled)
        print(f"warm query without the freshness walk (refresh=False): median {query_nowalk_s * 1000:.0f} ms")
        ratio = full_s / reindex_s
        print(f"baseline (full re-index after a one-file edit) / incremental re-index: {ratio:.1f}x")
        print(f"targets: re-index < 2 s: {'met' if reindex_s < 2 else 'MISSED'}; query < 300 ms: "
              f"{'met' if query_s < 0.3 else 'MISSED'} (with walk), {'met' if query_nowalk_s < 0.3 else 'MISSED'} (without)")
        if args.json:
            print(json.dumps({"files": full.files, "chunks": full.chunks, "embeddings": args.embeddings,
                              "full_index_s": round(full_s, 3), "reindex_one_file_s": round(reindex_s, 3),
                              "query_median_s": round(query_s, 4), "query_p95_s": round(p95, 4),
                              "query_no_refresh_median_s": round(query_nowalk_s, 4),
                              "speedup_vs_full_reindex": round(ratio, 1)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
