"""Cut files into retrieval chunks at syntactic boundaries.

A definition that fits is one chunk. A larger container (a class) is split into its members, and
each member keeps the container's signature as its ``header`` so a method is never shown without
its class. A large function is split between body statements. Code between definitions (imports,
module constants) and files without a grammar are cut into line windows, preferring blank lines.
Neighbouring tiny pieces under the same header are merged so a chunk is worth retrieving.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from contextflow.retrievers.ast_index import Definition, FileAnalysis

MAX_CHUNK_LINES = 60
MERGE_UNDER_LINES = 12
_TEXT_WINDOW_LINES = 40


@dataclass
class Chunk:
    path: str
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str
    kind: str  # function, method, class, block, text, ...
    symbols: list[str] = field(default_factory=list)
    header: str = ""  # enclosing signatures shown above the text, one per line
    cuts: list[int] = field(default_factory=list)  # lines inside the chunk where it may be truncated
    lang: str = "text"

    @property
    def symbol(self) -> str:
        return self.symbols[0] if self.symbols else ""

    @property
    def content_hash(self) -> str:
        """Identity of what an embedding sees: path, header and text (not the line numbers)."""
        digest = hashlib.sha1(f"{self.path}\0{self.header}\0{self.text}".encode("utf-8", "replace"))
        return digest.hexdigest()

    def search_text(self) -> str:
        """What the lexical and vector indexes see: where the chunk is, its context, its code."""
        parts = [self.path]
        if self.symbols:
            parts.append(" ".join(self.symbols))
        if self.header:
            parts.append(self.header)
        parts.append(self.text)
        return "\n".join(parts)


class _Chunker:
    def __init__(self, path: str, lines: list[str], lang: str) -> None:
        self.path = path
        self.lines = lines
        self.lang = lang
        self.out: list[Chunk] = []

    def span_text(self, lo: int, hi: int) -> str:
        return "\n".join(self.lines[lo - 1 : hi])

    def add(self, lo: int, hi: int, kind: str, symbols: list[str], header: str, cuts: list[int]) -> None:
        while lo <= hi and not self.lines[lo - 1].strip():
            lo += 1
        while hi >= lo and not self.lines[hi - 1].strip():
            hi -= 1
        if lo > hi:
            return
        inner = sorted({c for c in cuts if lo < c <= hi})
        self.out.append(Chunk(self.path, lo, hi, self.span_text(lo, hi), kind, symbols, header, inner, self.lang))

    def windows(self, lo: int, hi: int, header: str, kind: str, limit: int, *, symbols: list[str] | None = None,
                boundaries: list[int] | None = None, later_header: str | None = None) -> None:
        """Pieces of at most ``limit`` lines, each ending before a boundary (a statement start, else a
        blank line) in the second half of the window when there is one."""
        preferred = sorted({b for b in (boundaries or []) if lo < b <= hi})
        start = lo
        while start <= hi:
            end = min(hi, start + limit - 1)
            if end < hi:
                inside = [b - 1 for b in preferred if start + limit // 2 <= b - 1 <= end]
                blanks = [n for n in range(end, start + limit // 2, -1) if not self.lines[n - 1].strip()]
                end = inside[-1] if inside else (blanks[0] if blanks else end)
            cuts = [b for b in preferred if start < b <= end] or [
                n + 1 for n in range(start + 1, end) if not self.lines[n - 1].strip()
            ]
            self.add(start, end, kind, list(symbols or []), header if start == lo or later_header is None else later_header,
                     cuts)
            start = end + 1

    def region(self, lo: int, hi: int, defs: list[Definition], children: dict[int, list[Definition]], header: str) -> None:
        cursor = lo
        for d in defs:
            start = max(d.start_line, cursor)
            if start > cursor:
                self.windows(cursor, start - 1, header, "block", MAX_CHUNK_LINES)
            self.definition(d, start, children, header)
            cursor = max(cursor, d.end_line + 1)
        if cursor <= hi:
            self.windows(cursor, hi, header, "block", MAX_CHUNK_LINES)

    def definition(self, d: Definition, start: int, children: dict[int, list[Definition]], header: str) -> None:
        size = d.end_line - start + 1
        kids = children.get(id(d), [])
        if size <= MAX_CHUNK_LINES:
            self.add(start, d.end_line, d.kind, [d.qualified], header, d.cuts)
            return
        inner_header = f"{header}\n{d.signature}".strip() if header else d.signature
        if kids:
            self.region(start, d.end_line, kids, children, inner_header)
            return
        # A long function: pieces between body statements, each under the function's signature.
        self.windows(start, d.end_line, header, d.kind, MAX_CHUNK_LINES, symbols=[d.qualified], boundaries=d.cuts,
                     later_header=inner_header)


def _merge_small(chunks: list[Chunk]) -> list[Chunk]:
    merged: list[Chunk] = []
    for c in chunks:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.header == c.header
            and c.start_line - prev.end_line <= 3
            and (prev.end_line - prev.start_line + 1) < MERGE_UNDER_LINES
            and (c.end_line - c.start_line + 1) < MERGE_UNDER_LINES
        ):
            gap = c.start_line  # the merged chunk may be cut where the second piece began
            text = "\n".join([prev.text, *[""] * (c.start_line - prev.end_line - 1), c.text])
            merged[-1] = Chunk(
                prev.path, prev.start_line, c.end_line, text, "block" if prev.kind != c.kind else prev.kind,
                prev.symbols + [s for s in c.symbols if s not in prev.symbols], prev.header,
                sorted(set(prev.cuts + [gap] + c.cuts)), prev.lang,
            )
        else:
            merged.append(c)
    return merged


def chunk_file(path: str, text: str, analysis: FileAnalysis | None) -> list[Chunk]:
    """The file's chunks in line order; they never overlap and cover every non-blank line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    lang = analysis.lang if analysis is not None else "text"
    chunker = _Chunker(path, lines, lang)
    defs = analysis.definitions if analysis is not None else []
    if not defs:
        chunker.windows(1, len(lines), "", "text" if analysis is None else "block", _TEXT_WINDOW_LINES)
        return _merge_small(chunker.out)
    children: dict[int, list[Definition]] = {}
    roots: list[Definition] = []
    stack: list[Definition] = []
    for d in defs:  # sorted by start, outer before inner
        while stack and not (stack[-1].start_line <= d.start_line and d.end_line <= stack[-1].end_line):
            stack.pop()
        if stack:
            children.setdefault(id(stack[-1]), []).append(d)
        else:
            roots.append(d)
        stack.append(d)
    chunker.region(1, len(lines), roots, children, "")
    return _merge_small(chunker.out)
