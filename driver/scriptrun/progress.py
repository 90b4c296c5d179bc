"""Live progress of a run: what is in flight, where in the script, for how long.

A *step* is a timed block of the run log (``Logger.nested``: every DSL call on a node,
a boot, a subtest), as ``driver/activity.py`` tracks them. ``InFlightView`` describes the
steps in flight: node, message (the command), elapsed time and the call's deadline when
the script's source shows it, the script's ``file:line`` (the frame of the thread running
the step, or of the script's thread, whose file is a script of the run) and the node's
last console line. ``ProgressMonitor`` prints a line for a step on a node every
``threshold`` seconds it runs, and the whole picture with the script's lines around each
step when asked (SIGUSR1). The global timeout's message uses ``InFlightView.summary``."""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import inspect
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from sys import _current_frames as current_frames  # CPython's: each thread's frame

from driver.activity import Step
from driver.log import Logger, LogLevel
from driver.machine.machine import Machine
from driver.scriptrun.script_check import read_script
from driver.text import one_line

CONSOLE_CHARS = 160  # of the node's last console line, in a progress line
DEFAULT_THRESHOLD = 30.0


@dataclass(frozen=True)
class InFlight:
    """One step in flight: the step, the script's file and line (when a script frame is
    on a stack), the DSL call there and its deadline in seconds (when the source shows
    them), and the node's last console line."""

    step: Step
    where: tuple[str, int] | None
    call: str | None
    deadline: float | None
    last_line: str


def _literal_seconds(node: ast.expr) -> float | None:
    """The number of seconds a literal expression says (None for anything else)."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def call_timeout(call: ast.Call) -> float | None:
    """The ``timeout`` a DSL call on a node gets (``node.wait_until_succeeds(cmd, 120)``):
    its literal argument, or the method's default; None when it is not a literal or the
    method takes none."""
    func = call.func
    method = getattr(Machine, func.attr, None) if isinstance(func, ast.Attribute) else None
    if method is None or not callable(method):
        return None
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return None
    if "timeout" not in {p.name for p in parameters}:
        return None
    for keyword in call.keywords:
        if keyword.arg == "timeout":
            return _literal_seconds(keyword.value)
    positional = [
        p.name
        for p in parameters
        if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(isinstance(a, ast.Starred) for a in call.args):
        return None
    if "timeout" in positional and len(call.args) > positional.index("timeout"):
        return _literal_seconds(call.args[positional.index("timeout")])
    default = next(p.default for p in parameters if p.name == "timeout")
    if isinstance(default, dt.timedelta):
        return default.total_seconds()
    return float(default) if isinstance(default, int | float) else None


def _imported(tree: ast.AST) -> set[str]:
    """The names a script's imports bind (``time`` in ``time.sleep`` is no node)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def line_call(
    tree: ast.AST, line: int, node_name: str | None = None
) -> tuple[str | None, float | None]:
    """The innermost DSL call (a Machine method, not on an imported module) spanning
    ``line``, on ``node_name``'s variable when one is: its name and its timeout (None when
    not known from the source)."""
    imported = _imported(tree)
    found: list[tuple[bool, int, int, str, float | None]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and receiver.id in imported:
            continue
        if callable(getattr(Machine, node.func.attr, None)):
            other = not (isinstance(receiver, ast.Name) and receiver.id == node_name)
            span = (node.end_lineno or node.lineno) - node.lineno
            found.append((other, span, -node.col_offset, node.func.attr, call_timeout(node)))
    if not found:
        return None, None
    *_, name, timeout = min(found, key=lambda f: f[:3])
    return name, timeout


def script_line(frame: types.FrameType | None, scripts: set[str]) -> tuple[str, int] | None:
    """The innermost frame of ``frame``'s stack that runs one of ``scripts``: its file and
    line."""
    while frame is not None:
        if frame.f_code.co_filename in scripts:
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


class InFlightView:
    """Describes the steps in flight of a run whose scripts are ``scripts``; the thread
    that makes it is taken as the one running the scripts."""

    def __init__(self, logger: Logger, scripts: list[Path]) -> None:
        self.logger = logger
        self.scripts = {str(p) for p in scripts}
        self.script_thread = threading.get_ident()
        self._sources: dict[str, str] = {}
        self._trees: dict[str, ast.AST | None] = {}

    def source(self, path: str) -> str:
        """The script's text ('' when it cannot be read)."""
        if path not in self._sources:
            text = ""
            with contextlib.suppress(Exception):
                text = read_script(Path(path))
            self._sources[path] = text
        return self._sources[path]

    def _call(
        self, where: tuple[str, int] | None, node: str | None
    ) -> tuple[str | None, float | None]:
        """The DSL call at ``where`` (on ``node`` when it shows) and its deadline, from the
        script's source."""
        if where is None:
            return None, None
        path, line = where
        if path not in self._trees:
            tree: ast.AST | None = None
            with contextlib.suppress(SyntaxError, ValueError):
                tree = ast.parse(self.source(path), filename=path)
            self._trees[path] = tree
        tree = self._trees[path]
        return (None, None) if tree is None else line_call(tree, line, node)

    def in_flight(self, nodes_only: bool = False) -> list[InFlight]:
        """Each thread's innermost step (with ``nodes_only``, only those about a node)."""
        frames = current_frames()
        script = frames.get(self.script_thread)
        items = []
        for step in self.logger.activity.innermost():
            if nodes_only and not step.node:
                continue
            where = script_line(frames.get(step.thread), self.scripts)
            where = where or script_line(script, self.scripts)
            console = self.logger.activity.last_console.get(step.node or "", "")
            items.append(InFlight(step, where, *self._call(where, step.node), console))
        del frames, script
        return items

    def script_where(self) -> tuple[str, int] | None:
        """Where the script's thread is in a script, if it is in one."""
        frames = current_frames()
        try:
            return script_line(frames.get(self.script_thread), self.scripts)
        finally:
            del frames

    @staticmethod
    def describe(item: InFlight) -> str:
        """``node01: wait_until_succeeds: waiting for success: false (31 s / 120 s
        deadline) at s.py:4``."""
        step = item.step
        what = f"{item.call}: {step.message}" if item.call else step.message
        what = f"{step.node}: {what}" if step.node else what
        took = f"{step.elapsed():.0f} s"
        took += f" / {item.deadline:g} s deadline" if item.deadline is not None else ""
        where = f" at {item.where[0]}:{item.where[1]}" if item.where else ""
        return one_line(f"{what} ({took}){where}")

    @staticmethod
    def console_of(item: InFlight) -> str:
        """The node's last console line, shortened, or ''."""
        text = one_line(item.last_line.strip())
        return text if len(text) <= CONSOLE_CHARS else text[: CONSOLE_CHARS - 3] + "..."

    def summary(self) -> str:
        """One line naming every step in flight, for the global timeout's message."""
        parts = []
        for item in self.in_flight():
            console = self.console_of(item)
            parts.append(
                self.describe(item) + (f", last console line: {console}" if console else "")
            )
        if parts:
            return "in flight: " + "; ".join(parts)
        where = self.script_where()
        return f"the script was at {where[0]}:{where[1]}" if where else ""

    def context(self, where: tuple[str, int], around: int = 2) -> list[str]:
        """The script's lines around ``where`` (``around`` before and after), numbered,
        the line itself marked with ``>``."""
        path, line = where
        lines = self.source(path).splitlines()
        shown = []
        for number in range(max(1, line - around), min(len(lines), line + around) + 1):
            mark = ">" if number == line else " "
            shown.append(f"{mark} {number:4d} | {one_line(lines[number - 1])}")
        return shown

    def dump(self, why: str) -> str:
        """Every step in flight with the script's lines around each (the SIGUSR1 text)."""
        items = self.in_flight()
        lines = [f"{why}: {len(items)} step(s) in flight"]
        for item in items:
            lines.append("  " + self.describe(item))
            outer = [s.message for s in self.logger.activity.stack(item.step.thread)]
            if len(outer) > 1:
                lines.append("      within: " + one_line(" > ".join(outer[:-1])))
            lines += ["      " + text for text in (self.context(item.where) if item.where else [])]
            if console := self.console_of(item):
                lines.append(f"      last console line of {item.step.node}: {console}")
        if not items and (where := self.script_where()) is not None:
            lines.append(f"  the script is at {where[0]}:{where[1]}")
            lines += ["      " + text for text in self.context(where)]
        return "\n".join(lines)


class ProgressMonitor:
    """A thread that logs one line for each step on a node every ``threshold`` seconds it
    runs, and the whole picture when ``request_dump`` is called (from a signal handler)."""

    def __init__(self, view: InFlightView, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.view = view
        self.threshold = threshold
        self._wake = threading.Event()
        self._stopped = False
        self._dump_requested = False
        self._printed: dict[Step, int] = {}
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching (waits up to ``timeout`` seconds for the thread)."""
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def request_dump(self) -> None:
        """Ask for the dump of every step in flight (safe in a signal handler: it only
        sets a flag and an event, once until the dump is written)."""
        if self._dump_requested:
            return
        self._dump_requested = True
        self._wake.set()

    def _loop(self) -> None:
        """Wake every ``tick`` (or when asked), dump when asked, print what is due."""
        tick = min(1.0, self.threshold / 4)
        while True:
            self._wake.wait(tick)
            self._wake.clear()
            if self._stopped:
                return
            if self._dump_requested:
                # Asked for: shown whatever --log-level says.
                self.view.logger.log(self.view.dump("SIGUSR1"), level=LogLevel.ERROR)
                self._dump_requested = False
            self.check()

    def check(self) -> None:
        """Log a progress line for each step on a node that ran another ``threshold``."""
        items = self.view.in_flight(nodes_only=True)
        self._printed = {i.step: self._printed.get(i.step, 0) for i in items}
        for item in items:
            due = int(item.step.elapsed() // self.threshold)
            if due > self._printed[item.step]:
                self._printed[item.step] = due
                console = self.view.console_of(item)
                line = "progress: " + self.view.describe(item)
                self.view.logger.log(line + (f" | last console line: {console}" if console else ""))
