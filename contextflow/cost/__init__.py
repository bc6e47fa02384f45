"""Prices, budgets and model choice."""

from contextflow.core.catalog import ModelInfo, UnknownModelError, get, lookup, register_model

__all__ = ["ModelInfo", "UnknownModelError", "get", "lookup", "register_model"]
