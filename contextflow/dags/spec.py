"""The pipeline spec: pydantic models for what a YAML or Python pipeline declares.

These models describe a pipeline; they do not check that it makes sense as a graph (references,
cycles, types, models, budgets). That is ``contextflow.dags.validate``'s job, so that every
problem can be reported at once with its source position instead of pydantic stopping early.

References between nodes are written inline, Prompt-flow style: ``${inputs.question}``,
``${retrieve.output}``, ``${review.output.findings}``, and ``${item}`` inside a ``map``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

NodeKind = Literal["llm", "retrieve", "python", "tool", "map"]
ApprovalMode = Literal["always", "on_side_effect", "on_escalation", "never"]
AutonomyLevel = Literal["suggest", "ask", "budgeted", "full"]
InputType = Literal["string", "integer", "number", "boolean", "array", "object"]
SideEffect = Literal["write_files", "apply_patch", "run_command", "network"]

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt key silently ignored is the worst YAML bug."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetrySpec(_Strict):
    """Retry transient failures (timeouts, rate limits, 5xx, connection errors) with backoff."""

    attempts: int = Field(3, ge=1, le=20, description="Total tries, the first one included.")
    backoff_s: float = Field(0.5, ge=0, description="Delay before the second try.")
    backoff_multiplier: float = Field(2.0, ge=1)
    backoff_max_s: float = Field(30.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1, description="Fraction of each delay randomised.")


class CacheSpec(_Strict):
    enabled: bool = True
    ttl_s: float | None = Field(None, gt=0, description="Entries older than this are misses.")


class BudgetSpec(_Strict):
    """Hard caps for one run; a call is only started when its worst case fits."""

    max_cost_usd: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    max_wall_s: float | None = Field(None, gt=0)


class ModelDeclaration(_Strict):
    """A model litellm's bundled map does not know (a local or self-hosted one)."""

    input_cost_per_token: float = Field(0.0, ge=0)
    output_cost_per_token: float = Field(0.0, ge=0)
    max_input_tokens: int = Field(8192, gt=0)
    max_output_tokens: int = Field(2048, gt=0)
    quality: float | None = Field(None, ge=0, le=1, description="Prior quality in [0, 1].")


class Defaults(_Strict):
    model: str | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)
    timeout_s: float | None = Field(120.0, gt=0)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    max_concurrency: int = Field(16, ge=1)
    provider_limits: dict[str, int] = Field(
        default_factory=dict, description="Max concurrent calls per provider or model name."
    )
    autonomy: AutonomyLevel = "full"


class InputSpec(_Strict):
    type: InputType = "string"
    description: str = ""
    default: Any = None
    required: bool = True

    @model_validator(mode="after")
    def _default_makes_optional(self) -> "InputSpec":
        if self.default is not None:
            self.required = False
        return self


class VerifySpec(_Strict):
    """A programmatic check of a node's output (a "verifiable reward")."""

    kind: Literal["schema", "regex", "python", "shell", "judge"]
    pattern: str | None = Field(None, description="regex: must match the output text.")
    function: str | None = Field(None, description="python: import path of a check callable.")
    command: str | None = Field(None, description="shell: exit 0 means pass.")
    model: str | None = Field(None, description="judge: the judging model.")
    rubric: str | None = None
    threshold: float = Field(0.5, ge=0, le=1)
    name: str | None = None


class _NodeBase(_Strict):
    id: str = Field(pattern=NODE_ID_PATTERN)
    description: str = ""
    when: str | None = Field(None, description="Condition on upstream results; false skips.")
    approval: ApprovalMode | None = None
    depends_on: list[str] = Field(
        default_factory=list, description="Extra ordering edges beyond inferred references."
    )
    retry: RetrySpec | None = None
    timeout_s: float | None = Field(None, gt=0)
    cache: CacheSpec | None = None
    resources: dict[str, float] = Field(
        default_factory=dict, description="Executor resource hints, e.g. {gpus: 1}."
    )


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class LLMNode(_NodeBase):
    kind: Literal["llm"] = "llm"
    prompt: str | None = Field(None, description="User message template.")
    system: str | None = Field(None, description="System message template.")
    messages: list[Message] | None = None
    model: str | None = None
    models: list[str] | None = Field(None, description="A ladder, cheapest first.")
    strategy: Literal["fixed", "cascade", "route"] = "fixed"
    router: str | None = Field(None, description="Path or name of a trained router (route).")
    verify: list[VerifySpec] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to litellm.")
    output_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the output.")
    max_output_tokens: int | None = Field(None, gt=0)


class RetrieveNode(_NodeBase):
    kind: Literal["retrieve"] = "retrieve"
    query: str
    repo: str = "."
    budget_tokens: int = Field(8000, gt=0)
    retrievers: list[str] | None = None
    for_model: str | None = Field(None, description="Tokenizer and context limit to fit.")
    format: Literal["markdown", "xml"] = "markdown"


class PythonNode(_NodeBase):
    kind: Literal["python"] = "python"
    function: str = Field(description="Import path 'package.module:function' (allowlisted).")
    args: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None


class ToolNode(_NodeBase):
    kind: Literal["tool"] = "tool"
    tool: str = Field(description="Built-in tool name or allowlisted import path.")
    args: dict[str, Any] = Field(default_factory=dict)
    side_effects: list[SideEffect] = Field(default_factory=list)


class MapNode(_NodeBase):
    kind: Literal["map"] = "map"
    over: str = Field(description="Reference to a list, e.g. ${split.output}.")
    as_: str = Field("item", alias="as", pattern=NODE_ID_PATTERN)
    node: "InnerNode" = Field(description="The step run once per element.")
    max_concurrency: int | None = Field(None, ge=1)


Node = Annotated[
    Union[LLMNode, RetrieveNode, PythonNode, ToolNode, MapNode], Field(discriminator="kind")
]
InnerNode = Annotated[
    Union[LLMNode, RetrieveNode, PythonNode, ToolNode], Field(discriminator="kind")
]
MapNode.model_rebuild()


class PipelineSpec(_Strict):
    """A whole pipeline as declared; ``contextflow.dags.validate`` turns it into a checked plan."""

    name: str
    description: str = ""
    version: int = 1
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict, description="name -> ${reference}")
    defaults: Defaults = Field(default_factory=Defaults)
    models: dict[str, ModelDeclaration] = Field(
        default_factory=dict, description="Custom models unknown to litellm's price map."
    )
    nodes: list[Node] = Field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for candidate in self.nodes:
            if candidate.id == node_id:
                return candidate
        raise KeyError(node_id)

    @property
    def node_ids(self) -> list[str]:
        return [n.id for n in self.nodes]
