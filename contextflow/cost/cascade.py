"""A verifier-gated cascade as pure policy: the caller supplies the model call.

``Cascade(rungs, verify).run(call)`` tries the cheapest rung, runs the checks on its output,
and escalates while a check fails. ``call(rung) -> Answer`` is the scheduler's real litellm path
(retries, budget reservation, caching stay there), so this module decides only *which* rung
next and keeps the books: every attempt's cost, usage and verdicts, including a judge's own
cost, land in ``CascadeResult.attempts``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence

from contextflow.core.rungs import Rung, parse_rung
from contextflow.cost.verifiers import Verdict, run_verifiers
from contextflow.dags.spec import VerifySpec


@dataclass
class Answer:
    value: Any
    text: str
    cost_usd: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)


@dataclass
class Attempt:
    rung: int
    model: str
    cost_usd: float
    usage: dict[str, int]
    verdicts: list[Verdict]
    passed: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "verdicts": [dataclasses.asdict(v) for v in self.verdicts]}


@dataclass
class CascadeResult:
    answer: Answer | None
    model: str | None
    passed: bool
    attempts: list[Attempt]

    @property
    def cost_usd(self) -> float:
        """Everything spent: every rung's call and every verifier's own calls (a judge's)."""
        return sum(a.cost_usd + sum(v.cost_usd for v in a.verdicts) for a in self.attempts)


CallFn = Callable[[Rung], Awaitable[Answer]]


class Cascade:
    def __init__(self, rungs: Sequence[str | dict[str, Any] | Rung], verify: Sequence[VerifySpec], *,
                 schema: dict[str, Any] | None = None, workdir: Path | None = None,
                 scope: Mapping[str, Any] | None = None, start: int = 0) -> None:
        if not rungs:
            raise ValueError("a cascade needs at least one rung")
        self.rungs = [r if isinstance(r, Rung) else parse_rung(r) for r in rungs]
        self.verify = list(verify)
        self.schema, self.workdir, self.scope = schema, workdir, scope
        self.start = min(max(start, 0), len(self.rungs) - 1)  # the planner may skip rungs it cannot afford

    async def run(self, call: CallFn) -> CascadeResult:
        """Climb the ladder until an answer passes every check; the last answer when none does.

        A rung whose call raises is recorded and skipped, except the last, whose error propagates
        (after the attempts are attached to it as ``exc.cascade_attempts``).
        """
        attempts: list[Attempt] = []
        last: tuple[Answer, Rung] | None = None
        for index in range(self.start, len(self.rungs)):
            rung = self.rungs[index]
            try:
                answer = await call(rung)
            except Exception as exc:
                attempts.append(Attempt(index, rung.name, 0.0, {}, [], False, f"{type(exc).__name__}: {exc}"))
                if index == len(self.rungs) - 1:
                    if last is not None:
                        return CascadeResult(last[0], last[1].name, False, attempts)
                    exc.cascade_attempts = attempts  # type: ignore[attr-defined]
                    raise
                continue
            verdicts = await run_verifiers(self.verify, answer.value, text=answer.text, workdir=self.workdir,
                                           schema=self.schema, scope=self.scope)
            passed = all(v.passed for v in verdicts)
            attempts.append(Attempt(index, rung.name, answer.cost_usd, dict(answer.usage), verdicts, passed))
            last = (answer, rung)
            if passed:
                return CascadeResult(answer, rung.name, True, attempts)
        assert last is not None
        return CascadeResult(last[0], last[1].name, False, attempts)
