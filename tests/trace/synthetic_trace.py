from __future__ import annotations

from pathlib import Path

from contextflow.core import events as ev
from contextflow.core.attempts import Attempt

RUN = "run-1"


def synthetic_run(run_id: str = RUN, t0: float = 1000.0, model_c: str = "gpt-4o-mini") -> list[ev.Event]:
    """a and b in parallel (llm), c after both (llm, two attempts), d a python node."""
    u = ev.Usage
    return [
        ev.RunStarted(run_id, "demo", {"q": "x"}, ["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("c", "d")], ts=t0),
        ev.NodeStarted(run_id, "a", "llm", ts=t0), ev.NodeStarted(run_id, "b", "llm", ts=t0),
        ev.AttemptStarted(run_id, "a", 1, "sim/x", prompt=[{"role": "user", "content": "hi a"}], ts=t0),
        ev.AttemptStarted(run_id, "b", 1, "sim/x", prompt=[{"role": "user", "content": "hi b"}], ts=t0),
        ev.AttemptFinished(run_id, "a", Attempt(1, True, "sim/x", usage=u(10, 5), cost_usd=0.001, latency_s=1.0,
                                                response="A"), ts=t0 + 1),
        ev.NodeFinished(run_id, "a", "succeeded", "A", 0.001, u(10, 5), "sim/x", duration_s=1.0, ts=t0 + 1),
        ev.AttemptFinished(run_id, "b", Attempt(1, True, "sim/x", usage=u(20, 5), cost_usd=0.002, latency_s=2.0,
                                                response="B"), ts=t0 + 2),
        ev.NodeFinished(run_id, "b", "succeeded", "B", 0.002, u(20, 5), "sim/x", duration_s=2.0, ts=t0 + 2),
        ev.NodeStarted(run_id, "c", "llm", ts=t0 + 2),
        ev.AttemptStarted(run_id, "c", 1, model_c, ts=t0 + 2),
        ev.AttemptFinished(run_id, "c", Attempt(1, False, model_c, usage=u(100, 0), latency_s=0.5, error="rate limited",
                                                error_type="RateLimitError"), ts=t0 + 2.5),
        ev.AttemptStarted(run_id, "c", 2, model_c, ts=t0 + 2.6),
        ev.AttemptFinished(run_id, "c", Attempt(2, True, model_c, usage=u(100, 50), cost_usd=0.004, latency_s=1.0,
                                                response="<script>alert(1)</script><b>bold</b>"), ts=t0 + 3.6),
        # The node's own cost repeats its attempts' sum: rollups must not count it twice.
        ev.NodeFinished(run_id, "c", "succeeded", "C", 0.004, u(200, 50), model_c, duration_s=1.6, ts=t0 + 3.6),
        ev.NodeStarted(run_id, "d", "python", ts=t0 + 3.6),
        ev.NodeFinished(run_id, "d", "succeeded", {"n": 1}, 0.0, u(), None, duration_s=0.1, ts=t0 + 3.7),
        ev.RunFinished(run_id, "succeeded", {"out": "C"}, 0.007, u(230, 60), ts=t0 + 3.7),
    ]


