"""Values no store can write: half surrogate pairs from a model, and a failing checkpoint write."""

from __future__ import annotations

import asyncio

import pytest

import runtime_helpers as rh
from contextflow.api import arun
from contextflow.core.results import decode_value, encode_value
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime.structured import extract_json
from contextflow.core.state import StateDir


def test_a_json_escape_of_half_a_surrogate_pair_becomes_a_replacement_character() -> None:
    value = extract_json('{"file": "a\\udff9.py", "emoji": "\\ud83d\\ude00", "list": ["\\udc80"]}')
    assert value == {"file": "a\ufffd.py", "emoji": "\U0001F600", "list": ["\ufffd"]}
    "".join(map(str, value.values())).encode("utf-8")  # writable as UTF-8


def test_a_lone_surrogate_in_a_node_value_is_stored_and_read_back_unchanged() -> None:
    value = {"text": "half a pair: \udff9", "plain": "é"}
    text = encode_value(value)
    text.encode("utf-8")  # what SQLite needs
    assert decode_value(text) == value


async def test_a_python_node_returning_a_lone_surrogate_is_checkpointed(state_home) -> None:
    nodes = [{"id": "odd", "kind": "python", "function": f"{rh.PREFIX}:nap", "args": {"seconds": 0, "value": "x\udff9"}}]
    result = await asyncio.wait_for(arun(rh.pipeline(nodes), trace=False), 30)
    assert result.status == "succeeded", result.error
    with SQLiteRunStore(StateDir.for_project().runs_db) as store:
        assert store.load_nodes(result.run_id)["odd"].value == "x\udff9"


async def test_a_checkpoint_that_cannot_be_written_fails_the_run_instead_of_hanging(
        state_home, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self, run_id, results):  # noqa: ANN001
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SQLiteRunStore, "save_nodes", full_disk)
    nodes = [{"id": "a", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": 1}},
             {"id": "b", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": "${a}"}}]
    result = await asyncio.wait_for(arun(rh.pipeline(nodes), trace=False), 30)
    assert result.status == "failed"
    assert "could not write checkpoints" in result.error and "No space left" in result.error
    assert result.nodes["b"].status != "succeeded"  # nothing started on a result that is not on disk
