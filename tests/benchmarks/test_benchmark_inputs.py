"""The benchmarks take their data and folders from flags or environment variables, never from a
machine's own paths: a missing required folder exits 2 naming the flag, missing data is a skip
(exit 0), and with --json the last line of stdout is always one JSON object."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
BENCH_ENV = ("CONTEXTFLOW_BENCH_MIRRORS", "CONTEXTFLOW_BENCH_TREES", "CONTEXTFLOW_BENCH_STATE",
             "CONTEXTFLOW_BENCH_SHARED", "CONTEXTFLOW_BENCH_CHROMIUM")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BENCH_ENV}
    env["CONTEXTFLOW_HOME"] = str(tmp_path / "home" / ".contextflow")
    env.update(extra)
    return env


def _bench(script: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args], env=env, cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=240)


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _load_paths_module():
    spec = importlib.util.spec_from_file_location("bench_paths", BENCHMARKS / "_paths.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shared_folder_is_beside_the_repository_root_unless_a_flag_or_variable_says(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    paths = _load_paths_module()
    monkeypatch.delenv("CONTEXTFLOW_BENCH_SHARED", raising=False)
    assert paths.shared_dir() == BENCHMARKS.parent.parent / "shared"
    monkeypatch.setenv("CONTEXTFLOW_BENCH_SHARED", str(tmp_path / "from-env"))
    assert paths.shared_dir() == tmp_path / "from-env"
    assert paths.shared_dir(tmp_path / "from-flag") == tmp_path / "from-flag"


def test_localization_without_its_folders_exits_2_naming_flag_and_variable(tmp_path: Path) -> None:
    done = _bench("localization.py", ["--json"], _env(tmp_path), tmp_path)
    assert done.returncode == 2
    assert "--mirrors DIR or set CONTEXTFLOW_BENCH_MIRRORS" in done.stderr and "Traceback" not in done.stderr
    assert "--mirrors DIR" in _last_json(done.stdout)["error"]
    only_mirrors = _bench("localization.py", ["--mirrors", str(tmp_path)], _env(tmp_path), tmp_path)
    assert only_mirrors.returncode == 2 and "--trees DIR or set CONTEXTFLOW_BENCH_TREES" in only_mirrors.stderr


def test_localization_skips_when_the_task_file_is_absent(tmp_path: Path) -> None:
    env = _env(tmp_path, CONTEXTFLOW_BENCH_MIRRORS=str(tmp_path / "m"), CONTEXTFLOW_BENCH_TREES=str(tmp_path / "t"),
               CONTEXTFLOW_BENCH_STATE=str(tmp_path / "s"), CONTEXTFLOW_BENCH_SHARED=str(tmp_path / "no-shared"))
    done = _bench("localization.py", ["--json"], env, tmp_path)  # every folder from the environment
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("skipped: ")
    assert str(tmp_path / "no-shared" / "data" / "swebench" / "dev_instances.json") in _last_json(done.stdout)["skipped"]


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_localization_runs_on_folders_it_is_given_and_writes_only_there(tmp_path: Path) -> None:
    work = tmp_path / "src"
    (work / "pay").mkdir(parents=True)
    (work / "pay" / "card.py").write_text(
        "def charge_card(amount):\n    \"\"\"Charge a card; retries when the gateway times out.\"\"\"\n"
        "    return gateway_timeout_retry(amount)\n\n\ndef refund(amount):\n    return -amount\n")
    (work / "README.md").write_text("A payments library.\n")
    _git("init", "-q", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "first", cwd=work)
    commit = _git("rev-parse", "HEAD", cwd=work)
    mirrors = tmp_path / "mirrors"
    _git("clone", "-q", "--bare", str(work), str(mirrors / "acme+pay" / "repo"), cwd=tmp_path)
    shared = tmp_path / "shared"
    (shared / "data" / "swebench").mkdir(parents=True)
    (shared / "data" / "swebench" / "dev_instances.json").write_text(json.dumps([{
        "instance_id": "acme__pay-1", "repo": "acme/pay", "base_commit": commit,
        "problem_statement": "charge_card fails when the gateway times out",
        "expected_spans": {"pay/card.py": ["charge_card"]}}]))
    trees, state = tmp_path / "trees", tmp_path / "state"
    args = ["--mirrors", str(mirrors), "--trees", str(trees), "--state", str(state), "--shared", str(shared),
            "--methods", "bm25", "--json"]
    done = _bench("localization.py", args, _env(tmp_path), tmp_path / "src")
    assert done.returncode == 0, done.stderr
    figures = _last_json(done.stdout)
    assert figures["tasks"] == 1 and figures["bm25_file_hit_8k"] == 1.0 and figures["bm25_span_recall_8k"] == 1.0
    assert (trees / "pay" / "pay" / "card.py").is_file()  # the tree went where --trees said
    assert any(state.iterdir())  # and the index where --state said
    assert not (work / ".contextflow").exists()


def test_index_speed_needs_a_repository_or_a_mirrors_folder(tmp_path: Path) -> None:
    done = _bench("index_speed.py", ["--json"], _env(tmp_path), tmp_path)
    assert done.returncode == 2 and "--repo DIR" in done.stderr and "CONTEXTFLOW_BENCH_MIRRORS" in done.stderr
    assert "error" in _last_json(done.stdout)
    empty = tmp_path / "mirrors"
    empty.mkdir()
    skipped = _bench("index_speed.py", ["--json"], _env(tmp_path, CONTEXTFLOW_BENCH_MIRRORS=str(empty)), tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert str(empty / "pylint-dev+pylint" / "repo") in _last_json(skipped.stdout)["skipped"]


def test_routing_skips_without_the_shared_outcomes_and_refuses_a_missing_eval_file(tmp_path: Path) -> None:
    done = _bench("routing.py", ["--shared", str(tmp_path / "nothing"), "--json"], _env(tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "nothing" / "data" / "routellm") in _last_json(done.stdout)["skipped"]
    bad = _bench("routing.py", ["--gsm8k", str(tmp_path / "absent.csv"), "--json"], _env(tmp_path), tmp_path)
    assert bad.returncode == 2 and "is not a file" in _last_json(bad.stdout)["error"]


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_no_benchmark_names_a_machine_folder(script: str) -> None:
    text = (BENCHMARKS / script).read_text()
    for folder in ("/work/", "/home/", "/root/", "/tmp/", "/usr/", "/srv/"):
        assert folder not in text, f"{script} names {folder}: take it from a flag or an environment variable"
