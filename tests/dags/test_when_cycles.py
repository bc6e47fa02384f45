"""A cycle is a cycle whichever field closes it: references in ``when:`` count as edges."""

from __future__ import annotations

from contextflow.dags.validate import validate_text


def test_a_cycle_through_a_when_condition_is_reported() -> None:
    text = """\
name: loop
nodes:
  - id: a
    kind: python
    function: contextflow.apps.release_notes:render_notes
    when: ${b.output} == 1
  - id: b
    kind: python
    function: contextflow.apps.release_notes:render_notes
    args: {history: "${a.output}"}
"""
    problems = validate_text(text, file="loop.yaml").problems
    cycles = [p for p in problems if p.code == "cycle"]
    assert cycles, [p.code for p in problems]
    assert "a" in cycles[0].message and "b" in cycles[0].message
    assert cycles[0].line in (4, 6, 7, 8)


def test_the_same_graph_without_the_condition_has_no_cycle() -> None:
    text = """\
name: line
nodes:
  - id: a
    kind: python
    function: contextflow.apps.release_notes:render_notes
  - id: b
    kind: python
    function: contextflow.apps.release_notes:render_notes
    args: {history: "${a.output}"}
"""
    assert not [p for p in validate_text(text, file="line.yaml").problems if p.code == "cycle"]
