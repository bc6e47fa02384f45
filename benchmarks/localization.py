"""Code localization on SWE-bench tasks: does the window hold the files and functions the fix touched?

For each task in ``<shared>/data/swebench/dev_instances.json`` the repository is extracted at its
base commit (``git archive`` from a bare clone under ``--mirrors``, into ``--trees/<repo>``, reused
across tasks so the index updates incrementally; the index lives in ``--state``), the issue text is
the query, and the window is built at 4k, 8k and 16k tokens by BM25 alone, embeddings alone and the
fused engine.

- file hit: every file of the gold patch has at least one item in the window;
- span recall: share of the gold spans (function or Class.method) whose definition overlaps an item.

Inputs (a flag, else its environment variable):

- ``--mirrors DIR`` / ``$CONTEXTFLOW_BENCH_MIRRORS``: bare clones named ``owner+name/repo``
  (e.g. ``psf+requests/repo``); required.
- ``--trees DIR`` / ``$CONTEXTFLOW_BENCH_TREES``: where the trees are extracted, one subfolder per
  repository, replaced whenever the commit changes; required.
- ``--state DIR`` / ``$CONTEXTFLOW_BENCH_STATE``: the state folder holding the index; required. Keep it
  between runs: vectors are cached by content hash, so a second run embeds almost nothing.
- ``--shared DIR`` / ``$CONTEXTFLOW_BENCH_SHARED``: the shared data folder (default ``<repo>/../shared``).

Exit codes: 2 when ``--mirrors``, ``--trees`` or ``--state`` is not given; 0 with a ``skipped: ...``
line when the task file or a selected repository's clone is absent (with ``--json`` the last line is
then ``{"skipped": ...}``); 0 after the figures otherwise.

Run: ``python benchmarks/localization.py --mirrors M --trees T --state S [--max-tasks N] [--repos requests,pytest]
[--methods bm25,fused] --json``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import add_shared_argument, require_folder, shared_dir, skip, usage_error

import contextflow  # noqa: F401
from contextflow.context import build_context
from contextflow.core.state import StateDir
from contextflow.retrievers.index import open_index

TASKS_FILE = Path("data") / "swebench" / "dev_instances.json"  # inside the shared folder
BUDGETS = (4000, 8000, 16000)
#: method -> (retrievers, extra build_context options). The single-retriever baselines are plain:
#: no test-file prior, no file focus (and no expansion, which needs more than one retriever).
METHODS = {"bm25": (["bm25"], {"test_factor": 1.0, "file_focus": 0.0}),
           "embeddings": (["embeddings"], {"test_factor": 1.0, "file_focus": 0.0}),
           "fused": (["bm25", "ast", "embeddings"], {}),
           "lexical": (["bm25", "ast"], {})}  # lexical: the fused engine without embeddings (fast on a CPU)


def mirror_of(mirrors: Path, repo: str) -> Path:
    return mirrors / repo.replace("/", "+") / "repo"


def commit_time(mirrors: Path, repo: str, commit: str) -> int:
    if not mirror_of(mirrors, repo).is_dir():
        return 0
    out = subprocess.run(["git", f"--git-dir={mirror_of(mirrors, repo)}", "show", "-s", "--format=%ct", commit],
                         capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def extract(mirrors: Path, trees: Path, repo: str, commit: str) -> Path:
    """The tree of ``repo`` at ``commit`` in a folder reused for every task of that repository."""
    target = trees / repo.split("/")[1]
    marker = target / ".extracted-commit"
    if marker.is_file() and marker.read_text() == commit:
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", f"--git-dir={mirror_of(mirrors, repo)}", "archive", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    marker.write_text(commit)
    (target / ".gitignore").write_text(".extracted-commit\n" + ((target / ".gitignore").read_text()
                                                                 if (target / ".gitignore").is_file() else ""))
    return target


def gold_lines(root: Path, state: StateDir, spans: dict[str, list[str]]) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Line ranges of each gold span's definition (qualified name, else its last part) in its file."""
    index = open_index(root, state)
    out: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for path, names in spans.items():
        rows = index.db.execute("SELECT qualified, name, start_line, end_line FROM symbols WHERE path=?", (path,)).fetchall()
        for span in names:
            exact = [(s, e) for q, _n, s, e in rows if q == span]
            loose = [(s, e) for _q, n, s, e in rows if n == span.split(".")[-1]]
            out[(path, span)] = exact or loose
    return out


def score(window, spans: dict[str, list[str]], lines: dict) -> tuple[bool, float]:  # noqa: ANN001
    items = window.items
    files = {i.path for i in items}
    file_hit = all(p in files for p in spans)
    total = sum(len(v) for v in spans.values())
    found = 0
    for (path, _span), ranges in lines.items():
        if any(i.path == path and i.start_line <= e and s <= i.end_line for i in items for s, e in ranges):
            found += 1
    return file_hit, (found / total if total else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tasks", type=int, default=0, help="Stop after this many tasks (0: all).")
    parser.add_argument("--repos", default="", help="Comma-separated repository names to keep (e.g. requests,pytest).")
    parser.add_argument("--methods", default="bm25,embeddings,fused", help=f"Any of {', '.join(METHODS)}.")
    parser.add_argument("--mirrors", type=Path, default=None,
                        help="Folder of bare clones named owner+name/repo (default $CONTEXTFLOW_BENCH_MIRRORS).")
    parser.add_argument("--trees", type=Path, default=None,
                        help="Folder to extract the trees into (default $CONTEXTFLOW_BENCH_TREES).")
    parser.add_argument("--state", type=Path, default=None,
                        help="State folder for the index (default $CONTEXTFLOW_BENCH_STATE).")
    add_shared_argument(parser)
    parser.add_argument("--max-minutes", type=float, default=0,
                        help="Stop starting new tasks after this many minutes; figures cover the finished ones (0: no limit).")
    parser.add_argument("--json", action="store_true", help="Last line: one JSON object with the figures.")
    args = parser.parse_args(argv)
    mirrors = require_folder(parser, args.mirrors, "--mirrors", "CONTEXTFLOW_BENCH_MIRRORS",
                             "folder of repository clones", args.json)
    trees = require_folder(parser, args.trees, "--trees", "CONTEXTFLOW_BENCH_TREES",
                           "folder to extract trees into", args.json)
    state_root = require_folder(parser, args.state, "--state", "CONTEXTFLOW_BENCH_STATE",
                                "state folder for the index", args.json)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        usage_error(parser, f"unknown method(s) {unknown}; choose from {list(METHODS)}", args.json)
    data = shared_dir(args.shared) / TASKS_FILE
    if not data.is_file():
        return skip(f"{data} is absent (the SWE-bench tasks of the shared data folder; "
                    "pass --shared DIR or set CONTEXTFLOW_BENCH_SHARED)", args.json)
    tasks = json.loads(data.read_text())
    wanted = {r for r in args.repos.split(",") if r}
    tasks = [t for t in tasks if not wanted or t["repo"].split("/")[1] in wanted]
    # One repository at a time, in commit-date order: each task's tree differs little from the last,
    # so the index update (and the embedding of changed chunks) stays small.
    tasks.sort(key=lambda t: (t["repo"], commit_time(mirrors, t["repo"], t["base_commit"]), t["instance_id"]))
    if args.max_tasks:
        tasks = tasks[: args.max_tasks]
    missing = sorted({t["repo"] for t in tasks if not mirror_of(mirrors, t["repo"]).is_dir()})
    if missing:
        return skip(f"no clone of {', '.join(missing)} under {mirrors} (git clone --bare each as "
                    "owner+name/repo there, or choose others with --repos)", args.json)
    state = StateDir(state_root)
    results: dict[str, dict[int, list[tuple[bool, float]]]] = {m: {b: [] for b in BUDGETS} for m in methods}
    index_seconds = 0.0
    query_seconds: list[float] = []
    started = time.perf_counter()
    done = 0
    for n, task in enumerate(tasks, 1):
        if args.max_minutes and time.perf_counter() - started > args.max_minutes * 60:
            print(f"time limit reached: stopping after {done} of {len(tasks)} tasks")
            break
        root = extract(mirrors, trees, task["repo"], task["base_commit"])
        t0 = time.perf_counter()
        report = open_index(root, state).update(embeddings="embeddings" in methods or "fused" in methods)
        index_seconds += time.perf_counter() - t0
        lines = gold_lines(root, state, task["expected_spans"])
        line = [f"[{n}/{len(tasks)}] {task['instance_id']} (+{len(report.added)} ~{len(report.changed)} "
                f"-{len(report.removed)} files, embedded {report.embedded}, cached {report.embeddings_from_cache})"]
        for method in methods:
            for budget in BUDGETS:
                t1 = time.perf_counter()
                retrievers, options = METHODS[method]
                window = build_context(root, task["problem_statement"], budget_tokens=budget,
                                       retrievers=retrievers, state=state, refresh=False, **options)
                query_seconds.append(time.perf_counter() - t1)
                results[method][budget].append(score(window, task["expected_spans"], lines))
            hit, recall = results[method][8000][-1]
            line.append(f"{method}@8k {'hit' if hit else 'miss'} {recall:.2f}")
        print("  ".join(line), flush=True)
        done += 1
    summary: dict[str, object] = {"tasks": done, "tasks_selected": len(tasks), "seconds": round(time.perf_counter() - started, 1),
                                  "index_seconds": round(index_seconds, 1),
                                  "median_query_s": round(sorted(query_seconds)[len(query_seconds) // 2], 3)}
    print(f"\n{done} tasks; file hit / span recall")
    print(f"{'method':<12}" + "".join(f"{b // 1000}k".rjust(16) for b in BUDGETS))
    for method in methods:
        cells = []
        for budget in BUDGETS:
            rows = results[method][budget]
            hit = sum(h for h, _ in rows) / max(1, len(rows))
            recall = sum(r for _, r in rows) / max(1, len(rows))
            summary[f"{method}_file_hit_{budget // 1000}k"] = round(hit, 4)
            summary[f"{method}_span_recall_{budget // 1000}k"] = round(recall, 4)
            cells.append(f"{hit:6.1%} / {recall:5.1%}".rjust(16))
        print(f"{method:<12}" + "".join(cells))
    if "fused" in methods and "bm25" in methods:
        base = summary["bm25_span_recall_8k"] or 1e-9
        print(f"fused vs BM25 alone, span recall at 8k: {summary['fused_span_recall_8k'] / base:.2f}x")  # type: ignore[operator]
    if "fused" in methods:
        summary["file_hit_8k"] = summary["fused_file_hit_8k"]
        summary["span_recall_8k"] = summary["fused_span_recall_8k"]
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
