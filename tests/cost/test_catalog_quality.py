"""Quality priors (shipped data, user overrides), custom models, and reasoning-effort rungs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contextflow.core import catalog
from contextflow.core.rungs import parse_rung
from contextflow.core.errors import UserError


def test_shipped_priors_match_exact_names_provider_prefixes_and_patterns() -> None:
    shipped = json.loads((Path(catalog.__file__).with_name("quality_priors.json")).read_text())
    assert catalog.quality_of("gpt-4o") == shipped["gpt-4o"]
    assert catalog.quality_of("openai/gpt-4o") == shipped["gpt-4o"]
    assert catalog.quality_of("claude-3-5-sonnet-20241022") == shipped["claude-3-5-sonnet*"]
    assert catalog.quality_of("someone/unknown-model") == catalog.DEFAULT_QUALITY


def test_user_overrides_and_custom_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_quality_overrides", {})
    catalog.set_quality("gpt-4o", 0.5)
    assert catalog.quality_of("gpt-4o") == 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        catalog.set_quality("gpt-4o", 1.5)
    local = catalog.register_model("local/my-model", quality=0.3)
    assert local.cost(1000, 1000) == 0.0 and catalog.quality_of("local/my-model") == 0.3


def test_priors_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "q.json"
    extra.write_text('{"my-org/model": 0.77}')
    monkeypatch.setenv("CONTEXTFLOW_QUALITY_PRIORS", str(extra))
    catalog._shipped_priors.cache_clear()
    try:
        assert catalog.quality_of("my-org/model") == 0.77
        extra.write_text("{not json")
        catalog._shipped_priors.cache_clear()
        with pytest.raises(UserError, match="CONTEXTFLOW_QUALITY_PRIORS"):
            catalog.quality_of("x")
    finally:
        monkeypatch.delenv("CONTEXTFLOW_QUALITY_PRIORS")
        catalog._shipped_priors.cache_clear()


def test_reasoning_effort_is_a_rung() -> None:
    high = parse_rung("o3-mini@high")
    assert (high.model, high.effort, high.params) == ("o3-mini", "high", {"reasoning_effort": "high"})
    assert parse_rung({"model": "o3-mini", "reasoning_effort": "low"}).name == "o3-mini@low"
    assert catalog.quality_of("o3-mini@high") > catalog.quality_of("o3-mini@low")
    with pytest.raises(UserError, match="unknown reasoning effort 'extreme'"):
        parse_rung("o3-mini@extreme")
