"""Event kinds are one schema (issue 31): ``EventKind`` (events.py) lists every kind in
events.jsonl; writers name a member, never a string, and the readers (the timeline behind
report.html, bench/profile_smoke.py) compare with members, so a renamed or new kind cannot
drift between them. Read from the source."""

from __future__ import annotations

import ast
from pathlib import Path

from driver.events import EventKind, event_line

REPO = Path(__file__).resolve().parent.parent
READERS = [REPO / "driver" / "reports" / "timeline.py", REPO / "bench" / "profile_smoke.py"]


def literal_kinds(source: str) -> list[int]:
    """Lines where an event is written with a string kind, or a ``kind`` is compared with
    a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "event"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append(node.lineno)
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Name)
            and node.left.id == "kind"
            and any(isinstance(c, ast.Constant) for c in node.comparators)
        ):
            found.append(node.lineno)
    return found


def test_writers_and_readers_name_members() -> None:
    files = [*(REPO / "driver").rglob("*.py"), *READERS]
    found = [f"{p.relative_to(REPO)}:{n}" for p in files for n in literal_kinds(p.read_text())]
    assert found == []
    assert literal_kinds('logger.event("spawn", node="a")\nif kind == "ready": pass\n') == [1, 2]


def test_every_kind_is_written_somewhere() -> None:
    source = "\n".join(p.read_text() for p in (REPO / "driver").rglob("*.py"))
    # Console and stderr lines are written by Logger.node_line from its ``source``.
    unwritten = [
        k
        for k in EventKind
        if f"EventKind.{k.name}" not in source and k not in (EventKind.CONSOLE, EventKind.STDERR)
    ]
    assert unwritten == []


def test_a_kind_is_written_as_its_value() -> None:
    assert event_line(EventKind.SUBTEST_END, 1.0, {}) == '{"t": 1.0, "kind": "subtest-end"}'
