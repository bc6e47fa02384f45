"""Untrusted names made inert before they are written next to instructions.

File names, symbol names and commit subjects come from the repository, so they may hold newlines,
fences, ``-->``, ``</context>``, terminal escapes or bidirectional overrides meant to break out
of the place they are shown in. Two renderings:

- :func:`inert_name` for names (paths, symbols): unchanged when made of plain path characters,
  else one double-quoted line in JSON string syntax (``json.loads`` reads it back), where every
  control, format, separator and markup character (``<``, ``>``, backtick) is a ``\\uXXXX`` escape.
- :func:`inert_line` for prose (a commit subject in release notes): one line, invisible and
  control characters escaped, ``<``/``>`` as entities, a leading markdown marker backslashed.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["escape_untrusted", "inert_line", "inert_name", "visible_text"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_./@+\-,=~]+$")
_SHORT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MARKUP = frozenset("<>`")
# Unicode categories that draw nothing or move the text around: controls, formats (bidi overrides,
# zero-width joiners), line/paragraph separators, surrogates, private use, unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BLOCK_MARKER = re.compile(r"^(?:[#>*+=|-]|\d+[.)]|~~~|```)")


def _u(codepoint: int) -> str:
    if codepoint > 0xFFFF:  # as a JSON surrogate pair, so json.loads reads it back
        codepoint -= 0x10000
        return f"\\u{0xD800 + (codepoint >> 10):04x}\\u{0xDC00 + (codepoint & 0x3FF):04x}"
    return f"\\u{codepoint:04x}"


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or char == "\u00a0"


def escape_untrusted(text: str) -> str:
    """``text`` as the inside of a JSON string: no control, invisible or markup character left raw."""
    out: list[str] = []
    for char in text:
        if char in _SHORT:
            out.append(_SHORT[char])
        elif char in _MARKUP or _hidden(char):
            out.append(_u(ord(char)))
        else:
            out.append(char)
    return "".join(out)


def inert_name(name: str) -> str:
    """A path or symbol name safe to print on a line of its own: as is, or quoted and escaped."""
    if name and _SAFE_NAME.match(name):
        return name
    return '"' + escape_untrusted(name) + '"'


def visible_text(text: str) -> str:
    """``text`` with characters no reader sees (controls but line ends and tab, bidi overrides,
    zero-width marks) escaped as ``\\uXXXX``: a body stays multi-line but hides nothing."""
    return "".join(_u(ord(c)) if c not in "\n\r\t" and _hidden(c) else c for c in text)


def inert_line(text: str) -> str:
    """Free text from the repository (a commit subject) as one inert markdown line."""
    line = "".join(_u(ord(c)) if _hidden(c) else c for c in text)
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\\" + line if _BLOCK_MARKER.match(line) else line
