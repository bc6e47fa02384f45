"""Which ``python``/``tool`` import paths a pipeline may name, and what the functions accept.

A pipeline file is untrusted input: naming ``os:system`` must not run anything. Paths are checked
against an allowlist of module prefixes (``contextflow.`` by default, plus the
``CONTEXTFLOW_ALLOW_IMPORTS`` environment variable, ``--allow-import`` and API arguments), and
functions declared in Python with :class:`contextflow.dags.builder.Pipeline` are registered here so
they are allowed too. The checker never imports a module: it locates allowlisted ones with
``importlib.util.find_spec`` and reads parameter annotations from their source with ``ast``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import threading
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

from contextflow.core.errors import UserError
from contextflow.dags.schema_types import annotation_schema

DEFAULT_ALLOWED_PREFIXES: tuple[str, ...] = ("contextflow.",)
ENV_VAR = "CONTEXTFLOW_ALLOW_IMPORTS"

_registry: dict[str, Callable[..., Any]] = {}
_registry_lock = threading.Lock()


def register_function(func: Callable[..., Any], path: str | None = None) -> str:
    """Allow ``func`` by its import path ``module:qualname`` and return that path."""
    path = path or function_path(func)
    with _registry_lock:
        _registry[path] = func
    return path


def function_path(func: Callable[..., Any]) -> str:
    return f"{func.__module__}:{func.__qualname__}"


def registered_function(path: str) -> Callable[..., Any] | None:
    return _registry.get(path)


def split_path(path: str) -> tuple[str, str]:
    """``pkg.mod:func`` -> (``pkg.mod``, ``func``); a dotted ``pkg.mod.func`` is accepted too."""
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    return module.strip(), attr.strip()


@dataclass(frozen=True)
class Allowlist:
    prefixes: tuple[str, ...]

    @classmethod
    def build(cls, extra: Iterable[str] = (), *, env: bool = True) -> "Allowlist":
        prefixes = list(DEFAULT_ALLOWED_PREFIXES)
        if env:
            prefixes += [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
        prefixes += [p.strip() for p in extra if p and p.strip()]
        return cls(tuple(dict.fromkeys(prefixes)))

    def allows(self, path: str) -> bool:
        if path in _registry:
            return True
        module, _ = split_path(path)
        return any(_module_matches(module, prefix) for prefix in self.prefixes)


def _module_matches(module: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return module.startswith(prefix) or module == prefix[:-1]
    return module == prefix or module.startswith(prefix + ".")


@lru_cache(maxsize=1024)
def _module_source(module: str) -> tuple[bool, str | None]:
    """(module exists, its source file); ``find_spec`` imports parent packages, so this runs only
    for allowlisted modules."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError, AttributeError):
        return False, None
    if found is None:
        return False, None
    origin = found.origin if found.has_location else None
    return True, origin if origin and origin.endswith(".py") else None


@dataclass(frozen=True)
class Parameter:
    name: str
    schema: dict[str, Any] | None
    required: bool
    variadic: bool = False


@dataclass(frozen=True)
class Signature:
    parameters: tuple[Parameter, ...]
    returns: dict[str, Any] | None
    accepts_any_keyword: bool


def locate(path: str) -> tuple[str, Signature | None]:
    """Check an allowlisted path without importing: ("ok" | "no-module" | "no-function", signature)."""
    func = _registry.get(path)
    if func is not None:
        return "ok", signature_of_callable(func)
    module, attr = split_path(path)
    exists, source_file = _module_source(module)
    if not exists:
        return "no-module", None
    if source_file is None:
        return "ok", None
    defs = _module_defs(source_file)
    if defs is None:
        return "ok", None
    head = attr.split(".", 1)[0]
    if head not in defs["names"]:
        return "no-function", None
    return "ok", defs["functions"].get(attr)


@lru_cache(maxsize=256)
def _module_defs(source_file: str) -> dict[str, Any] | None:
    try:
        with open(source_file, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=source_file)
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    functions: dict[str, Signature] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(stmt.name)
            functions[stmt.name] = _signature_from_ast(stmt)
        elif isinstance(stmt, ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
        else:
            # Conditional or dynamic definitions: do not claim a name is missing.
            names.update(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name))
            names.update(n.name for n in ast.walk(stmt) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    return {"names": names, "functions": functions}


def _signature_from_ast(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Signature:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults_from = len(positional) - len(args.defaults)
    params: list[Parameter] = []
    for index, arg in enumerate(positional):
        text = ast.unparse(arg.annotation) if arg.annotation is not None else None
        params.append(Parameter(arg.arg, annotation_schema(text) if text else None, index < defaults_from))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        text = ast.unparse(arg.annotation) if arg.annotation is not None else None
        params.append(Parameter(arg.arg, annotation_schema(text) if text else None, default is None))
    returns = annotation_schema(ast.unparse(func.returns)) if func.returns is not None else None
    return Signature(tuple(params), returns, args.kwarg is not None)


def signature_of_callable(func: Callable[..., Any]) -> Signature | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: fall back to no type claims
        hints = {}
    params: list[Parameter] = []
    any_keyword = False
    for name, param in sig.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            any_keyword = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        params.append(
            Parameter(name, annotation_schema(hints.get(name)), param.default is inspect.Parameter.empty)
        )
    return Signature(tuple(params), annotation_schema(hints.get("return")), any_keyword)


def resolve_callable(path: str, allowlist: Allowlist | None = None) -> Callable[..., Any]:
    """The function at ``path``, for running a node; refuses paths outside the allowlist."""
    func = _registry.get(path)
    if func is not None:
        return func
    allowlist = allowlist or Allowlist.build()
    if not allowlist.allows(path):
        raise UserError(
            f"import path '{path}' is not allowed",
            hint=f"allow its module with --allow-import PREFIX or {ENV_VAR}=PREFIX",
        )
    module_name, attr = split_path(path)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"cannot import '{path}': {exc}", hint="check the module and function names") from None
    if not callable(target):
        raise UserError(f"'{path}' is not callable")
    return target
