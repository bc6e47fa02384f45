"""Walking (.gitignore, secrets, binaries, sizes), tree-sitter definitions and chunks, git history."""

from __future__ import annotations

import pytest
from repo_builders import git, write

from contextflow.retrievers.ast_index import analyze
from contextflow.retrievers.chunks import MAX_CHUNK_LINES, chunk_file
from contextflow.retrievers.git import GitHistory, co_change_pairs
from contextflow.retrievers.walk import walk_repo

IGNORED = {".gitignore": "build/\n*.log\n!keep.log\nsecret_dir/\n", "build/out.py": "x = 1\n", "debug.log": "log\n",
           "keep.log": "kept\n", "secret_dir/a.py": "y = 2\n", "sub/.gitignore": "local.txt\n",
           "sub/local.txt": "no\n", "sub/ok.txt": "yes\n", ".env": "A=1\n", "keys/server.pem": "k\n",
           "img.bin": "", "big.txt": "z" * 5000}


@pytest.mark.parametrize("with_git", [True, False])
def test_walk_respects_gitignore_secrets_binaries_and_size(make_repo, with_git):
    root = make_repo(git_history=with_git, extra=IGNORED)
    (root / "img.bin").write_bytes(b"\x89PNG\x00\x00binary")
    result = walk_repo(root, max_file_bytes=4000)
    paths = {f.path for f in result.files}
    assert result.git is with_git
    assert {"app.py", "net.py", "keep.log", "sub/ok.txt", "web/util.js", ".gitignore"} <= paths
    for hidden in ("build/out.py", "debug.log", "secret_dir/a.py", "sub/local.txt", ".env", "keys/server.pem", "big.txt"):
        assert hidden not in paths, hidden
    assert ".env" in result.skipped["secret"] and "big.txt" in result.skipped["too large"]


def test_untracked_but_not_ignored_files_are_walked(make_repo):
    root = make_repo()
    write(root, {"new_module.py": "def fresh():\n    return 1\n"})
    assert "new_module.py" in {f.path for f in walk_repo(root).files}


LANG_SAMPLES = {
    "a.py": ("class Box:\n    '''A box.'''\n    def open(self, force: bool) -> None:\n        '''Open it.'''\n        pass\n",
             ("Box", "class"), ("open", "method", "def open(self, force: bool) -> None", "Open it.")),
    "a.js": ("// Adds.\nfunction add(a, b) { return a + b; }\nclass K { run() { return add(1, 2); } }\n",
             ("K", "class"), ("add", "function", "function add(a, b)", "Adds.")),
    "a.ts": ("interface Shape { area(): number }\n/** Area. */\nfunction area(s: Shape): number { return s.area(); }\n",
             ("Shape", "interface"), ("area", "function", "function area(s: Shape): number", "Area.")),
    "a.go": ("package p\n// Sum adds.\nfunc Sum(a int, b int) int { return a + b }\n",
             ("Sum", "function"), ("Sum", "function", "func Sum(a int, b int) int", "Sum adds.")),
    "a.rs": ("/// Doubles.\nfn double(x: i32) -> i32 { x * 2 }\nstruct P { x: i32 }\n",
             ("P", "class"), ("double", "function", "fn double(x: i32) -> i32", "Doubles.")),
    "A.java": ("class A {\n  /** Runs. */\n  int run(int n) { return n; }\n}\n",
               ("A", "class"), ("run", "method", "int run(int n)", "Runs.")),
}


@pytest.mark.parametrize("path", sorted(LANG_SAMPLES))
def test_definitions_with_signatures_and_docs_in_six_languages(path):
    text, container, (name, kind, signature, doc) = LANG_SAMPLES[path]
    analysis = analyze(path, text)
    defs = {(d.name, d.kind): d for d in analysis.definitions}
    assert container in defs
    d = defs[(name, kind)]
    assert d.signature == signature and d.doc == doc


def test_references_are_found():
    analysis = analyze("a.py", "def f():\n    return helper(1) + obj.method()\n")
    assert analysis.references["helper"] == 1 and analysis.references["method"] == 1


def test_method_chunks_keep_their_class_header_and_cover_every_line():
    methods = "\n".join(f"    def m{i}(self):\n        '''Method {i}.'''\n" + "        x = 1\n" * 8 for i in range(12))
    text = f"import os\n\n\nclass Big(Base):\n    '''Many methods.'''\n\n{methods}\n\ndef tail():\n    return 2\n"
    chunks = chunk_file("big.py", text, analyze("big.py", text))
    covered = [n for c in chunks for n in range(c.start_line, c.end_line + 1)]
    assert len(covered) == len(set(covered))  # no overlap
    lines = text.split("\n")
    assert all(n in covered for n, line in enumerate(lines, 1) if line.strip())
    assert all(c.end_line - c.start_line < MAX_CHUNK_LINES for c in chunks)
    method_chunks = [c for c in chunks if c.kind == "method"]
    assert method_chunks and all(c.header == "class Big(Base)" for c in method_chunks)
    assert all(c.text.lstrip().startswith("def m") for c in method_chunks)  # cut at definitions


def test_unknown_language_falls_back_to_line_windows():
    text = "\n".join(f"line {i}" for i in range(100))
    chunks = chunk_file("notes.txt", text, analyze("notes.txt", text))
    assert analyze("notes.txt", text) is None
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 100 and all(c.kind == "text" for c in chunks)


def test_git_history_diffs_commits_cochange_and_blame(make_repo):
    root = make_repo()
    history = GitHistory(root)
    commits = history.recent_commits(max_commits=10)
    assert [c.subject for c in commits] == ["raise retry count for timeouts; dashboard formatting", "initial payments service"]
    assert {f.path for f in commits[0].files} == {"net.py", "web/util.js"}
    assert "net.py (+1/-1)" in commits[0].diffstat()
    assert len(history.recent_commits(max_commits=1)) == 1
    assert [c.subject for c in history.commits_touching(["app.py"])] == ["initial payments service"]
    assert history.co_change(min_count=1)[("net.py", "web/util.js")] == 1
    assert co_change_pairs(commits, min_count=2) == {}
    blame = history.blame("net.py", 4, 4)
    assert blame[0].summary.startswith("raise retry count") and "retries: int = 5" in blame[0].text
    (root / "app.py").write_text((root / "app.py").read_text() + "\n# unstaged note\n")
    write(root, {"net.py": (root / "net.py").read_text() + "\n# index note\n"})
    git(root, "add", "net.py")
    assert "unstaged note" in history.working_diff() and "index note" not in history.working_diff()
    assert "index note" in history.staged_diff()
    assert history.changed_files() == {"app.py": "modified", "net.py": "staged"}


def test_git_runner_seam_is_used(make_repo):
    root = make_repo()
    calls = []

    def runner(args, cwd):
        from contextflow.retrievers.walk import run_git

        calls.append(args[0])
        return run_git(args, cwd)

    GitHistory(root, runner).recent_commits(since="2000-01-01", max_commits=5)
    assert "log" in calls and "rev-parse" in calls
