"""Embedding batches fanned out to Dask workers equal the local encoder's vectors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def test_dask_encoder_matches_local_encode_and_streams_every_index(tmp_path) -> None:
    from distributed import Client, LocalCluster

    from contextflow.retrievers.dask_embed import DaskEncoder
    from contextflow.retrievers.encoder import get_encoder

    texts = [f"def handler_{i}(request):\n    return respond({i}, request.user)" for i in range(23)] + ["", "ünïcode"]
    # Worker threads in this process share one loaded model (loading it in two worker processes
    # costs ~30 s on 2 cores); texts and vectors still cross TCP, serialised, as between machines.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        remote = DaskEncoder(client, batch_size=5)
        assert not remote.uses_gpus  # no GPU workers: batches run on CPU workers
        vectors = remote.encode(texts)
        seen: list[int] = []
        streamed = np.zeros_like(vectors)

        def collect(indices: np.ndarray, batch: np.ndarray) -> None:
            seen.extend(indices.tolist())
            streamed[indices] = batch

        assert remote.encode_stream(texts, collect) == len(texts)

        # The index embeds through the cluster when given the encoder (`contextflow index --dask`).
        from contextflow.retrievers.index import open_index
        from contextflow.core.state import StateDir

        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "a.py").write_text("def alpha():\n    return 1\n\n\ndef beta():\n    return 2\n")
        index = open_index(repo, StateDir(tmp_path / "state"))
        index.embedding_store(None, encoder=remote)
        report = index.update(embeddings=True)
        assert report.embedded > 0
    local = get_encoder().encode(texts)
    assert remote.model_id == get_encoder().model_id and remote.dim == local.shape[1]
    cosine = np.sum(vectors * local, axis=1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(local, axis=1))
    assert cosine.min() >= 0.9999
    assert sorted(seen) == list(range(len(texts)))
    assert np.allclose(streamed, vectors)
