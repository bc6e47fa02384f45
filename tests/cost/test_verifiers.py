"""Each verifier kind, on passing and failing outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from contextflow.cost.verifiers import run_verifiers
from contextflow.dags.spec import VerifySpec

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


def is_even(value: dict) -> bool:
    return value["answer"] % 2 == 0


def close_to_target(value: dict, target: int) -> float:
    return 1.0 / (1 + abs(value["answer"] - target))


async def test_schema_check_against_the_node_schema() -> None:
    ok, bad = await run_verifiers([VerifySpec(kind="schema")], {"answer": 4}, text="", schema=SCHEMA), \
        await run_verifiers([VerifySpec(kind="schema")], {"answer": "four"}, text="", schema=SCHEMA)
    assert ok[0].passed and not bad[0].passed
    assert "answer" in bad[0].detail


async def test_regex_matches_the_text() -> None:
    spec = VerifySpec(kind="regex", pattern=r"#### \d+$")
    assert (await run_verifiers([spec], None, text="so 3+4=7\n#### 7"))[0].passed
    assert not (await run_verifiers([spec], None, text="I think seven"))[0].passed


async def test_python_callable_binds_output_and_upstream_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTFLOW_ALLOW_IMPORTS", "test_verifiers")
    sys.modules.setdefault("test_verifiers", sys.modules[__name__])
    even = VerifySpec(kind="python", function="test_verifiers:is_even")
    near = VerifySpec(kind="python", function="test_verifiers:close_to_target", threshold=0.5)
    verdicts = await run_verifiers([even, near], {"answer": 4}, text="", scope={"target": 5})
    assert [v.passed for v in verdicts] == [True, True]
    assert verdicts[1].score == pytest.approx(0.5)
    verdicts = await run_verifiers([even, near], {"answer": 9}, text="", scope={"target": 5})
    assert [v.passed for v in verdicts] == [False, False]


async def test_python_callable_outside_the_allowlist_fails_the_check() -> None:
    verdict = (await run_verifiers([VerifySpec(kind="python", function="os:system")], "x", text="x"))[0]
    assert not verdict.passed and "not allowed" in verdict.detail


async def test_shell_command_sees_the_output_and_runs_in_the_workdir(tmp_path: Path) -> None:
    (tmp_path / "expected.txt").write_text("42")
    spec = VerifySpec(kind="shell", command='test "$(cat "$CONTEXTFLOW_OUTPUT_FILE")" = "$(cat expected.txt)"')
    assert (await run_verifiers([spec], None, text="42", workdir=tmp_path))[0].passed
    failed = (await run_verifiers([spec], None, text="41", workdir=tmp_path))[0]
    assert not failed.passed and failed.detail.startswith("exit 1")


async def test_llm_judge_scores_against_threshold() -> None:
    from contextflow.providers.simulated import configure

    configure("sim/judge-good", json_value={"score": 0.9, "reason": "correct"})
    configure("sim/judge-bad", json_value={"score": 0.2, "reason": "wrong"})
    good = VerifySpec(kind="judge", model="sim/judge-good", rubric="Is it right?", threshold=0.7)
    bad = VerifySpec(kind="judge", model="sim/judge-bad", rubric="Is it right?", threshold=0.7)
    verdicts = await run_verifiers([good, bad], None, text="the answer")
    assert [v.passed for v in verdicts] == [True, False]
    assert verdicts[0].score == pytest.approx(0.9)
    assert verdicts[0].cost_usd > 0


async def test_shell_command_is_stopped_at_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("contextflow.cost.verifiers.SHELL_TIMEOUT_S", 0.3)
    verdict = (await run_verifiers([VerifySpec(kind="shell", command="sleep 5")], None, text="", workdir=tmp_path))[0]
    assert not verdict.passed and "timed out" in verdict.detail


async def test_llm_judge_through_a_mocked_litellm_response(monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    seen: dict = {}

    async def fake_acompletion(**kwargs: object) -> object:
        seen.update(kwargs)
        return litellm.ModelResponse(
            choices=[{"index": 0, "message": {"role": "assistant", "content": '{"score": 0.4, "reason": "misses a step"}'}}],
            usage={"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38},
        )

    monkeypatch.setattr(litellm, "acompletion", fake_acompletion)
    spec = VerifySpec(kind="judge", model="gpt-4o-mini", rubric="Shows every step?", threshold=0.5)
    verdict = (await run_verifiers([spec], None, text="it is 4"))[0]
    assert seen["model"] == "gpt-4o-mini" and "Shows every step?" in seen["messages"][1]["content"]
    assert not verdict.passed and verdict.score == pytest.approx(0.4) and "misses a step" in verdict.detail
    assert verdict.usage == {"input_tokens": 30, "output_tokens": 8}


async def test_judge_reply_that_is_not_a_score_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    async def fake_acompletion(**kwargs: object) -> object:
        return litellm.ModelResponse(choices=[{"index": 0, "message": {"role": "assistant", "content": "looks good!"}}])

    monkeypatch.setattr(litellm, "acompletion", fake_acompletion)
    verdict = (await run_verifiers([VerifySpec(kind="judge", model="gpt-4o-mini")], None, text="x"))[0]
    assert not verdict.passed and "not a score" in verdict.detail


async def test_gsm8k_arithmetic_verifier_catches_a_wrong_calculator_note() -> None:
    spec = VerifySpec(kind="python", function="contextflow.cost.router_features:arithmetic_consistent")
    good = "2 boxes of 9 is 2*9=<<2*9=18>>18\n#### 18"
    wrong_note = "2 boxes of 9 is 2*9=<<2*9=19>>19\n#### 19"
    wrong_final = "2 boxes of 9 is 2*9=<<2*9=18>>18\n#### 20"
    verdicts = [(await run_verifiers([spec], t, text=t))[0].passed for t in (good, wrong_note, wrong_final)]
    assert verdicts == [True, False, False]
