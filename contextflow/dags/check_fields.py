"""Checks of the fields a run would otherwise trip over, or wait on forever.

The spec's types accept these values, but the run cannot use them: an llm node with no user
message, a ``tool:`` that names no tool, a built-in tool's missing or unknown arguments, a
``provider_limits`` entry below 1 (a semaphore of 0 never opens), ``params.sim`` options the
``sim`` provider refuses (checked with the provider's own schema, :mod:`contextflow.core.sim_options`),
litellm parameters of the wrong type, verifiers missing what they need, unknown retrievers and
``strategy: route`` without a router. Each is constant work per node.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import Any

from contextflow.core.builtin_tools import BUILTIN_TOOL_PARAMS, RUNTIME_ARGUMENT
from contextflow.core.sim_options import SimOptions
from contextflow.dags.check_context import CheckContext
from contextflow.dags.option_schemas import LiteLLMParams, report_options
from contextflow.dags.preview import preview
from contextflow.dags.problems import suggestion_hint
from contextflow.dags.spec import LLMNode, MapNode, RetrieveNode, ToolNode
from contextflow.dags.yaml_source import PathKey
from contextflow.retrievers.rankers import RETRIEVERS

#: JSON types of the built-in tools' arguments (what their functions accept).
_TOOL_ARG_TYPES: dict[str, tuple[type, ...]] = {
    "path": (str,), "content": (str,), "create_dirs": (bool,), "patch": (str,), "check_only": (bool,),
    "command": (str, list), "timeout_s": (int, float), "check": (bool,), "env": (dict,),
}
_TYPE_WORDS = {str: "text", list: "a list", bool: "true or false", int: "a number", float: "a number",
               dict: "a mapping"}

#: Keys litellm receives as their own arguments: a second value in ``params`` is a TypeError.
_RESERVED_PARAMS = {"model": "model:", "messages": "prompt:, system: or messages:"}


def check_fields(ctx: CheckContext) -> None:
    _check_provider_limits(ctx)
    misspelt = _nodes_with_unknown_keys(ctx)
    for index, (node, path) in enumerate(ctx.iter_nodes()):
        if index in misspelt:
            continue
        _check_node(ctx, node, path)
        if isinstance(node, MapNode):
            _check_node(ctx, node.node, (*path, "node"))


def _nodes_with_unknown_keys(ctx: CheckContext) -> set[int]:
    """Nodes checked without a misspelt key: their field problems would only repeat the typo
    (``promt: hi`` is also a missing prompt), so they wait until the key is fixed.

    The structure check names the node an unknown key is in; a key it could not place by node
    (the node has no id) is placed by line: a node owns the lines from its own start to the next
    node's start (nodes are written one after another in the file).
    """
    named = {p.node for p in ctx.problems if p.code == "unknown-key" and p.node}
    found = {index for index, (node, _) in enumerate(ctx.iter_nodes()) if node.id in named}
    lines = sorted(p.line for p in ctx.problems if p.code == "unknown-key" and p.line and not p.node)
    if not lines or ctx.source is None:
        return found
    starts = [ctx.position(path)[0] for _, path in ctx.iter_nodes()]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else None
        at = bisect_left(lines, start)
        if at < len(lines) and (end is None or lines[at] < end):
            found.add(index)
    return found


def _check_provider_limits(ctx: CheckContext) -> None:
    for name, limit in ctx.spec.defaults.provider_limits.items():
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            ctx.add("invalid-value",
                    f"provider_limits '{name}' is {preview(limit)}: no call to '{name}' could ever start",
                    ("defaults", "provider_limits", name),
                    hint="a limit is how many calls may run at once; use 1 or more, or remove the key for no limit")


def _check_node(ctx: CheckContext, node: Any, path: PathKey) -> None:
    if isinstance(node, LLMNode):
        _check_llm(ctx, node, path)
    elif isinstance(node, ToolNode):
        _check_tool(ctx, node, path)
    elif isinstance(node, RetrieveNode) and node.retrievers is not None:
        for index, name in enumerate(node.retrievers):
            if name not in RETRIEVERS:
                ctx.add("invalid-value", f"node '{node.id}' names the unknown retriever '{name}'",
                        (*path, "retrievers", index),
                        hint=suggestion_hint(name, RETRIEVERS) or f"choose from {', '.join(RETRIEVERS)}")


def _check_llm(ctx: CheckContext, node: LLMNode, path: PathKey) -> None:
    if not node.prompt and not any(m.role == "user" for m in node.messages or ()):
        where = (*path, "prompt") if node.prompt is not None else path
        ctx.add("missing-prompt", f"llm node '{node.id}' has no user message: nothing would be asked",
                where, key=node.prompt is None,
                hint="add 'prompt: ...' (the user message), or a '- role: user' entry in 'messages:'")
    if node.strategy == "route" and not node.router:
        ctx.add("missing-key", f"llm node '{node.id}' uses strategy: route but names no router",
                (*path, "strategy"), hint="add 'router: PATH' (a router saved by training), or use strategy: cascade")
    _check_params(ctx, node, (*path, "params"))
    for index, verify in enumerate(node.verify):
        _check_verify(ctx, node, verify, (*path, "verify", index))


def _check_params(ctx: CheckContext, node: LLMNode, path: PathKey) -> None:
    params = node.params
    for key, field in _RESERVED_PARAMS.items():
        if key in params:
            ctx.add("unknown-key", f"node '{node.id}' params.{key} would be passed to litellm twice",
                    (*path, key), key=True, hint=f"set it with the node's {field} instead")
    typed = {k: v for k, v in params.items() if k in LiteLLMParams.model_fields}
    if typed:
        report_options(ctx, f"node '{node.id}' params", path, LiteLLMParams, typed)
    if "sim" in params:
        sim = params["sim"]
        if not isinstance(sim, dict):
            ctx.add("wrong-type", f"node '{node.id}' params.sim is {preview(sim)}, not a mapping of sim options",
                    (*path, "sim"), hint="write options as 'key: value' lines, e.g. {latency_ms: 50}")
        else:
            report_options(ctx, f"node '{node.id}' params.sim", (*path, "sim"), SimOptions, sim)


def _check_verify(ctx: CheckContext, node: LLMNode, verify: Any, path: PathKey) -> None:
    needs = {"regex": "pattern", "python": "function", "shell": "command", "judge": "model"}.get(verify.kind)
    if needs and not getattr(verify, needs):
        ctx.add("missing-key", f"node '{node.id}': a {verify.kind} verifier needs '{needs}'", (*path, "kind"),
                hint=f"add '{needs}:' to this verifier, or remove it (it would fail every output)")
    if verify.kind == "regex" and verify.pattern:
        try:
            re.compile(verify.pattern)
        except re.error as exc:
            ctx.add("invalid-value", f"node '{node.id}': the verifier's pattern is not a regular expression: {exc}",
                    (*path, "pattern"), hint="fix the pattern; quote it in single quotes so YAML keeps backslashes")


def _check_tool(ctx: CheckContext, node: ToolNode, path: PathKey) -> None:
    if ":" in node.tool or "." in node.tool:
        return  # an import path: check_code checks it against the allowlist
    params = BUILTIN_TOOL_PARAMS.get(node.tool)
    if params is None:
        ctx.add("unknown-tool", f"node '{node.id}' names the tool '{node.tool}', which is not built in",
                (*path, "tool"),
                hint=suggestion_hint(node.tool, BUILTIN_TOOL_PARAMS)
                or f"built-in tools: {', '.join(BUILTIN_TOOL_PARAMS)}; or name a function 'package.module:function'")
        return
    for name, value in node.args.items():
        if name == RUNTIME_ARGUMENT:
            ctx.add("unknown-argument", f"tool '{node.tool}' of node '{node.id}' gets '{name}' from the run",
                    (*path, "args", name), key=True, hint=f"remove '{name}'; tools work in the run's working tree")
        elif name not in params.names:
            ctx.add("unknown-argument", f"tool '{node.tool}' of node '{node.id}' takes no argument '{name}'",
                    (*path, "args", name), key=True,
                    hint=suggestion_hint(str(name), params.names) or f"it takes: {', '.join(params.names)}")
        elif not _is_reference(value) and not isinstance(value, _TOOL_ARG_TYPES[name]) or (
                isinstance(value, bool) and bool not in _TOOL_ARG_TYPES[name]):
            wanted = " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in _TOOL_ARG_TYPES[name]))
            ctx.add("wrong-type", f"tool '{node.tool}' argument '{name}' must be {wanted} (got {preview(value)})",
                    (*path, "args", name), hint=f"write {wanted}, or a reference such as ${{node.output}}")
    missing = [name for name in params.required if name not in node.args]
    if missing:
        ctx.add("missing-argument",
                f"tool '{node.tool}' of node '{node.id}' needs {', '.join(repr(m) for m in missing)}",
                (*path, "args") if node.args else (*path, "tool"),
                hint="add " + ", ".join(f"'{m}:'" for m in missing) + " under 'args:'")


def _is_reference(value: Any) -> bool:
    """A templated string: its type is only known when the run resolves it."""
    return isinstance(value, str) and ("${" in value or "{{" in value)
