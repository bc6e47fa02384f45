"""YAML parsing that remembers where every key and value came from.

PyYAML's constructors drop source positions. Here the document is composed into nodes with a
SafeLoader-family loader (libyaml's ``CSafeLoader`` when compiled in, the pure ``SafeLoader``
otherwise: both use ``SafeConstructor``, so no tag can build arbitrary Python objects) and walked
once, building plain Python data and a :class:`SourceMap` keyed by paths such as
``("nodes", 3, "prompt")``. The walk also reports duplicate mapping keys, which PyYAML accepts
silently (keeping the last one).

Anchors and aliases let a few hundred bytes stand for billions of values ("billion laughs"). The
composed tree shares each aliased node, and so does the data built here, but everything after the
walk (pydantic, messages) would see the sharing expanded. So the walk never expands anything: it
adds up how large and how deep the expanded document would be and stops at the first alias that
goes past a :class:`YamlLimits` bound, with a positioned problem instead of data. Merge keys
(``<<: *base``) are resolved here too, once per mapping, for the same reason: PyYAML's own
``flatten_mapping`` copies the merged pairs into every mapping, so merges of merges grow
exponentially.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from contextflow.dags.problems import Problem

PathKey = tuple[Any, ...]
Position = tuple[int, int]

_FastSafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PositionLoader(_FastSafeLoader):  # type: ignore[misc, valid-type]
    """A safe loader whose node tree :func:`parse_yaml` walks to record positions."""


class PurePositionLoader(yaml.SafeLoader):
    """The pure-Python safe loader, for platforms without libyaml.

    Its composer recurses once per nesting level, so a deeply nested document would end in a
    RecursionError; it stops at a mapping or list deeper than ``max_depth`` instead, where the walk
    would stop too (libyaml stops at 1000 levels by itself).
    """

    max_depth = 100
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > self.max_depth and self.check_event(
                    yaml.SequenceStartEvent, yaml.MappingStartEvent):
                raise yaml.composer.ComposerError(
                    None, None, "exceeded maximum nesting depth", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass(frozen=True)
class YamlLimits:
    """How large and deep one pipeline document may be once its aliases are expanded."""

    #: Nesting levels of mappings and lists, counted through aliases (a pipeline needs about 10).
    max_depth: int = 100
    #: Alias uses (each ``*name``, each mapping merged with ``<<``).
    max_aliases: int = 10_000
    #: Characters aliases may add when written out: the larger of this and the file's own length,
    #: so aliases can at most double a large file.
    alias_expansion_floor: int = 1_000_000

    def expansion_limit(self, text_length: int) -> int:
        return max(self.alias_expansion_floor, text_length)


DEFAULT_LIMITS = YamlLimits()


@dataclass
class SourceMap:
    """Source positions (1-based line, column) of keys and values, by path."""

    file: str | None = None
    text: str = ""
    keys: dict[PathKey, Position] = field(default_factory=dict)
    values: dict[PathKey, Position] = field(default_factory=dict)
    # Character spans of scalars that hold template syntax, to place a reference exactly.
    spans: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    _line_starts: list[int] | None = None

    def key(self, path: PathKey) -> Position:
        """Where the key of ``path`` is written (the item itself for list elements)."""
        path = tuple(path)
        while path:
            pos = self.keys.get(path) or self.values.get(path)
            if pos:
                return pos
            path = path[:-1]
        return self.values.get((), (1, 1))

    def value(self, path: PathKey) -> Position:
        """Where the value of ``path`` starts, or the nearest enclosing position known."""
        path = tuple(path)
        while path:
            pos = self.values.get(path) or self.keys.get(path)
            if pos:
                return pos
            path = path[:-1]
        return self.values.get((), (1, 1))

    def in_value(self, path: PathKey, value: str, offset: int, end: int) -> Position:
        """Position of ``value[offset:end]`` (a reference) inside the scalar at ``path``.

        Quoting, escapes and block folding change columns, so the reference's own text is
        searched for in the scalar's source span (the n-th occurrence for the n-th in the value).
        """
        path = tuple(path)
        span = self.spans.get(path)
        needle = value[offset:end]
        if span is None or not needle:
            return self.value(path)
        nth = value.count(needle, 0, offset)
        start, stop = span
        found = start - 1
        for _ in range(nth + 1):
            found = self.text.find(needle, found + 1, stop)
            if found < 0:
                return self.value(path)
        return self._position_of(found)

    def _position_of(self, index: int) -> Position:
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        line = bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    def index_of(self, line0: int, column0: int) -> int:
        self._position_of(0)
        assert self._line_starts is not None
        if line0 >= len(self._line_starts):
            return len(self.text)
        return self._line_starts[line0] + column0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large document.

    Loading allocates many objects and no garbage cycles; with the collector on, its full passes
    over an ever larger heap make loading superlinear (10x the nodes took 45x the time with
    libyaml at 1k -> 10k nodes). Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class ParsedYaml:
    data: Any
    source: SourceMap
    problems: list[Problem]


def parse_yaml(text: str, *, file: str | None = None, pure: bool = False,
               limits: YamlLimits = DEFAULT_LIMITS) -> ParsedYaml:
    """Parse one YAML document into plain data plus its source map; never raises on bad YAML."""
    source = SourceMap(file=file, text=text)
    loader_cls = PurePositionLoader if pure else PositionLoader
    loader = loader_cls(text)
    if pure:
        loader.max_depth = limits.max_depth
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return ParsedYaml(None, source, [_syntax_problem(exc, file, text, limits)])
    except yaml.YAMLError as exc:
        return ParsedYaml(None, source, [Problem("yaml-syntax", str(exc), file=file, line=1, column=1)])
    try:
        if root is None:
            return ParsedYaml(None, source, [])
        walker = _Walker(loader, source, file, limits)
        data = walker.build(root, (), 1, (1, 1))
        return ParsedYaml(data, source, walker.problems)
    except _LimitExceeded as exc:
        return ParsedYaml(None, source, [exc.problem])
    except yaml.MarkedYAMLError as exc:  # a bad scalar (timestamp, merge) found while building
        return ParsedYaml(None, source, [_syntax_problem(exc, file, text, limits)])
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str | None, text: str, limits: YamlLimits) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "invalid YAML"
    if "maximum nesting depth" in what:  # libyaml's own bound (1000), or the pure composer's
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return _too_deep(file, (line, column), limits)
    if "end of stream" in what and exc.context_mark is not None:
        mark = exc.context_mark  # an unclosed quote or bracket: point at where it opened
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if exc.context:
        what = f"{what} ({exc.context})"
    hint = "check the indentation and quoting around this position"
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
        hint = "YAML does not allow tab characters for indentation; use spaces"
    elif "quoted scalar" in what:
        hint = "this quote is never closed; add the closing quote"
    return Problem("yaml-syntax", what, hint=hint, file=file, line=line, column=column)


def _too_deep(file: str | None, pos: Position, limits: YamlLimits) -> Problem:
    return Problem(
        "yaml-too-deep",
        f"the document nests mappings and lists more than {limits.max_depth} levels deep "
        "(aliases included)",
        hint="flatten this part: a pipeline needs only a few levels; an alias of a deep value adds its depth",
        file=file, line=pos[0], column=pos[1],
    )


class _LimitExceeded(Exception):
    """The walk stopped at a bound; nothing it built is returned."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _pos(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Walker:
    """Builds data from the composed tree once per node, and measures what aliases would expand to.

    ``size`` is an expanded node's written length in rough characters (1 per node plus its text),
    ``height`` its nesting levels. Both are kept per collection node, so an alias costs O(1): it adds
    the aliased node's size to ``expansion`` and checks its height at the depth it is used.
    """

    def __init__(self, loader: Any, source: SourceMap, file: str | None, limits: YamlLimits) -> None:
        self.loader = loader
        self.source = source
        self.file = file
        self.limits = limits
        self.problems: list[Problem] = []
        self.aliases = 0
        self.expansion = 0
        self._expansion_limit = limits.expansion_limit(len(source.text))
        self._built: dict[int, Any] = {}  # aliases share one object, as PyYAML does
        self._sizes: dict[int, int | None] = {}  # None while the node is being built
        self._heights: dict[int, int] = {}
        self._scalars: set[int] = set()  # scalar nodes seen (a second visit is an alias)
        self._merge_entries: dict[int, dict[Any, tuple[Position, Position, int]]] = {}

    # -- bounds ------------------------------------------------------------------------------
    def _fail(self, code: str, message: str, hint: str, at: Position) -> None:
        raise _LimitExceeded(Problem(code, message, hint=hint, file=self.file, line=at[0], column=at[1]))

    def _alias(self, node: Node, depth: int, at: Position) -> None:
        """Account for one more use of an already-built node, written where ``at`` points."""
        if isinstance(node, ScalarNode):
            self._use(1 + len(node.value), 0, depth, at)
            return
        self._check_built(node, at)
        self._use(self._sizes[id(node)] or 0, self._heights[id(node)], depth, at)

    def _check_built(self, node: Node, at: Position) -> None:
        if self._sizes[id(node)] is None:
            self._fail("yaml-alias-cycle", "an alias refers to a mapping or list that contains it",
                       "a pipeline is a tree: replace the alias with the value it should hold", at)

    def _use(self, size: int, height: int, depth: int, at: Position) -> None:
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            self._fail("yaml-too-many-aliases",
                       f"the document uses more than {self.limits.max_aliases:,} aliases",
                       "write the repeated values out, or set them once in 'defaults:'", at)
        self.expansion += size
        if self.expansion > self._expansion_limit:
            self._fail("yaml-alias-expansion",
                       f"aliases expand the document by more than {self._expansion_limit:,} characters "
                       f"(the larger of {self.limits.alias_expansion_floor:,} and the file's own length)",
                       "aliases of aliases multiply; write the repeated part out or use fewer levels of aliases",
                       at)
        if depth + height - 1 > self.limits.max_depth:
            raise _LimitExceeded(_too_deep(self.file, at, self.limits))

    def _measure(self, node: Node) -> tuple[int, int]:
        if isinstance(node, ScalarNode):
            return 1 + len(node.value), 0
        return self._sizes[id(node)] or 0, self._heights[id(node)]

    # -- building ----------------------------------------------------------------------------
    def build(self, node: Node, path: PathKey, depth: int, at: Position) -> Any:
        """The data of ``node`` at ``path``; ``at`` is where its use is written (an alias's place)."""
        mark = node.start_mark
        self.source.values[path] = (mark.line + 1, mark.column + 1)
        nid = id(node)
        if isinstance(node, ScalarNode):
            if nid in self._scalars:
                self._alias(node, depth, at)
            else:
                self._scalars.add(nid)
            value = self.loader.construct_object(node)
            if isinstance(value, str) and ("${" in value or "{{" in value):
                end = node.end_mark
                self.source.spans[path] = (
                    self.source.index_of(mark.line, mark.column),
                    self.source.index_of(end.line, end.column),
                )
            return value
        if nid in self._sizes:
            self._alias(node, depth, at)
            return self._built[nid]
        if depth > self.limits.max_depth:
            raise _LimitExceeded(_too_deep(self.file, _pos(node), self.limits))
        if node.tag not in _PLAIN_TAGS:
            raise yaml.constructor.ConstructorError(
                None, None, f"the tag {node.tag} is not allowed (only plain YAML data)", mark)
        self._sizes[nid] = None
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            self._built[nid] = items
            size, height = 1, 1
            here = _pos(node)
            for index, child in enumerate(node.value):
                items.append(self.build(child, (*path, index), depth + 1, here))
                child_size, child_height = self._measure(child)
                size += child_size
                height = max(height, child_height + 1)
            self._sizes[nid], self._heights[nid] = size, height
            return items
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        raise yaml.MarkedYAMLError(problem=f"unexpected node {node.tag}", problem_mark=mark)

    def _mapping(self, node: MappingNode, path: PathKey, depth: int) -> dict[Any, Any]:
        nid = id(node)
        result: dict[Any, Any] = {}
        self._built[nid] = result
        size, height = 1, 1
        merges: list[tuple[Node, Position]] = []
        first_seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            key_pos = _pos(key_node)
            if key_node.tag == _MERGE_TAG:
                if merges:
                    self.problems.append(Problem(
                        "duplicate-key", "'<<' appears twice in this mapping",
                        hint="merge several mappings with one key: '<<: [*first, *second]'",
                        file=self.file, line=key_pos[0], column=key_pos[1]))
                merges.extend((src, key_pos) for src in _merge_sources(node, value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    Problem("wrong-type", "a mapping key must be a plain value, not a list or mapping",
                            file=self.file, line=key_pos[0], column=key_pos[1])
                )
                continue
            if id(key_node) in self._scalars:  # an aliased key
                self._alias(key_node, depth + 1, key_pos)
            self._scalars.add(id(key_node))
            key = self.loader.construct_object(key_node)
            if key in first_seen:
                line, col = first_seen[key]
                self.problems.append(
                    Problem(
                        "duplicate-key",
                        f"key '{key}' appears twice in this mapping; YAML would keep only the last one",
                        hint=f"the first '{key}' is at line {line}, column {col}; remove or rename one",
                        file=self.file, line=key_pos[0], column=key_pos[1],
                    )
                )
            first_seen[key] = key_pos
            child_path = (*path, key)
            self.source.keys[child_path] = key_pos
            result[key] = self.build(value_node, child_path, depth + 1, key_pos)
            child_size, child_height = self._measure(value_node)
            size += 1 + len(key_node.value) + child_size
            height = max(height, child_height + 1)
        # Merged keys come after the mapping's own (which win), earlier sources before later ones.
        # A merged alias adds only the keys it brings, so merging the same defaults twice is cheap.
        for src, merge_pos in merges:
            aliased = id(src) in self._sizes
            if aliased:
                self._check_built(src, merge_pos)
                merged = self._built[id(src)]
            else:
                merged = self.build(src, (*path, "<<"), depth, merge_pos)
            added = 0
            for key, (key_pos, value_pos, entry_size) in self._merged_entries(src).items():
                if key not in result:
                    result[key] = merged[key]
                    self.source.keys[(*path, key)] = key_pos
                    self.source.values[(*path, key)] = value_pos
                    added += entry_size
            src_height = self._heights[id(src)]
            if aliased:
                self._use(added, src_height, depth, merge_pos)
            size += added
            height = max(height, src_height)
        self.source.values.pop((*path, "<<"), None)
        if merges:  # as PyYAML orders them: merged keys first (an overridden one keeps its place)
            order = dict.fromkeys(k for src, _ in merges for k in self._merged_entries(src))
            order.update(dict.fromkeys(first_seen))
            entries = [(key, result[key]) for key in order]
            result.clear()
            result.update(entries)
        self._sizes[nid], self._heights[nid] = size, height
        return result

    def _merged_entries(self, node: MappingNode) -> dict[Any, tuple[Position, Position, int]]:
        """Each key of an already-built mapping (merged ones included): where its key and value
        are written and the entry's size. Kept per node, so a merge of merges reads each once."""
        known = self._merge_entries.get(id(node))
        if known is not None:
            return known
        entries: dict[Any, tuple[Position, Position, int]] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.extend(_merge_sources(node, value_node))
            elif isinstance(key_node, ScalarNode):
                entry_size = 1 + len(key_node.value) + self._measure(value_node)[0]
                entries[self.loader.construct_object(key_node)] = (_pos(key_node), _pos(value_node), entry_size)
        for src in merges:
            for key, entry in self._merged_entries(src).items():
                entries.setdefault(key, entry)
        self._merge_entries[id(node)] = entries
        return entries


def _merge_sources(node: MappingNode, value: Node) -> list[Node]:
    """The mappings a ``<<`` key merges, earliest first (a list's earlier entries win)."""
    if isinstance(value, MappingNode):
        return [value]
    if isinstance(value, SequenceNode) and all(isinstance(item, MappingNode) for item in value.value):
        return list(value.value)
    raise yaml.constructor.ConstructorError(
        "while constructing a mapping", node.start_mark,
        "'<<' merges a mapping or a list of mappings", value.start_mark)
