"""The trace viewer in a real browser: totals, every node, escaping, and a refused traversal."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_run_page_shows_every_node_and_the_right_totals(viewer, page, artifacts) -> None:
    base, _ = viewer
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#runs tbody tr").count() == 1
    page.click("#runs a")
    page.wait_for_selector("#dag")
    for node in ("a", "b", "c", "d"):
        assert page.locator(f"#dag [data-node='{node}']").count() == 1
    totals = page.inner_text("#totals")
    assert "$0.007000" in totals and "290" in totals and "230 / 60" in totals
    assert page.locator("#dag path[stroke='#d92d20']").count() == 2  # b -> c -> d is critical
    # a and b ran at once: each node's calls sit under that node in the waterfall, not interleaved
    rows = page.eval_on_selector_all("#waterfall .waterfall-row", "rs => rs.map(r => r.dataset.span)")
    node_of_row = [r.split("/")[1] for r in rows]
    current = None
    for span_id, node in zip(rows, node_of_row):
        if span_id.count("/") == 1:
            current = node
        else:
            assert node == current, rows
    assert [n for r, n in zip(rows, node_of_row) if r.count("/") == 1] == ["a", "b", "c", "d"]
    page.click("#by-latency")
    page.screenshot(path=str(artifacts / "viewer-run.png"), full_page=True)


def test_html_in_a_response_is_shown_as_text(viewer, page, artifacts) -> None:
    base, _ = viewer
    page.goto(base + "/#/run/run-1")
    page.wait_for_selector("#dag")
    page.click("#dag [data-node='c']")
    response = page.locator("#details pre.response").last
    assert response.inner_text() == "<script>alert(1)</script><b>bold</b>"
    assert page.locator("#details b:text('bold')").count() == 0
    scripts = page.evaluate("() => [...document.querySelectorAll('script')].map(s => s.getAttribute('src'))")
    assert scripts == ["/static/live.js", "/static/app.js"]  # only the app's own
    page.screenshot(path=str(artifacts / "viewer-escaping.png"), full_page=True)


def test_compare_page_lists_nodes(viewer, page) -> None:
    base, _ = viewer
    page.goto(base + "/#/compare/run-1/run-1")
    page.wait_for_selector("#compare-table")
    assert page.locator("#compare-table tbody tr").count() == 4


def test_the_api_refuses_path_traversal(viewer) -> None:
    base, _ = viewer
    for path in ("/api/runs/..%2F..%2Fetc%2Fpasswd", "/api/runs/%2E%2E", "/api/runs/run-1%27%20OR%201=1",
                 "/static/..%2F..%2Fstate.py"):
        response = httpx.get(base + path)
        assert response.status_code in (400, 404), path
        assert "root:" not in response.text
    assert httpx.get(base + "/api/runs/run-1").json()["cost_usd"] == pytest.approx(0.007)
    assert httpx.get(base + "/api/runs/run-1/whatif", params={"node": "c", "model": "no-such-model"}).status_code == 400


def test_runs_list_sorts_filters_and_compares_two_picked_runs(viewer, page) -> None:
    from contextflow.trace import TraceSink
    from synthetic_trace import synthetic_run

    base, state = viewer
    sink = TraceSink(state.traces_db)  # a second, later run whose node c used another model
    for event in synthetic_run("run-2", t0=2000.0, model_c="gpt-4o"):
        sink(event)
    sink.close(wait=True)
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='1']")
    order = lambda: page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")  # noqa: E731
    assert order() == ["run-2", "run-1"]  # newest first by default
    page.click("#runs th:text('Run')")
    assert order() == ["run-2", "run-1"]
    page.click("#runs th:text('Run')")
    assert order() == ["run-1", "run-2"]
    page.fill("#filter", "gpt-4o-mini")
    assert order() == ["run-1"]
    page.fill("#filter", "")
    for box in page.locator("#runs tbody input[type=checkbox]").all():
        box.check()
    page.click("#compare")
    page.wait_for_selector("#compare-table")
    row_c = page.locator("#compare-table tbody tr", has_text="gpt-4o-mini")
    assert row_c.count() == 1 and "gpt-4o" in row_c.inner_text()


def test_what_if_reprices_a_node_under_another_model(viewer, page) -> None:
    from contextflow.core.catalog import get

    base, _ = viewer
    page.goto(base + "/#/run/run-1")
    page.wait_for_selector("#whatif-node")
    page.select_option("#whatif-node", "c")
    page.fill("#whatif-model", "gpt-4o")
    page.click("#whatif button")
    page.wait_for_function("() => document.querySelector('#whatif-result').textContent.includes('$')")
    text = page.inner_text("#whatif-result")
    info = get("gpt-4o")  # node c made two calls: 200 input and 50 output tokens in all
    expected = 200 * info.input_cost_per_token + 50 * info.output_cost_per_token
    assert f"{expected:.6f}" in text, text
