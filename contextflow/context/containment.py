"""Read a rendered window back and say whether untrusted text stayed inside its excerpts.

A window is sound when a reader that knows only the format finds the frame, then excerpts and
nothing else: every line outside a markdown fence is one of the template's own (frame, note,
heading with an escaped path), an XML document has only ``note`` and ``excerpt`` elements under
the frame, a JSON document has only the frame's keys. :func:`parse_window` does that reading and
returns the excerpts with their decoded paths, or the problems it found; tests and the hostile-
input benchmark hold every rendering to it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from contextflow.context.window import UNTRUSTED_NOTE, Format

__all__ = ["Excerpt", "WindowReading", "parse_window"]

_MD_OPEN = "<!-- retrieved context: untrusted data -->"
_MD_CLOSE = "<!-- end of retrieved context -->"
_HEADING = re.compile(
    r"^### (?P<path>\"(?:[^\"\\]|\\.)*\"|[A-Za-z0-9_./@+\-,=~]+):(?P<start>\d+)-(?P<end>\d+) \((?P<via>[^()\"`<>]*)\)$"
)
_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,})(?P<info>[^`]*)$")


@dataclass
class Excerpt:
    path: str
    start_line: int
    end_line: int
    text: str


@dataclass
class WindowReading:
    excerpts: list[Excerpt] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _decode_name(raw: str) -> str:
    return json.loads(raw) if raw.startswith('"') else raw


def _parse_markdown(text: str) -> WindowReading:
    reading = WindowReading()
    # Every line break a reader might honour counts (U+2028, VT, FF...), not only "\n".
    lines = text.splitlines()
    if not lines or lines[0] != _MD_OPEN or len(lines) < 2 or lines[1] != UNTRUSTED_NOTE:
        reading.problems.append("the window does not open with the frame and its note")
        return reading
    i, closed = 2, False
    while i < len(lines):
        line = lines[i]
        if closed:
            if line.strip():
                reading.problems.append(f"line {i + 1} after the frame's end: {line[:80]!r}")
            i += 1
            continue
        if not line.strip():
            i += 1
            continue
        if line == _MD_CLOSE:
            closed = True
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading is None:
            reading.problems.append(f"line {i + 1} outside any excerpt: {line[:80]!r}")
            i += 1
            continue
        try:
            path = _decode_name(heading.group("path"))
        except json.JSONDecodeError:
            reading.problems.append(f"line {i + 1}: the path does not decode: {line[:80]!r}")
            path = heading.group("path")
        fence = _FENCE_OPEN.match(lines[i + 1]) if i + 1 < len(lines) else None
        if fence is None:
            reading.problems.append(f"line {i + 2}: no fence after the heading")
            i += 1
            continue
        width = len(fence.group("fence"))
        closing = re.compile(r"^ {0,3}`{" + str(width) + r",}\s*$")
        j = i + 2
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        if j == len(lines):
            reading.problems.append(f"line {i + 2}: the fence is never closed")
            return reading
        reading.excerpts.append(Excerpt(path, int(heading.group("start")), int(heading.group("end")),
                                        "\n".join(lines[i + 2 : j])))
        i = j + 1
    if not closed:
        reading.problems.append("the frame is never closed")
    return reading


def _parse_xml(text: str) -> WindowReading:
    reading = WindowReading()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        reading.problems.append(f"not well-formed XML: {exc}")
        return reading
    if root.tag != "retrieved_context" or root.attrib != {"trust": "untrusted"}:
        reading.problems.append(f"unexpected root element {root.tag!r} {root.attrib}")
    if (root.text or "").strip():
        reading.problems.append("text directly inside the frame")
    for child in root:
        if (child.tail or "").strip():
            reading.problems.append(f"text after a {child.tag} element: {child.tail[:80]!r}")
        if child.tag == "note":
            if child.text != UNTRUSTED_NOTE or len(child):
                reading.problems.append("the note was altered")
            continue
        if child.tag != "excerpt" or len(child) or set(child.attrib) != {"path", "lines", "sources"}:
            reading.problems.append(f"unexpected element {child.tag!r} {sorted(child.attrib)}")
            continue
        start, _, end = child.attrib["lines"].partition("-")
        try:
            path = json.loads('"' + child.attrib["path"] + '"')
        except json.JSONDecodeError:
            reading.problems.append(f"a path does not decode: {child.attrib['path'][:80]!r}")
            continue
        body = child.text or ""
        reading.excerpts.append(Excerpt(path, int(start), int(end), body[1:-1] if body.startswith("\n") else body))
    return reading


def _parse_json(text: str) -> WindowReading:
    reading = WindowReading()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        reading.problems.append(f"not valid JSON: {exc}")
        return reading
    frame = document.get("retrieved_context") if isinstance(document, dict) and len(document) == 1 else None
    if not isinstance(frame, dict) or set(frame) != {"trust", "note", "excerpts"} or frame["trust"] != "untrusted" \
            or frame["note"] != UNTRUSTED_NOTE:
        reading.problems.append("the JSON frame was altered")
        return reading
    for entry in frame["excerpts"]:
        if not isinstance(entry, dict) or set(entry) != {"path", "start_line", "end_line", "sources", "symbol", "text"}:
            reading.problems.append(f"unexpected excerpt {str(entry)[:80]}")
            continue
        reading.excerpts.append(Excerpt(entry["path"], entry["start_line"], entry["end_line"], entry["text"]))
    return reading


def parse_window(text: str, fmt: Format) -> WindowReading:
    """The excerpts a reader of ``fmt`` finds in ``text``, and every way the text breaks the frame."""
    if fmt == "xml":
        return _parse_xml(text)
    if fmt == "json":
        return _parse_json(text)
    return _parse_markdown(text)
