"""Context windows: fuse retrievers' rankings and pack the best excerpts into a token budget."""

from contextflow.context.builder import build_context
from contextflow.core.tokens import count_tokens
from contextflow.context.window import ContextItem, ContextWindow

__all__ = ["ContextItem", "ContextWindow", "build_context", "count_tokens"]
