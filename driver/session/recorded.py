"""The record of one run: its event log (``events.jsonl``) and, when the run ends however
it ends, ``report.html`` beside it in the output directory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from driver.events import recording
from driver.reports.report import SubtestResult
from driver.reports.report_html import write_report
from driver.run.driver import Driver
from driver.session.invocation import Invocation


def what_ran(inv: Invocation) -> str:
    """The scripts (or the seed verb) of this run, for the report's title."""
    scripts = inv.options.scripts
    return ", ".join(Path(s).name for s in scripts) or inv.options.command


@contextlib.contextmanager
def recorded(inv: Invocation, driver: Driver, results: list[SubtestResult]) -> Iterator[None]:
    """Record the block's events; write the report afterwards (also after a failure or an
    interruption; a report that cannot be written is a warning)."""
    out = driver.out_dir
    events = out / "events.jsonl"
    try:
        with recording(inv.logger.event_logs, events):
            yield
    finally:
        links: dict[str, Path] = {"event log (events.jsonl)": events}
        junit = inv.options.junit_xml
        if junit is not None:
            links["JUnit"] = Path(junit).resolve()
        for name, node in driver.nodes.items():
            links[f"{name} console (vm.log)"] = node.state_dir / "vm.log"
        for export in driver.artifacts.exports:
            for kept in export.files:
                links[f"{export.node} {kept.name}"] = kept
        try:
            report = write_report(
                out / "report.html",
                events,
                results,
                list(driver.nodes),
                f"photon-driver {inv.profile}: {what_ran(inv)}",
                links,
            )
            inv.logger.log(f"report: {report}")
        except OSError as exc:
            inv.logger.warning(f"no report.html: {exc}")
