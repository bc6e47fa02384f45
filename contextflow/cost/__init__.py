"""Prices, budgets and model choice.

The catalog (prices, context windows, quality priors) is shared vocabulary and lives in
``contextflow.core.catalog``; it is re-exported here, where users look for it.
"""

from contextflow.core import catalog
from contextflow.core.catalog import ModelInfo, UnknownModelError, get, lookup, register_model

__all__ = ["ModelInfo", "UnknownModelError", "catalog", "get", "lookup", "register_model"]
