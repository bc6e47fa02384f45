"""The viewer's single page, served live or exported as one self-contained file.

Both forms share the same HTML, CSS and JavaScript shipped in ``static/``; the export inlines
them with the run's data as a JSON script element, so it opens from disk with no server or network.
Only the live page loads ``live.js`` (it follows a running run through the server's feed).
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any


def _asset(name: str) -> str:
    return resources.files("contextflow.ui").joinpath("static", name).read_text(encoding="utf-8")


def live_page(csrf: str = "") -> str:
    """The page as the viewer serves it; ``csrf`` is the value its decisions echo (ui/approvals.py)."""
    meta = f'<meta name="contextflow-csrf" content="{html.escape(csrf, quote=True)}">' if csrf else ""
    return (
        _asset("index.html")
        .replace("<!--CF_HEAD-->", meta)
        .replace("<!--CF_STYLE-->", '<link rel="stylesheet" href="/static/style.css">')
        .replace("<!--CF_DATA-->", "")
        .replace("<!--CF_SCRIPT-->", '<script src="/static/live.js"></script><script src="/static/app.js"></script>')
    )


def _script_safe_json(data: Any) -> str:
    # Inside <script> only "</" can end the element early; escaping "<" closes that door for any data.
    return json.dumps(data, ensure_ascii=False, default=str).replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def exported_page(run: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    data = _script_safe_json({"run": run, "runs": runs})
    return (
        _asset("index.html")
        .replace("<!--CF_HEAD-->", "")
        .replace("<!--CF_STYLE-->", f"<style>{_asset('style.css')}</style>")
        .replace("<!--CF_DATA-->", f'<script id="cf-data" type="application/json">{data}</script>')
        .replace("<!--CF_SCRIPT-->", f"<script>{_asset('app.js')}</script>")
    )
