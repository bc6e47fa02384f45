"""The per-user model cache: one verified copy, installed atomically, safe when processes race."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from contextflow.providers import model_cache


def _writer(payload: bytes):
    def write(staging: Path) -> None:
        (staging / "weights.bin").write_bytes(payload)
        (staging / "config.json").write_text('{"layers": 2}', encoding="utf-8")
    return write


def test_the_cache_is_per_user_and_can_be_moved(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(model_cache.MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache.user_models_dir() == tmp_path / "xdg" / "contextflow" / "models"
    monkeypatch.setenv(model_cache.MODELS_DIR_ENV, str(tmp_path / "mine"))
    assert model_cache.user_models_dir() == tmp_path / "mine"


def test_install_writes_once_and_verifies(tmp_path) -> None:
    folder = tmp_path / "models" / "m"
    assert model_cache.install(folder, _writer(b"x" * 1000)) is True
    assert model_cache.verified(folder)
    assert model_cache.install(folder, _writer(b"never written")) is False
    assert (folder / "weights.bin").read_bytes() == b"x" * 1000
    assert [p.name for p in folder.parent.iterdir()] == ["m"], "no staging folder is left behind"


def test_a_damaged_copy_is_detected_and_replaced(tmp_path) -> None:
    folder = tmp_path / "m"
    model_cache.install(folder, _writer(b"good" * 100))
    (folder / "weights.bin").write_bytes(b"bad!" * 100)  # same size, other bytes
    assert not model_cache.verified(folder)
    assert model_cache.install(folder, _writer(b"good" * 100)) is True
    assert model_cache.verified(folder) and (folder / "weights.bin").read_bytes() == b"good" * 100


def test_a_folder_without_a_manifest_is_not_trusted(tmp_path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not model_cache.verified(folder)


def test_two_processes_converting_at_once_both_succeed_with_one_verified_copy(tmp_path) -> None:
    folder = tmp_path / "cache" / "m"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from contextflow.providers import model_cache

        def write(staging):
            for i in range(20):  # slow enough that both processes are converting at once
                (staging / f"part{{i}}.bin").write_bytes(bytes([i]) * 200_000)
                time.sleep(0.02)
        installed = model_cache.install(Path({str(folder)!r}), write)
        print("installed" if installed else "reused")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert sorted(o[0].strip() for o in outs) in (["installed", "reused"], ["installed", "installed"])
    assert model_cache.verified(folder)
    assert len(list(folder.glob("part*.bin"))) == 20
    assert [p.name for p in folder.parent.iterdir()] == ["m"]
