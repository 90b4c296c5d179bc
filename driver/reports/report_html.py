"""``report.html``: one static file a person reads after a run (no network, no script):
the counts, a timeline with one row per node (boots, commands, fault windows, snapshots,
restores, health findings) under the subtests, the failing step with its command, status,
output and every node's console around that moment, each subtest's log (driver lines and
guest lines told apart) with every attempt of a rerun, and links to the vm.logs and the
JUnit file. Rendered from the run's event log (events.jsonl) and its subtest results.
Every text on the page is HTML-escaped after its control characters, lone surrogates and
line separators are made visible (driver/text.py), so any bytes a command, a console or a
name held show as text, and the page has no script for a ``</script>`` to end."""

from __future__ import annotations

import html
import os
import time
import urllib.parse
from pathlib import Path

from driver.atomic import write_atomic
from driver.events import read_events
from driver.reports.report import SubtestResult, SubtestStatus, count_statuses
from driver.reports.timeline import Timeline, build
from driver.text import visible_text

CONSOLE_WINDOW = (10.0, 2.0)  # seconds of console before and after the failing moment

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.counts span{display:inline-block;margin-right:1em;padding:.1em .5em;border-radius:3px}
.passed{background:#d8f0d8}.failed,.error{background:#f6d0d0}.flaky{background:#f8ecc0}
.skipped{background:#e4e4e4}.quarantined{background:#e8dcf4}
.timeline{position:relative;border:1px solid #ccc;padding:.3em 0}
.row{display:flex;align-items:center;height:26px;border-bottom:1px solid #eee}
.row .label{width:8em;flex:none;padding-left:.4em;font-family:monospace}
.lane{position:relative;flex:1;height:22px}
.lane div{position:absolute;top:3px;height:16px;overflow:hidden;font-size:10px;white-space:nowrap}
.boot{background:#9bc4f0}.command{background:#7fc97f;opacity:.8}.command.bad{background:#e07070}
.fault{background:repeating-linear-gradient(45deg,#f0c0c0 0 4px,#fff0 4px 8px);top:0!important;
height:22px!important;opacity:.7}
.subtest{background:#c8dcc8;border-right:1px solid #fff}.subtest.failed,.subtest.error{background:#f0a0a0}
.subtest.flaky{background:#f0d890}.subtest.quarantined{background:#d8c4ee}
.mark{width:3px;background:#555}.mark.health{background:#d00;width:5px}.mark.restore{background:#06c}
.failing{outline:3px solid #c00;z-index:2}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px;max-height:30em}
.log .driver{color:#123}.log .guest{color:#777;padding-left:2em}
details{margin:.3em 0}summary{cursor:pointer}
"""


def _e(text: object) -> str:
    return html.escape(visible_text(str(text)), quote=True)


def _href(target: Path, base: Path) -> str:
    """A link from ``base`` to ``target``: relative, each byte of the path percent-encoded."""
    return html.escape(urllib.parse.quote(os.fsencode(os.path.relpath(target, base))))


def _box(
    timeline: Timeline,
    start: float,
    end: float,
    classes: str,
    title: str,
    text: str = "",
    extra: str = "",
) -> str:
    left, width = timeline.position(start, end)
    return (
        f'<div class="{classes}" style="left:{left:.3f}%;width:{width:.3f}%" '
        f'title="{_e(title)}"{extra}>{_e(text)}</div>'
    )


def timeline_html(timeline: Timeline) -> str:
    """The subtest lane and one row per node."""
    lanes = []
    bands = "".join(
        _box(
            timeline,
            s.start,
            s.end,
            f"subtest {s.status}" + (" failing" if s.failing else ""),
            f"{s.label}: {s.status} ({s.end - s.start:.1f}s)",
            s.label,
            f' data-subtest="{_e(s.label)}"',
        )
        for s in timeline.subtests
    )
    lanes.append(
        f'<div class="row subtests"><div class="label">subtests</div>'
        f'<div class="lane">{bands}</div></div>'
    )
    for row in timeline.rows:
        boxes = []
        for span in sorted(row.spans, key=lambda s: (s.kind != "fault", s.start)):
            classes = span.kind
            if span.kind == "command" and span.status != "0":
                classes += " bad"
            if span.failing:
                classes += " failing"
            title = (
                f"{span.label} [{span.status}] {span.end - span.start:.2f}s"
                if span.status
                else span.label
            )
            extra = f' data-node="{_e(row.name)}"' if span.failing else ""
            boxes.append(_box(timeline, span.start, span.end, classes, title, extra=extra))
        for mark in row.marks:
            left, _ = timeline.position(mark.at, mark.at)
            boxes.append(
                f'<div class="mark {mark.kind}" style="left:{left:.3f}%" '
                f'title="{_e(mark.label)}"></div>'
            )
        lanes.append(
            f'<div class="row node-row" data-node="{_e(row.name)}">'
            f'<div class="label">{_e(row.name)}</div><div class="lane">{"".join(boxes)}'
            "</div></div>"
        )
    seconds = timeline.end - timeline.start
    return (
        f'<section id="timeline"><h2>Timeline ({seconds:.1f} s)</h2>'
        f'<div class="timeline">{"".join(lanes)}</div>'
        "<p>blue: boot, green/red: commands (exit 0 / not 0), hatched: fault windows, "
        "ticks: snapshots, restores (blue), health findings (red)</p></section>"
    )


def failure_html(timeline: Timeline) -> str:
    """The failing step, with every node's console around the moment it failed."""
    failure = timeline.failure
    if failure is None:
        return ""
    before, after = CONSOLE_WINDOW
    consoles = []
    for row in timeline.rows:
        lines = [
            f"{t - timeline.start:8.2f}s {'stderr ' if source == 'stderr' else ''}{text}"
            for t, source, text in row.console_lines
            if failure.at - before <= t <= failure.at + after
        ]
        if lines:
            consoles.append(
                f'<h3>{_e(row.name)}</h3><pre class="console">{_e(chr(10).join(lines))}</pre>'
            )
    command = (
        f"<p>command <code>{_e(failure.command)}</code> exited {_e(failure.status)}</p>"
        f'<pre class="output">{_e(failure.output)}</pre>'
        if failure.command
        else ""
    )
    return (
        f'<section id="failure" class="failing" data-node="{_e(failure.node)}" '
        f'data-subtest="{_e(failure.subtest)}"><h2>Failing step: subtest '
        f"{_e(failure.subtest)}{' on ' + _e(failure.node) if failure.node else ''}</h2>"
        f'{command}<pre class="message">{_e(failure.message)}</pre>'
        f"<h2>Console of every node, {before:g} s before to {after:g} s after</h2>"
        f"{''.join(consoles) or '<p>(no console lines in that window)</p>'}</section>"
    )


def _log(lines: list[str]) -> str:
    def line(text: str) -> str:
        guest = " # " in text[:24] and not text.startswith(" ")
        return f'<div class="{"guest" if guest else "driver"}">{_e(text)}</div>'

    return f'<div class="log"><pre>{"".join(line(t) for t in lines)}</pre></div>'


def subtests_html(results: list[SubtestResult]) -> str:
    """Each subtest's log (a skipped one's reason after its name, a quarantine's note and
    a quarantined one's failure) and, for a rerun one, every attempt."""
    parts = []
    for result in results:
        attempts = "".join(
            f"<details><summary>attempt {n}: {_e(summary)}</summary><pre>{_e(message)}</pre>"
            f"{_log(output)}</details>"
            for n, (summary, message, output) in enumerate(result.attempts, start=1)
        )
        reason = (
            f' <span class="reason">{_e(result.message)}</span>'
            if result.status is SubtestStatus.SKIPPED and result.message
            else ""
        )
        if result.note:  # --quarantine: the entry that excused the failure, or expired
            reason += f' <span class="quarantine">{_e(result.note)}</span>'
        excused = (
            f"<pre>{_e(result.message)}</pre>" if result.status is SubtestStatus.QUARANTINED else ""
        )
        parts.append(
            f'<details class="subtest-log" data-status="{_e(result.status)}"'
            f"{' open' if result.status.fails_run else ''}><summary>"
            f'<span class="{_e(result.status)}">{_e(result.status)}</span> {_e(result.name)} '
            f"({result.seconds:.1f} s){reason}</summary>{excused}{attempts}{_log(result.output)}"
            "</details>"
        )
    return f'<section id="subtests"><h2>Subtests</h2>{"".join(parts)}</section>'


def write_report(
    path: Path,
    events_path: Path,
    results: list[SubtestResult],
    nodes: list[str],
    title: str,
    links: dict[str, Path],
) -> Path:
    """Render ``report.html`` at ``path``; ``links`` are shown by name (relative paths when
    they lie below the report's directory)."""
    timeline = build(read_events(events_path), results, nodes)
    counts = count_statuses(results)
    count_html = "".join(
        f'<span class="{k}" id="count-{k}">{v} {k}</span>' for k, v in counts.items()
    )
    link_html = "".join(
        f'<li><a href="{_href(target, path.parent)}">{_e(name)}</a></li>'
        for name, target in links.items()
    )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f"<p>{_e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timeline.start)))}</p>"
        f'<div class="counts">{count_html}</div>{failure_html(timeline)}{timeline_html(timeline)}'
        f'{subtests_html(results)}<section id="links"><h2>Files</h2><ul>{link_html}</ul>'
        "</section></body></html>\n"
    )
    write_atomic(path, page.encode("utf-8"))
    return path
