"""A pipeline run in a child process by the kill -9 and Ctrl-C tests.

usage: python run_target.py run PROJECT LOG RUN_ID [CHECKPOINT]  |  python run_target.py resume PROJECT RUN_ID
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import runtime_helpers as rh  # noqa: E402  (registers the node functions)
from contextflow.api import resume, run  # noqa: E402


def spec(log: str, layers: int = 3, width: int = 6, seconds: float = 0.15):
    nodes = []
    for layer in range(layers):
        for i in range(width):
            node_id = f"l{layer}_{i}"
            args = {"seconds": seconds, "log": log, "tag": node_id}
            if layer:
                args["value"] = f"${{l{layer - 1}_{i}}}"
            nodes.append({"id": node_id, "kind": "python", "function": f"{rh.PREFIX}:nap", "args": args})
    return rh.pipeline(nodes, name="killable")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        project, log, run_id = sys.argv[2:5]
        checkpoint = sys.argv[5] if len(sys.argv) > 5 else "node"
        result = run(spec(log), project=project, run_id=run_id, trace=False, checkpoint=checkpoint)
    else:
        _, _, project, run_id = sys.argv
        result = resume(run_id, project=project, trace=False)
    print(result.status)
