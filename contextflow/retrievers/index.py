"""A repository's retrieval index: files, chunks, symbols, the file graph, BM25 and vectors.

Layout under ``<state>/index/``::

    repos/<repo-key>/meta.db   files (size, mtime, hash, PageRank), chunks, symbols, references, edges
    repos/<repo-key>/bm25/     the saved BM25 index
    chroma/                    vectors, one collection per repository and model
    vectors.db                 vectors by (model, chunk hash), kept across commits

``update()`` is incremental: unchanged files (same size and mtime, or same content hash) are not
read again, changed files are re-parsed, and only chunks with new content hashes are embedded.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contextflow.core.db import open_db
from contextflow.retrievers.ast_index import analyze
from contextflow.retrievers.bm25 import BM25Index, code_tokens
from contextflow.retrievers.chunks import Chunk, chunk_file
from contextflow.retrievers.repo_text import GitRunner, read_text, redacting, run_git
from contextflow.retrievers.walk import DEFAULT_MAX_FILE_BYTES, walk_repo
from contextflow.core.state import StateDir
from contextflow.retrievers.embeddings import EmbeddingStore
from contextflow.retrievers.graph import build_file_graph
from contextflow.retrievers.graph import pagerank

#: ``progress(stage, done, total)``: how long work reports itself (the CLI draws it with rich).
IndexProgress = Callable[[str, int, int], None]
#: A referenced name defined in more files than this is too generic to link files by.
_MAX_DEFINERS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha1 TEXT, lang TEXT,
  pagerank REAL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (id TEXT PRIMARY KEY, path TEXT, start_line INTEGER, end_line INTEGER, kind TEXT,
  symbols TEXT, header TEXT, text TEXT, cuts TEXT, lang TEXT, tokens TEXT);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE TABLE IF NOT EXISTS symbols (path TEXT, name TEXT, qualified TEXT, kind TEXT, start_line INTEGER,
  end_line INTEGER, signature TEXT, doc TEXT);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_path ON symbols(path);
CREATE TABLE IF NOT EXISTS refs (path TEXT, name TEXT, count INTEGER);
CREATE INDEX IF NOT EXISTS refs_path ON refs(path);
CREATE TABLE IF NOT EXISTS edges (src TEXT, dst TEXT, weight REAL, names TEXT);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT);
"""


def repo_key(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", root.name).strip("-")[:40] or "repo"
    return f"{name}-{hashlib.sha1(str(root).encode()).hexdigest()[:10]}"


@dataclass
class IndexReport:
    """What one ``update()`` changed."""

    files: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    chunks: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    embedded: int = 0
    embeddings_from_cache: int = 0
    embeddings_deleted: int = 0
    seconds: float = 0.0
    git: bool = False

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass
class ChunkRecord:
    """A chunk as the query side sees it (loaded from meta.db)."""

    id: str
    path: str
    start_line: int
    end_line: int
    kind: str
    symbols: list[str]
    header: str
    text: str
    cuts: list[int]
    lang: str


class RepoIndex:
    """Index of one repository in one state folder; cheap to reopen (loaded parts are cached)."""

    def __init__(self, root: str | Path, state: StateDir | None = None, *, runner: GitRunner = run_git,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self.root = Path(root).expanduser().resolve()
        self.state = state or StateDir.for_project(self.root)
        self.key = repo_key(self.root)
        self.folder = self.state.index_dir / "repos" / self.key
        self.runner = redacting(runner)
        self.max_file_bytes = max_file_bytes
        self._lock = threading.RLock()
        self._loaded_generation = -1
        self._chunks: dict[str, ChunkRecord] = {}
        self._by_path: dict[str, list[ChunkRecord]] = {}
        self._bm25: BM25Index | None = None
        self._graph: Any = None
        self._definers: dict[str, int] | None = None
        self._stores: dict[str | None, Any] = {}
        self._db: sqlite3.Connection | None = None

    # ---- storage --------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.state.ensure()
            self.folder.mkdir(parents=True, exist_ok=True)
            db = open_db(self.folder / "meta.db", kind="index metadata", schema=_SCHEMA, autocommit=False)
            db.execute("INSERT OR IGNORE INTO info VALUES ('root', ?)", (str(self.root),))
            db.commit()
            self._db = db
        return self._db

    def _info(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM info WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def _set_info(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO info VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self._info("generation", "0"))

    @property
    def is_git(self) -> bool:
        """Whether the last update found a git work tree."""
        return self._info("git", "0") == "1"

    def embedding_store(self, model: str | None = None, encoder: Any = None) -> Any:
        """The vector store for ``model``; ``encoder`` replaces the local one (e.g. a DaskEncoder)."""

        if model not in self._stores or encoder is not None:
            self._stores[model] = EmbeddingStore(self.state.index_dir, self.key, model, encoder=encoder)
        return self._stores[model]

    # ---- indexing -------------------------------------------------------------------------

    def update(self, *, embeddings: bool = False, model: str | None = None,
               progress: IndexProgress | None = None) -> IndexReport:
        """Bring the index up to date with the files on disk (and the vectors, when asked)."""
        with self._lock:
            return self._update(embeddings, model, progress)

    def _update(self, embeddings: bool, model: str | None, progress: IndexProgress | None) -> IndexReport:
        started = time.perf_counter()
        walked = walk_repo(self.root, max_file_bytes=self.max_file_bytes, runner=self.runner)
        report = IndexReport(files=len(walked.files), skipped=walked.skipped, git=walked.git)
        db = self.db
        known = {p: (s, m, h) for p, s, m, h in db.execute("SELECT path, size, mtime_ns, sha1 FROM files")}
        seen: set[str] = set()
        todo = []
        for f in walked.files:
            seen.add(f.path)
            old = known.get(f.path)
            if old is None or old[0] != f.size or old[1] != f.mtime_ns:
                todo.append(f)
        report.removed = sorted(set(known) - seen)
        with db:
            for path in report.removed:
                report.chunks_removed += self._forget(path)
            for n, f in enumerate(todo):
                if progress is not None:
                    progress("parsing", n, len(todo))
                try:
                    text = read_text(self.root, f.path)
                except OSError:
                    continue
                digest = hashlib.sha1((text or "").encode("utf-8", "replace")).hexdigest()
                old = known.get(f.path)
                if old is not None and old[2] == digest:
                    db.execute("UPDATE files SET size=?, mtime_ns=? WHERE path=?", (f.size, f.mtime_ns, f.path))
                    continue
                (report.changed if old is not None else report.added).append(f.path)
                if old is not None:
                    report.chunks_removed += self._forget(f.path)
                report.chunks_added += self._ingest(f.path, f.size, f.mtime_ns, digest, text)
            if progress is not None:
                progress("parsing", len(todo), len(todo))
            if report.changed_anything or not self.folder.joinpath("bm25", "ids.json").is_file():
                self._rebuild_derived(progress)
                self._set_info("generation", str(self.generation + 1))
            self._set_info("indexed_at", str(time.time()))
            self._set_info("git", "1" if walked.git else "0")
        report.chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if embeddings:
            self._sync_vectors(model, report, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _forget(self, path: str) -> int:
        db = self.db
        removed = db.execute("DELETE FROM chunks WHERE path=?", (path,)).rowcount
        for table in ("files", "symbols", "refs"):
            db.execute(f"DELETE FROM {table} WHERE path=?", (path,))
        return removed

    def _ingest(self, path: str, size: int, mtime_ns: int, digest: str, text: str | None) -> int:
        db = self.db
        if text is None:
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, 0)", (path, size, mtime_ns, digest, "binary"))
            return 0
        # read_text handed over redacted text: secrets are gone before anything is parsed or
        # stored, so no index (lexical or vector) ever holds one.
        try:
            analysis = analyze(path, text)
        except Exception:  # a grammar failure degrades to line chunks rather than losing the file
            analysis = None
        chunks = chunk_file(path, text, analysis)
        db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, 0)",
                   (path, size, mtime_ns, digest, analysis.lang if analysis else "text"))
        if analysis is not None:
            db.executemany(
                "INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(path, d.name, d.qualified, d.kind, d.start_line, d.end_line, d.signature, d.doc)
                 for d in analysis.definitions],
            )
            db.executemany("INSERT INTO refs VALUES (?, ?, ?)", [(path, n, c) for n, c in analysis.references.items()])
        rows = []
        seen_ids: set[str] = set()
        for c in chunks:
            cid = c.content_hash
            n = 1
            while cid in seen_ids:  # identical chunks in one file still need distinct ids
                cid = f"{c.content_hash}-{n}"
                n += 1
            seen_ids.add(cid)
            rows.append(_chunk_row(cid, c))
        db.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def _rebuild_derived(self, progress: IndexProgress | None) -> None:
        """BM25 and the file graph from what meta.db holds (cheap next to parsing or embedding)."""
        if progress is not None:
            progress("ranking", 0, 2)
        db = self.db
        rows = db.execute("SELECT id, tokens FROM chunks ORDER BY path, start_line").fetchall()
        BM25Index.build([r[0] for r in rows], [r[1].split() for r in rows]).save(self.folder / "bm25")
        if progress is not None:
            progress("ranking", 1, 2)

        graph = build_file_graph(
            db.execute("SELECT path, name FROM symbols").fetchall(), db.execute("SELECT path, name, count FROM refs").fetchall(),
            [r[0] for r in db.execute("SELECT path FROM files")], max_definers=_MAX_DEFINERS,
        )
        ranks = pagerank(graph)
        db.execute("DELETE FROM edges")
        db.executemany("INSERT INTO edges VALUES (?, ?, ?, ?)",
                       [(a, b, d["weight"], json.dumps(sorted(d["names"])[:20])) for a, b, d in graph.edges(data=True)])
        db.executemany("UPDATE files SET pagerank=? WHERE path=?", [(r, p) for p, r in ranks.items()])
        if progress is not None:
            progress("ranking", 2, 2)

    def _sync_vectors(self, model: str | None, report: IndexReport, progress: IndexProgress | None) -> None:
        texts = {cid: _search_text(path, symbols, header, text) for cid, path, symbols, header, text in
                 self.db.execute("SELECT id, path, symbols, header, text FROM chunks")}
        store = self.embedding_store(model)
        sync = store.sync(texts, (lambda d, t: progress("embedding", d, t)) if progress else None)
        report.embedded, report.embeddings_from_cache, report.embeddings_deleted = sync.embedded, sync.from_cache, sync.deleted

    # ---- query side -----------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        generation = self.generation
        if generation == self._loaded_generation:
            return
        with self._lock:  # retrieve nodes run in threads: load once, never half-swapped
            if generation != self._loaded_generation:
                self._load(generation)

    def _load(self, generation: int) -> None:
        chunks: dict[str, ChunkRecord] = {}
        by_path: dict[str, list[ChunkRecord]] = {}
        for cid, path, s, e, kind, symbols, header, text, cuts, lang in self.db.execute(
            "SELECT id, path, start_line, end_line, kind, symbols, header, text, cuts, lang FROM chunks ORDER BY path, start_line"
        ):
            rec = ChunkRecord(cid, path, s, e, kind, json.loads(symbols), header, text, json.loads(cuts), lang)
            chunks[cid] = rec
            by_path.setdefault(path, []).append(rec)
        self._chunks, self._by_path = chunks, by_path
        self._bm25 = BM25Index.load(self.folder / "bm25") or BM25Index([], None)
        self._graph = None
        self._definers = None
        self._loaded_generation = generation

    @property
    def chunks(self) -> dict[str, ChunkRecord]:
        self._ensure_loaded()
        return self._chunks

    def chunks_of(self, path: str) -> list[ChunkRecord]:
        self._ensure_loaded()
        return self._by_path.get(path, [])

    def chunk_at(self, path: str, line: int) -> ChunkRecord | None:
        for c in self.chunks_of(path):
            if c.start_line <= line <= c.end_line:
                return c
        return None

    @property
    def bm25(self) -> BM25Index:
        self._ensure_loaded()
        assert self._bm25 is not None
        return self._bm25

    @property
    def graph(self) -> Any:
        """networkx DiGraph file -> file (an edge means the source references names the target defines)."""
        self._ensure_loaded()
        if self._graph is None:
            import networkx as nx

            graph = nx.DiGraph()
            for path, rank in self.db.execute("SELECT path, pagerank FROM files"):
                graph.add_node(path, pagerank=rank)
            for a, b, w, names in self.db.execute("SELECT src, dst, weight, names FROM edges"):
                graph.add_edge(a, b, weight=w, names=json.loads(names))
            self._graph = graph
        return self._graph

    def definitions_named(self, names: list[str]) -> list[tuple[str, str, str, int, int, str]]:
        """(name, path, kind, start_line, end_line, signature) of definitions with these names."""
        out = []
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            marks = ",".join("?" * len(batch))
            out += self.db.execute(
                f"SELECT name, path, kind, start_line, end_line, signature FROM symbols WHERE name IN ({marks})", batch
            ).fetchall()
        return out

    def definer_counts(self) -> dict[str, int]:
        """Name -> number of files defining it (cached until the index changes)."""
        self._ensure_loaded()
        if self._definers is None:
            self._definers = dict(self.db.execute("SELECT name, COUNT(DISTINCT path) FROM symbols GROUP BY name"))
        return self._definers

    def file_paths(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM files WHERE lang != 'binary'")]


def _search_text(path: str, symbols_json: str, header: str, text: str) -> str:
    symbols = json.loads(symbols_json)
    return Chunk(path, 0, 0, text, "", symbols, header).search_text()


def _chunk_row(cid: str, c: Chunk) -> tuple[Any, ...]:
    return (cid, c.path, c.start_line, c.end_line, c.kind, json.dumps(c.symbols), c.header, c.text, json.dumps(c.cuts),
            c.lang, " ".join(code_tokens(c.search_text())))


_open: dict[tuple[str, str], RepoIndex] = {}
_open_lock = threading.Lock()


def open_index(root: str | Path, state: StateDir | None = None) -> RepoIndex:
    """The process-wide RepoIndex of ``root`` in ``state`` (so repeated queries reuse loaded parts)."""
    resolved = Path(root).expanduser().resolve()
    state = state or StateDir.for_project(resolved)
    key = (str(resolved), str(state.root))
    with _open_lock:
        index = _open.get(key)
        if index is None:
            index = RepoIndex(resolved, state)
            _open[key] = index
        return index
