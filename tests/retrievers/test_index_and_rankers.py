"""The repository index: incremental updates, re-embedding only changed chunks, and each retriever."""

from __future__ import annotations

import pytest
from repo_builders import write

from contextflow.retrievers.index import RepoIndex
from contextflow.retrievers.rankers import ast_hits, bm25_hits, embedding_hits, git_hits
from contextflow.core.state import StateDir


def _index(root, tmp_path):
    return RepoIndex(root, StateDir(tmp_path / "state"))


def test_update_reports_added_changed_removed(make_repo, tmp_path):
    root = make_repo()
    index = _index(root, tmp_path)
    first = index.update()
    assert sorted(first.added) == ["README.md", "app.py", "net.py", "web/util.js"] and first.chunks > 0
    assert not index.update().changed_anything
    (root / "net.py").touch()  # same content, new mtime: not a change
    assert not index.update().changed_anything
    write(root, {"net.py": (root / "net.py").read_text() + "\n\ndef ping():\n    return 'pong'\n"})
    (root / "README.md").unlink()
    report = index.update()
    assert report.changed == ["net.py"] and report.removed == ["README.md"] and report.added == []
    assert any("ping" in c.symbols for c in index.chunks.values())
    assert not [c for c in index.chunks.values() if c.path == "README.md"]


def test_symbol_graph_links_caller_to_definer(make_repo, tmp_path):
    index = _index(make_repo(), tmp_path)
    index.update()
    assert index.graph.has_edge("app.py", "net.py")
    assert "send_request" in index.graph["app.py"]["net.py"]["names"]
    ranks = {n: d["pagerank"] for n, d in index.graph.nodes(data=True)}
    assert ranks["net.py"] > ranks["app.py"]


def test_bm25_ast_and_git_rankings(make_repo, tmp_path):
    root = make_repo()
    index = _index(root, tmp_path)
    index.update()
    top = index.chunks[bm25_hits(index, "charge the card amount")[0].chunk_id]
    assert top.path == "app.py" and top.symbols == ["PaymentGateway"]  # a small class is one chunk
    hit = ast_hits(index, "Why does `send_request` give up after a timeout?")[0]
    assert index.chunks[hit.chunk_id].path == "net.py" and "send_request" in hit.reason
    git_top = [index.chunks[h.chunk_id].path for h in git_hits(index, "dashboard formatting broke")]
    assert "web/util.js" in git_top
    write(root, {"app.py": (root / "app.py").read_text().replace("in full", "partially")})
    index.update()
    changed = git_hits(index, "anything")
    assert index.chunks[changed[0].chunk_id].symbols == ["PaymentGateway"]
    assert "unstaged change" in changed[0].reason


@pytest.mark.slow
def test_embeddings_reembed_only_changed_chunks(make_repo, tmp_path):
    root = make_repo()
    index = _index(root, tmp_path)
    first = index.update(embeddings=True)
    assert first.embedded == first.chunks > 0 and first.embeddings_deleted == 0
    before = set(index.chunks)
    original = (root / "app.py").read_text()
    write(root, {"app.py": original.replace("Refund a charge in full.", "Refund part of a charge.")})
    second = index.update(embeddings=True)
    after = set(index.chunks)
    assert second.changed == ["app.py"]
    assert second.embedded == len(after - before) == 1  # only the edited class chunk
    assert second.embeddings_deleted == len(before - after) == 1
    write(root, {"app.py": original})
    third = index.update(embeddings=True)
    assert third.embedded == 0 and third.embeddings_from_cache == 1  # back to a known chunk
    (root / "web" / "util.js").unlink()
    fourth = index.update(embeddings=True)
    assert fourth.removed == ["web/util.js"] and fourth.embeddings_deleted >= 1 and fourth.embedded == 0
    assert index.embedding_store().collection.count() == len(index.chunks)
    hits = embedding_hits(index, "refund a card payment")
    assert "app.py" in [index.chunks[h.chunk_id].path for h in hits[:2]] and "similarity" in hits[0].reason
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.chunks[hits[-1].chunk_id].path != "app.py"  # the least similar chunk is not the payments code
