"""The package's shape: the import-linter layer contract holds, no module imports itself back
through a cycle, and no function imports one of our own modules (which is how cycles get hidden).

Lazy imports are allowed only for heavy third-party modules, never for ``contextflow`` ones.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "contextflow"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _own_imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(modules imported at module level, (line, module) of imports inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_functions: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_functions.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    top: set[str] = set()
    inner: list[tuple[int, str]] = []
    type_checking = {id(n) for s in tree.body if isinstance(s, ast.If) and "TYPE_CHECKING" in ast.unparse(s.test)
                     for n in ast.walk(s)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("contextflow"):
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("contextflow")]
        else:
            continue
        if not names or id(node) in type_checking:
            continue
        if id(node) in in_functions:
            inner.append((node.lineno, names[-1]))
        else:
            top.update(names)
    return top, inner


def test_no_function_imports_one_of_our_modules() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
             for path in sorted(PACKAGE.rglob("*.py")) for line, module in _own_imports(path)[1]]
    assert not found, "imports inside functions (move them to the top, or fix the layer):\n" + "\n".join(found)


def test_modules_import_each_other_without_cycles() -> None:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        imported = _own_imports(path)[0]
        for target in imported:
            # ``from pkg import mod`` names both ``pkg.mod`` and ``pkg``: only the module is imported
            # when ``pkg.mod`` is one (the package itself is already loaded as its parent).
            if any(other.startswith(target + ".") and other in modules for other in imported):
                continue
            if target in modules and target != name:
                graph.add_edge(name, target)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_the_layer_contract_holds() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install import-linter)")
    done = subprocess.run([lint, "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout
