"""Vector retrieval: chunk embeddings from the shared Encoder, stored in chromadb.

One chromadb collection per repository and model under ``<state>/index/chroma``. Chunk ids are
content hashes, so syncing a changed repository embeds only chunks whose text changed and deletes
the vectors of chunks that disappeared. A small SQLite cache (``vectors.db``, keyed by model and
chunk hash) keeps vectors of chunks that went away, so switching branches or commits back and
forth does not embed the same code twice.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contextflow.core.db import open_db
from contextflow.core.errors import UserError
from contextflow.retrievers.encoder import get_encoder

Progress = Callable[[int, int], None]  # (done, total)

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


CHROMA_URL_ENV = "CONTEXTFLOW_CHROMA_URL"


def chroma_client(folder: Path, url: str | None = None) -> Any:
    """A process-wide chromadb client: the embedded PersistentClient for ``folder`` (the default),
    or an HttpClient for a shared ``chroma run`` server when ``url`` or ``$CONTEXTFLOW_CHROMA_URL``
    is set (e.g. http://127.0.0.1:8000), so several machines share one index."""
    import os

    url = url or os.environ.get(CHROMA_URL_ENV)
    if url:
        return _http_client(url)
    key = str(folder.resolve())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import chromadb
            from chromadb.config import Settings

            folder.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=key, settings=Settings(anonymized_telemetry=False))
            _clients[key] = client
        return client


def _http_client(url: str) -> Any:
    from urllib.parse import urlparse

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname or not parsed.port:
        raise UserError(f"'{url}' is not a chroma server address", hint="use http://HOST:PORT, e.g. http://127.0.0.1:8000")
    key = f"http://{parsed.hostname}:{parsed.port}"
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import chromadb
            from chromadb.config import Settings

            client = chromadb.HttpClient(
                host=parsed.hostname, port=parsed.port, ssl=parsed.scheme == "https",
                settings=Settings(anonymized_telemetry=False),
            )
            _clients[key] = client
        return client


def collection_name(repo_key: str, model_id: str) -> str:
    """chromadb wants 3-512 characters of [a-zA-Z0-9._-], starting and ending alphanumeric."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"cf-{repo_key}-{model_id}").strip("-._")
    return name[:500]


class VectorCache:
    """Vectors by (model, chunk hash), kept after their chunk leaves the index."""

    def __init__(self, path: Path) -> None:
        self._db = open_db(path, kind="vector cache", autocommit=False,
                           schema="CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, PRIMARY KEY (model, hash));")
        self._lock = threading.Lock()

    def get(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                batch = hashes[start : start + 500]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT hash, vec FROM vectors WHERE model=? AND hash IN ({marks})", [model, *batch]
                ).fetchall()
                for h, blob in rows:
                    found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, items: Mapping[str, np.ndarray]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )


@dataclass
class SyncReport:
    embedded: int = 0  # chunks run through the model
    from_cache: int = 0  # chunks whose vector came from the cache
    deleted: int = 0  # vectors removed from the collection
    total: int = 0  # vectors in the collection afterwards


class EmbeddingStore:
    """The vectors of one repository's chunks for one model."""

    def __init__(self, index_dir: Path, repo_key: str, model: str | None = None, encoder: Any = None) -> None:
        self.index_dir = index_dir
        self.repo_key = repo_key
        self.model = model
        self._encoder = encoder
        self._collection: Any = None

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = get_encoder(self.model)
        return self._encoder

    @property
    def collection(self) -> Any:
        if self._collection is None:
            client = chroma_client(self.index_dir / "chroma")
            self._collection = client.get_or_create_collection(
                collection_name(self.repo_key, self.encoder.model_id),
                metadata={"hnsw:space": "cosine", "model": self.encoder.model_id},
            )
        return self._collection

    def _cache(self) -> VectorCache:
        return VectorCache(self.index_dir / "vectors.db")

    def sync(self, texts: Mapping[str, str], progress: Progress | None = None) -> SyncReport:
        """Make the collection hold exactly the ids of ``texts`` (chunk hash -> text to embed)."""
        collection = self.collection
        client = chroma_client(self.index_dir / "chroma")
        batch_size = max(1, min(4096, client.get_max_batch_size() - 1))
        existing = set(collection.get(include=[])["ids"])
        wanted = set(texts)
        report = SyncReport()
        stale = sorted(existing - wanted)
        for start in range(0, len(stale), batch_size):
            collection.delete(ids=stale[start : start + batch_size])
        report.deleted = len(stale)
        missing = sorted(wanted - existing)
        model_id = self.encoder.model_id
        cache = self._cache()
        cached = cache.get(model_id, missing)
        if cached:
            ids = list(cached)
            for start in range(0, len(ids), batch_size):
                part = ids[start : start + batch_size]
                collection.add(ids=part, embeddings=np.stack([cached[i] for i in part]))
            report.from_cache = len(cached)
        to_embed = [i for i in missing if i not in cached]
        if to_embed:
            report.embedded = self._embed_and_add(to_embed, texts, cache, batch_size, progress)
        report.total = collection.count()
        return report

    def _embed_and_add(
        self, ids: list[str], texts: Mapping[str, str], cache: VectorCache, batch_size: int, progress: Progress | None
    ) -> int:
        done = [0]
        collection = self.collection
        model_id = self.encoder.model_id

        def store(indices: np.ndarray, vectors: np.ndarray) -> None:
            # Runs on the encoder's consumer thread while the next batch is being encoded.
            part = [ids[i] for i in indices]
            for start in range(0, len(part), batch_size):
                collection.add(ids=part[start : start + batch_size], embeddings=vectors[start : start + batch_size])
            cache.put(model_id, dict(zip(part, vectors)))
            done[0] += len(part)
            if progress is not None:
                progress(done[0], len(ids))

        return int(self.encoder.encode_stream([texts[i] for i in ids], store))

    def search(self, query: str, k: int = 50) -> list[tuple[str, float]]:
        """Chunk ids most similar to ``query`` with cosine similarity, best first."""
        collection = self.collection
        count = collection.count()
        if count == 0 or not query.strip():
            return []
        vector = self.encoder.encode([query])
        result = collection.query(query_embeddings=vector, n_results=min(k, count), include=["distances"])
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances)]
