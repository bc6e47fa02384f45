"""Import-path checks for ``python`` nodes, ``tool`` nodes and python verifiers, and output schemas.

Nothing is imported: a path outside the allowlist is reported as it is, and an allowlisted one is
located with ``importlib.util.find_spec`` and its source read with ``ast``.
"""

from __future__ import annotations

from typing import Any

from contextflow.dags.check_context import CheckContext
from contextflow.dags.imports import ENV_VAR, locate, split_path
from contextflow.dags.schema_types import schema_problem
from contextflow.dags.spec import LLMNode, MapNode, PythonNode, ToolNode
from contextflow.dags.yaml_source import PathKey


def check_code(ctx: CheckContext) -> None:
    for node, path in ctx.iter_nodes():
        _check_node(ctx, node, path)
        if isinstance(node, MapNode):
            _check_node(ctx, node.node, (*path, "node"))


def _check_node(ctx: CheckContext, node: Any, path: PathKey) -> None:
    if isinstance(node, PythonNode):
        check_import(ctx, node.function, (*path, "function"))
    elif isinstance(node, ToolNode) and _looks_like_import(node.tool):
        check_import(ctx, node.tool, (*path, "tool"))
    if isinstance(node, LLMNode):
        for index, verify in enumerate(node.verify):
            if verify.kind == "python" and verify.function:
                check_import(ctx, verify.function, (*path, "verify", index, "function"))
    schema = getattr(node, "output_schema", None)
    if schema is not None:
        problem = schema_problem(schema)
        if problem:
            message, inner = problem
            ctx.add("invalid-schema", f"node '{node.id}' output_schema: {message}",
                    (*path, "output_schema", *inner),
                    hint="write a JSON Schema, e.g. {type: object, properties: {answer: {type: string}}}")


def _looks_like_import(name: str) -> bool:
    """Tool names without a module part are built-in tools the runtime provides."""
    return ":" in name or "." in name


def check_import(ctx: CheckContext, target: str, path: PathKey) -> None:
    module, attr = split_path(target)
    if not module or not attr:
        ctx.add("invalid-value", f"'{target}' is not an import path", path,
                hint="write 'package.module:function'")
        return
    if not ctx.allowlist.allows(target):
        allowed = ", ".join(ctx.allowlist.prefixes)
        top = module.split(".")[0]
        ctx.add("import-not-allowed", f"'{target}' is outside the import allowlist ({allowed})", path,
                hint=f"if you trust it, allow it with --allow-import {top} or {ENV_VAR}={top}")
        return
    status, _signature = locate(target)
    if status == "no-module":
        ctx.add("import-not-found", f"module '{module}' of '{target}' cannot be found", path,
                hint="check the spelling and that the package is installed")
    elif status == "no-function":
        ctx.add("import-not-found", f"module '{module}' defines no '{attr}'", path,
                hint="check the function name after the ':'")
