"""Errors raised in a worker process reach the scheduler with their class and attributes."""

from __future__ import annotations

import pickle

import pytest

from contextflow.runtime.executor import Work
from contextflow.runtime.policies import error_kind, is_retryable
from contextflow.runtime.remote import make_portable, run_remote


@pytest.mark.parametrize(
    ("name", "kind", "retryable"),
    [("RateLimitError", "rate_limit", True), ("InternalServerError", "server", True),
     ("AuthenticationError", "auth", False), ("BadRequestError", "bad_request", False)],
)
def test_litellm_errors_survive_pickling_with_their_class(name: str, kind: str, retryable: bool) -> None:
    import litellm

    error = getattr(litellm, name)(message="simulated", llm_provider="sim", model="sim/x")
    with pytest.raises(TypeError):  # the reason this module exists
        pickle.loads(pickle.dumps(error))
    back = pickle.loads(pickle.dumps(make_portable(error)))
    assert type(back) is type(error)
    assert back.status_code == error.status_code and str(back) == str(error)
    assert (error_kind(back), is_retryable(back)) == (kind, retryable)


def _boom() -> None:
    import litellm

    raise litellm.RateLimitError("slow down", llm_provider="sim", model="sim/x")


async def _twice(x: int) -> int:
    return 2 * x


def test_run_remote_runs_async_work_on_a_process_loop_and_marks_errors_portable() -> None:
    assert run_remote(Work("n", "python", _twice, {"x": 21}, is_async=True)) == 42
    assert run_remote(Work("n", "python", _twice, {"x": 1}, is_async=True)) == 2  # the loop is reused
    with pytest.raises(Exception) as caught:
        run_remote(Work("n", "python", _boom))
    assert error_kind(pickle.loads(pickle.dumps(caught.value))) == "rate_limit"
