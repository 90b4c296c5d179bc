"""``run --rerun-failed N``: before each subtest the running nodes are saved together (an
internal snapshot per node, ``before-<subtest>``); when the subtest fails, the cluster is
put back to that snapshot (a node the subtest crashed starts again from it) and the subtest's body, found in the script's source, is run
again, up to N times. Passing on a rerun makes the subtest *flaky*; failing every time,
*failed*. Python state the body changed before it failed stays as it was (only the nodes
go back)."""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from driver.errors import DriverError
from driver.log import Logger
from driver.machine.node import Node
from driver.run import snapshots
from driver.scriptrun.selection import guard_subtests


@dataclass
class Attempt:
    """One failed attempt of a subtest: its failure text and what it logged."""

    summary: str
    message: str
    output: list[str]


def find_body(source: str, filename: str, line: int) -> types.CodeType | None:
    """The compiled body of the ``with subtest(...)`` statement that starts at ``line`` of
    ``source`` (None when there is none there: a subtest entered another way), its nested
    subtests guarded as the script's are (``--subtest``)."""
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and node.lineno == line:
            module = ast.Module(body=node.body, type_ignores=[])
            return compile(guard_subtests(module), filename, "exec")
    return None


def script_frame(filename: str) -> types.FrameType | None:
    """The innermost frame running the script ``filename`` (the caller of ``subtest``)."""
    import inspect

    frame = inspect.currentframe()
    while frame is not None and frame.f_code.co_filename != filename:
        frame = frame.f_back
    return frame


class Reruns:
    """Snapshots before subtests and the reruns of failed ones, for one run."""

    def __init__(self, nodes: Callable[[], list[Node]], logger: Logger, times: int) -> None:
        self.nodes = nodes
        self.logger = logger
        self.times = times

    def save_before(self, subtest: str, pausing_fault: bool) -> bool:
        """Save every running node before ``subtest``; False (with a warning) when that
        cannot be done, and the rerun then starts from where the failure left the nodes."""
        running = [n for n in self.nodes() if n.is_running()]
        if not running or pausing_fault:
            return False
        try:
            snapshots.snapshot(running, snapshots.before_subtest(subtest), self.logger)
        except (DriverError, OSError) as exc:
            self.logger.warning(f"no snapshot before subtest '{subtest}': {exc}")
            return False
        return True

    def restore_before(self, subtest: str) -> None:
        """Put the nodes back to the snapshot taken before ``subtest``: every running one,
        and one the subtest crashed or stopped is started again from it."""
        snapshots.restore(self.nodes(), snapshots.before_subtest(subtest), self.logger)

    def rerun(
        self,
        subtest: str,
        body: types.CodeType,
        frame: types.FrameType,
        saved: bool,
        after_body: Callable[[], None],
        describe: Callable[[BaseException], str],
    ) -> tuple[bool, list[Attempt]]:
        """Run the failed subtest's ``body`` again (in its script's namespace, after
        restoring the snapshot when one was ``saved``) up to ``times`` times; then
        ``after_body`` (the health check). Returns whether an attempt passed, and every
        failed rerun."""
        failures: list[Attempt] = []
        for number in range(1, self.times + 1):
            with (
                self.logger.capture() as lines,
                self.logger.nested(f"rerun {number}/{self.times} of subtest '{subtest}'"),
            ):
                try:
                    if saved:
                        self.restore_before(subtest)
                    else:
                        self.logger.warning("no snapshot: the nodes stay as the failure left them")
                    exec(body, frame.f_globals, frame.f_locals)
                    after_body()
                    return True, failures
                except Exception as exc:
                    summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    self.logger.error(f"rerun {number} of '{subtest}' failed: {summary}")
                    failures.append(Attempt(summary, describe(exc), lines))
        return False, failures


def source_of(path: Path, sources: list[tuple[Path, str]]) -> str | None:
    """The source text of script ``path`` among the run's scripts."""
    return next((text for p, text in sources if str(p) == str(path)), None)
