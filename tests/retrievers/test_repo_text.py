"""The one boundary for repository text: files and git output leave it redacted, whoever asks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from repo_builders import git, write
from secret_corpus import HOSTILE_CASES, PLANTED

from contextflow.core.state import StateDir
from contextflow.retrievers.git import GitHistory
from contextflow.retrievers.index import RepoIndex
from contextflow.retrievers.repo_text import (
    SECRET_FILE_MARKER,
    _run_git_process,
    read_text,
    redacting,
    run_git,
    withhold_secret_diffs,
)
from contextflow.retrievers.secrets import redact_text
from contextflow.retrievers.walk import walk_repo

NETRC_PASSWORD = "Zq8" + "nY2vLw4xKp"  # low entropy would not matter: the file is withheld whole


@pytest.fixture()
def leaky_repo(tmp_path: Path) -> Path:
    """A repository with a committed .netrc, a secret in a source file, a token in a commit
    message, and uncommitted changes that add more secrets."""
    root = tmp_path / "leaky"
    write(root, {"app.py": "def main():\n    return 1\n",
                 ".netrc": f"machine api.example.invalid login deploy password {NETRC_PASSWORD}\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"initial; deploy with {PLANTED['github_pat']}")
    write(root, {"app.py": f"STRIPE = '{PLANTED['stripe']}'\n\ndef main():\n    return 1\n",
                 ".netrc": f"machine api.example.invalid login deploy password {NETRC_PASSWORD}x\n"})
    git(root, "add", "app.py")
    write(root, {"app.py": f"STRIPE = '{PLANTED['stripe']}'\nSLACK = '{PLANTED['slack_bot']}'\n\ndef main():\n    return 1\n"})
    return root


def _planted_values() -> list[str]:
    return [NETRC_PASSWORD, PLANTED["github_pat"], PLANTED["stripe"], PLANTED["slack_bot"]]


def _assert_clean(text: str) -> None:
    leaked = [v for v in _planted_values() if v in text]
    assert leaked == [], f"leaked: {leaked}"


def test_low_level_history_calls_return_redacted_text(leaky_repo: Path):
    history = GitHistory(leaky_repo)
    staged, working = history.staged_diff(), history.working_diff()
    log = history.log()
    for text in (staged, working, *(c.message for c in log)):
        _assert_clean(text)
    assert "[REDACTED:stripe-key]" in staged and "[REDACTED:slack-token]" in working
    assert "[REDACTED:github-token]" in log[0].message
    assert SECRET_FILE_MARKER in working  # the .netrc change is shown as changed, not its lines
    assert "+machine" not in working and "diff --git a/.netrc b/.netrc" in working


def test_blame_of_a_secret_file_shows_nothing(leaky_repo: Path):
    history = GitHistory(leaky_repo)
    assert history.blame(".netrc", 1, 1) == []
    assert run_git(["show", "HEAD:.netrc"], leaky_repo) == SECRET_FILE_MARKER + "\n"
    assert NETRC_PASSWORD in _run_git_process(["show", "HEAD:.netrc"], leaky_repo)  # it is really there


def test_log_with_patches_withholds_the_secret_file_but_keeps_later_commits(leaky_repo: Path):
    git(leaky_repo, "commit", "-q", "-am", "second")
    out = run_git(["log", "-p", "--no-color"], leaky_repo)
    _assert_clean(out)
    assert out.count("commit ") >= 2 and "initial; deploy with [REDACTED:github-token]" in out
    assert out.count(SECRET_FILE_MARKER) == 2  # one .netrc section per commit
    blame = GitHistory(leaky_repo).blame("app.py", 1, 2)
    assert blame[0].text == "STRIPE = '[REDACTED:stripe-key]'" and blame[0].summary == "second"


def test_an_injected_runner_cannot_switch_redaction_off(leaky_repo: Path, tmp_path: Path):
    calls: list[list[str]] = []

    def raw(args: list[str], cwd: Path) -> str:
        calls.append(args)
        return _run_git_process(args, cwd)

    history = GitHistory(leaky_repo, runner=raw)
    _assert_clean(history.working_diff() + history.staged_diff() + "".join(c.message for c in history.log()))
    assert calls  # the injected runner did run
    index = RepoIndex(leaky_repo, StateDir(tmp_path / "state"), runner=raw)
    assert redacting(index.runner) is index.runner
    walked = walk_repo(leaky_repo, runner=raw)
    assert ".netrc" in walked.skipped["secret"]


def test_read_text_refuses_secret_files_and_redacts_the_rest(leaky_repo: Path):
    assert read_text(leaky_repo, ".netrc") is None
    text = read_text(leaky_repo, "app.py")
    assert text is not None and "[REDACTED:stripe-key]" in text
    _assert_clean(text)


def test_diff_sections_of_secret_files_are_withheld_whatever_the_prefix():
    diff = (
        "diff --git a/config/.env b/config/.env\nindex 1..2 100644\n--- a/config/.env\n+++ b/config/.env\n"
        "@@ -1 +1 @@\n-OLD=plain_value_one\n+NEW=plain_value_two\n"
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
        "diff --git deploy/id_rsa deploy/id_rsa\nnew file mode 100600\n--- /dev/null\n+++ deploy/id_rsa\n"
        "@@ -0,0 +1 @@\n+plain_key_material\n"
    )
    out = withhold_secret_diffs(diff)
    assert "plain_value" not in out and "plain_key_material" not in out
    assert "+x = 2" in out and out.count(SECRET_FILE_MARKER) == 2


def test_redact_text_keeps_field_separators():
    text = f"a\x1f{HOSTILE_CASES['pat-in-commit-message'].text}\x1eb\x00c"
    out = redact_text(text)
    assert out.count("\x1f") == 1 and out.count("\x1e") == 1 and out.count("\x00") == 1
    assert HOSTILE_CASES["pat-in-commit-message"].secret not in out


def test_a_failing_git_command_does_not_quote_a_secret(tmp_path: Path):
    token = PLANTED["github_pat"]
    with pytest.raises(RuntimeError) as failure:
        run_git(["rev-parse", "--verify", token], tmp_path)
    assert token not in str(failure.value)


def test_the_runner_works_without_a_repository(tmp_path: Path):
    with pytest.raises(RuntimeError):
        run_git(["rev-parse", "--show-toplevel"], tmp_path)
    assert subprocess.run(["git", "--version"], capture_output=True, check=False).returncode == 0
