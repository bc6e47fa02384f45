"""The options of a simulated model (``sim/<name>``), as one schema for both sides.

The ``sim`` provider reads them from :func:`contextflow.providers.simulated.configure` and from a
node's ``params.sim``; the pipeline checks read them from YAML before a run. Both validate with
:class:`SimOptions`, so a value the checks accept is one the provider can use (and a wrong one is
reported with its position, instead of failing inside the provider on every retry).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contextflow.core.catalog import SIM_INPUT_COST, SIM_OUTPUT_COST

FaultKind = Literal["429", "500", "503", "timeout", "connection", "auth", "bad_request", "malformed_json"]
Probability = Annotated[float, Field(ge=0, le=1)]


class SimOptions(BaseModel):
    """Every option of a simulated model, with its type, range and default."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="Delay before the reply.")
    latency_dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    latency_spread: float = Field(0.0, ge=0, description="uniform: +/- ms; lognormal: sigma.")
    chunk_delay_ms: float = Field(0.0, ge=0, description="Between streamed chunks (the latency is the time to the first).")
    output_tokens: int | None = Field(None, ge=0, description="None: count the reply's tokens.")
    failure_rates: dict[FaultKind, Probability] = Field(
        default_factory=dict, description="Fault kind -> probability per call.")
    fail_first: list[FaultKind | None] = Field(
        default_factory=list, description="Faults of the first calls of each conversation (null: none).")
    hang_s: float = Field(30.0, ge=0, description="How long a 'timeout' fault hangs.")
    reply: str = Field("echo", description="'echo', or a fixed reply text.")
    script: dict[str, str] = Field(default_factory=dict, description="Prompt substring -> reply.")
    json_value: Any = Field(None, description="Reply to JSON requests (else one is synthesised).")
    seed: int = 0
    input_cost_per_token: float = Field(SIM_INPUT_COST, ge=0)
    output_cost_per_token: float = Field(SIM_OUTPUT_COST, ge=0)


SIM_OPTION_NAMES: tuple[str, ...] = tuple(SimOptions.model_fields)
