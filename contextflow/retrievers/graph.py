"""The symbol graph: file -> file edges where one file references names another defines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

#: Names shorter than this (i, x, ok) link unrelated files.
_MIN_NAME_LENGTH = 3


def build_file_graph(
    definitions: Iterable[tuple[str, str]],
    references: Iterable[tuple[str, str, int]],
    files: Iterable[str],
    *,
    max_definers: int = 5,
) -> Any:
    """networkx DiGraph over ``files``; edge weight sums reference counts, split among the files
    that define the name (a name defined in more than ``max_definers`` files links nothing)."""
    import networkx as nx

    definers: dict[str, set[str]] = defaultdict(set)
    for path, name in definitions:
        if len(name) >= _MIN_NAME_LENGTH:
            definers[name].add(path)
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for path, name, count in references:
        targets = definers.get(name)
        if not targets or len(targets) > max_definers:
            continue
        share = count / len(targets)
        for target in targets:
            if target == path:
                continue
            if graph.has_edge(path, target):
                data = graph[path][target]
                data["weight"] += share
                data["names"].add(name)
            else:
                graph.add_edge(path, target, weight=share, names={name})
    return graph


def pagerank(graph: Any) -> dict[str, float]:
    """PageRank by edge weight (files many others depend on rank high); empty graph -> {}."""
    if graph.number_of_nodes() == 0:
        return {}
    import networkx as nx

    try:
        return dict(nx.pagerank(graph, weight="weight", max_iter=200, tol=1e-6))
    except nx.PowerIterationFailedConvergence:
        return {n: 1.0 / graph.number_of_nodes() for n in graph.nodes}
