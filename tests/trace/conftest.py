from __future__ import annotations

from pathlib import Path

import pytest

from synthetic_trace import synthetic_run


@pytest.fixture()
def recorded(tmp_path: Path) -> Path:
    from contextflow.trace import TraceSink

    db = tmp_path / "traces.db"
    sink = TraceSink(db)
    for event in synthetic_run():
        sink(event)
    sink.close()
    return db
