"""Prices, budgets and model choice."""

from contextflow.cost.catalog import ModelInfo, UnknownModelError, get, lookup, register_model

__all__ = ["ModelInfo", "UnknownModelError", "get", "lookup", "register_model"]
