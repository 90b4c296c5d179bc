"""``index.html``: one static page listing every test of a suite (or of merged suites):
its status, duration and exit code, and links to its run's own ``report.html``, JUnit file
and log. Every text is HTML-escaped after its unsafe characters are made visible
(driver/text.py); every link is relative and percent-encoded, so the page works from a
downloaded CI artifact."""

from __future__ import annotations

import html
import os
import time
import urllib.parse
from pathlib import Path

from driver.atomic import write_atomic
from driver.suite.records import RunRecord, Status, counts
from driver.text import visible_text

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}
td.seconds,td.code{text-align:right;font-variant-numeric:tabular-nums}
.counts span,.status{display:inline-block;margin-right:1em;padding:.1em .5em;border-radius:3px}
.passed{background:#d8f0d8}.failed,.error{background:#f6d0d0}.flaky{background:#f8ecc0}
.not-run{background:#e4e4e4}
"""

# Where a run keeps each file, by link name: a suite's run directory, or a Nix check's
# ``result`` (report in ``out/``).
FILES = {
    "report": ("report.html", "out/report.html"),
    "JUnit": ("junit.xml",),
    "log": ("run.log",),
}


def escape(text: object) -> str:
    """HTML text with unsafe characters made visible."""
    return html.escape(visible_text(str(text)), quote=True)


def href(target: Path, base: Path) -> str:
    """A relative link from folder ``base`` to ``target``, each byte percent-encoded."""
    return html.escape(urllib.parse.quote(os.fsencode(os.path.relpath(target, base))))


def links(run_dir: Path | None, base: Path) -> str:
    """Links to the run's files that exist."""
    if run_dir is None:
        return ""
    found = []
    for name, candidates in FILES.items():
        for candidate in candidates:
            if (run_dir / candidate).is_file():
                found.append(f'<a href="{href(run_dir / candidate, base)}">{name}</a>')
                break
    return " ".join(found)


def row(record: RunRecord, run_dir: Path | None, base: Path) -> str:
    """One test's table row."""
    css = record.status.value.replace(" ", "-")
    code = "" if record.exit_code is None else str(record.exit_code)
    return (
        f'<tr class="test" data-status="{css}"><td><span class="status {css}">'
        f"{escape(record.status.value)}</span></td><td>{escape(record.id)}</td>"
        f'<td class="seconds">{record.seconds:.1f} s</td><td class="code">{code}</td>'
        f"<td>{links(run_dir, base)}</td></tr>"
    )


def write_index(path: Path, tests: list[tuple[RunRecord, Path | None]], title: str) -> Path:
    """Render the index of ``tests`` (each record with its run directory) at ``path``."""
    base = path.parent
    total = counts([r for r, _ in tests])
    count_html = "".join(
        f'<span class="{s.value.replace(" ", "-")}" id="count-{s.value.replace(" ", "-")}">'
        f"{n} {s.value}</span>"
        for s, n in total.items()
        if n or s in (Status.PASSED, Status.FAILED)
    )
    rows = "".join(row(record, run_dir, base) for record, run_dir in tests)
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>{escape(time.strftime('%Y-%m-%d %H:%M:%S'))}, {len(tests)} tests, "
        f"{sum(r.seconds for r, _ in tests):.1f} s in all</p>"
        f'<div class="counts">{count_html}</div>'
        "<table><thead><tr><th>status</th><th>test</th><th>duration</th><th>exit</th>"
        f"<th>files</th></tr></thead><tbody>{rows}</tbody></table></body></html>\n"
    )
    write_atomic(path, page.encode("utf-8"))
    return path
