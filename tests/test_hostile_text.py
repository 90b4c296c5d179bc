"""Text of any bytes (issue 36): the run's records stay whole whatever a command printed, a
console line held or a name is. ``events.jsonl`` is one JSON object per line, JUnit is
well-formed XML that says it escaped something, ``report.html`` shows the failing step's
command, output and consoles; a script that is not UTF-8 and node names that cannot be
script variables are one line, exit 2, before anything is built. The last test does it on a
real guest whose failing command prints every byte."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conftest import photon_cli, photon_env
from driver.config.topology import load_topology
from driver.errors import UsageError
from driver.events import EventKind, EventLog, read_events, recording
from driver.images.builder import Image
from driver.log import Logger
from driver.reports.report import SubtestResult, write_junit
from driver.reports.report_html import write_report
from driver.scriptrun.namespace import GLOBALS, check_node_names
from driver.scriptrun.script_check import read_script
from driver.text import NOTE, SURROGATES, one_line, visible_text, without_surrogates
from junit_schema import validate_junit

ALL_BYTES = bytes(range(256))
TAIL = "\u2028 \u2029 \x85 </script><script>alert(1)</script> \ufffe \U0001fffe end"
# What a name or a script's text can hold: every byte (those that are not UTF-8 as
# surrogateescape's lone surrogates), line separators, `</script>`, non-characters.
HOSTILE = ALL_BYTES.decode("utf-8", "surrogateescape") + TAIL
# What a command's output is as text: every byte, the undecodable ones as U+FFFD.
PRINTED = ALL_BYTES.decode("utf-8", "replace") + TAIL + "\x1b[31mred\x1b[0m\x00"


def lines_of(path: Path) -> list[str]:
    """The lines of a JSON-lines file, asserting it is UTF-8 and ends with LF, and that no
    other character (U+2028, NEL, FF...) breaks a line of it."""
    text = path.read_bytes().decode("utf-8")  # strict
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert text.splitlines() == lines, "a character other than LF breaks an event's line"
    return lines


def strings(value: Any) -> list[str]:
    """Every string in a parsed JSON value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def strict_json(line: str) -> dict[str, Any]:
    """``line`` parsed as JSON as a strict parser would: no NaN, no lone surrogate."""

    def no_constant(name: str) -> None:
        raise AssertionError(f"not JSON: {name}")

    event: dict[str, Any] = json.loads(line, parse_constant=no_constant)
    assert not [s for s in strings(event) if SURROGATES.search(s)], "a lone surrogate"
    return event


def test_every_event_line_parses_whatever_its_text(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    logger = Logger(io.StringIO(), colour=False)
    with recording(logger.event_logs, path):
        logger.event(EventKind.SUBTEST_BEGIN, subtest=HOSTILE, script=HOSTILE)
        logger.log(HOSTILE, node=HOSTILE)
        logger.warning(HOSTILE)
        logger.node_line("node01", PRINTED)
        logger.node_line("node01", HOSTILE, source="stderr")
        with logger.nested(HOSTILE):
            logger.event(
                EventKind.COMMAND, node="node01", command=HOSTILE, status=1, stdout=PRINTED
            )
        logger.event("odd", value=float("nan"), nodes=[HOSTILE], where=Path(HOSTILE))
    lines = lines_of(path)
    events = [strict_json(line) for line in lines]
    assert [e["kind"] for e in events] == [
        "subtest-begin",
        "log",
        "warning",
        "console",
        "stderr",
        "begin",
        "command",
        "end",
        "odd",
    ]
    assert read_events(path) == events  # the reader sees the same, line for line
    command = next(e for e in events if e["kind"] == "command")
    # Text is kept as it was (only undecodable bytes shown as U+FFFD) and the raw bytes
    # are recoverable from the field beside it.
    assert command["command"] == without_surrogates(HOSTILE)
    assert base64.b64decode(command["command_bytes"]) == ALL_BYTES + TAIL.encode()
    assert command["stdout"] == PRINTED and "stdout_bytes" not in command
    console = next(e for e in events if e["kind"] == "console")
    assert console["text"] == PRINTED
    for raw in ("\u2028", "\u2029", "\x85", "\x00", "\x1b"):
        assert raw not in "".join(lines)  # written as escapes


def test_event_log_keeps_writing_after_a_hostile_line(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    log.write(EventKind.LOG, text="\udcff\ud800 lone surrogates")
    log.write(EventKind.LOG, text="after")
    log.close()
    events = [strict_json(line) for line in lines_of(tmp_path / "events.jsonl")]
    assert [e["text"] for e in events] == ["\ufffd\ufffd lone surrogates", "after"]
    raw = base64.b64decode(events[0]["text_bytes"])
    assert raw == "\udcff\ud800 lone surrogates".encode("utf-8", "surrogatepass")


def junit_texts(root: ET.Element) -> list[str]:
    """Every text and attribute value of a JUnit document."""
    found: list[str] = []
    for element in root.iter():
        found += [element.text or "", *element.attrib.values()]
    return found


def test_junit_is_well_formed_whatever_a_result_holds(tmp_path: Path) -> None:
    colour = "\x1b[31mFAILED\x1b[0m \x00 nul"
    summary = "TestFailure: " + colour
    results = [
        SubtestResult(
            HOSTILE,
            "s.py",
            1.0,
            "failed",
            message=HOSTILE,
            summary=summary,
            output=[PRINTED, colour],
            attempts=[(summary, HOSTILE, [PRINTED])] * 2,  # failed, then failed its rerun
        ),
        SubtestResult(
            os.fsdecode(b"flaky-\xff\xfe"),
            "s.py",
            1.0,
            "flaky",
            output=["passed"],
            attempts=[(summary, PRINTED, [colour])],
        ),
        SubtestResult(os.fsdecode(b"passing-\xff"), os.fsdecode(b"/t/scr\xffipt.py"), 0.5),
        SubtestResult("skipped", "s.py", 0.0, "skipped", message=colour),
        SubtestResult("main", "s.py", 0.0, "error", message=HOSTILE, summary=summary),
    ]
    path = tmp_path / "junit.xml"
    write_junit(results, "photon-driver.\x1bsuite", path)
    path.read_bytes().decode("utf-8")  # strict
    root = validate_junit(path)
    cases = list(root.iter("testcase"))
    assert [c.get("name") for c in cases] == [
        one_line(HOSTILE),
        "flaky-\\xff\\xfe",
        "passing-\\xff",
        "skipped",
        "main",
    ]
    broken, flaky = cases[0], cases[1]
    assert broken.find("failure") is not None and len(broken.findall("rerunFailure")) == 1
    assert flaky.find("failure") is None and len(flaky.findall("flakyFailure")) == 1
    # Every text that held control characters shows them escaped and says so once.
    for text in (
        broken.findtext("failure"),
        broken.findtext("system-out"),
        broken.findtext("rerunFailure/stackTrace"),
        broken.findtext("rerunFailure/system-out"),
        flaky.findtext("flakyFailure/system-out"),
        cases[4].findtext("error"),
    ):
        assert text is not None and text.count(NOTE) == 1, text
        assert "\\x1b" in text and "\\x00" in text
    assert "\\u2028" in (broken.findtext("system-out") or "")
    failure = broken.find("failure")
    assert failure is not None
    assert failure.get("message", "").split() == [
        "TestFailure:",
        "\\x1b[31mFAILED\\x1b[0m",
        "\\x00",
        "nul",
        *NOTE.split(),
    ]
    assert not [t for t in junit_texts(root) if "\x1b" in t or "\x00" in t]
    assert cases[2].findtext("system-out") is None  # a clean text gets no note


class Page(HTMLParser):
    """The tags of a page and the text inside the elements that matter here."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.open: list[str] = []
        self.texts: dict[str, str] = {}

    def key(self, tag: str, attrs: dict[str, str]) -> str:
        return f"{tag}.{attrs.get('class', '')}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        self.open.append(self.key(tag, found))

    def handle_endtag(self, tag: str) -> None:
        if self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for key in set(self.open):
            self.texts[key] = self.texts.get(key, "") + data


def parsed(page: Path) -> Page:
    """``page`` (strict UTF-8) through Python's HTML parser."""
    parser = Page()
    parser.feed(page.read_bytes().decode("utf-8"))
    parser.close()
    return parser


def test_report_shows_the_failing_step_whatever_it_printed(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    name = os.fsdecode(b"subtest \xff</script>")
    command = "printf " + HOSTILE
    log = EventLog(events)
    log.write(EventKind.SPAWN, t=100.0, node="node01")
    log.write(EventKind.READY, t=101.0, node="node01", boot_seconds=1.0)
    log.write(EventKind.SUBTEST_BEGIN, t=102.0, subtest=name, script="s.py")
    log.write(EventKind.CONSOLE, t=102.5, node="node01", text="before " + PRINTED)
    log.write(EventKind.COMMAND, t=103.0, node="node01", command=command, status=1, stdout=PRINTED)
    log.write(EventKind.STDERR, t=103.1, node="node01", text="stderr " + HOSTILE)
    log.write(EventKind.SUBTEST_END, t=104.0, subtest=name, status="failed", node="node01")
    log.close()
    message = "TestFailure: command failed\n" + PRINTED
    results = [SubtestResult(name, "s.py", 2.0, "failed", message, "TestFailure", [PRINTED])]
    page = write_report(
        tmp_path / "report.html",
        events,
        results,
        ["node01"],
        HOSTILE,
        {HOSTILE: tmp_path / os.fsdecode(b"vm\xff.log")},
    )
    html = parsed(page)
    assert not [t for t, _ in html.tags if t == "script"], "`</script>` broke out"
    section = next(a for t, a in html.tags if a.get("id") == "failure")
    assert section["data-subtest"] == visible_text(name) and section["data-node"] == "node01"
    # The failing command, its output and the console lines around it, each as text.
    assert html.texts["code."] == visible_text(command)
    assert html.texts["pre.output"] == visible_text(PRINTED)
    console = html.texts["pre.console"]
    assert visible_text("before " + PRINTED) in console
    assert visible_text("stderr " + HOSTILE) in console
    assert "</script><script>alert(1)</script>" in html.texts["pre.message"]
    failing = [a for t, a in html.tags if "failing" in a.get("class", "").split()]
    assert any("subtest" in a["class"].split() for a in failing), "the subtest band"
    assert any("command" in a["class"].split() for a in failing), "the command box"
    assert any(a.get("href") == "vm%FF.log" for t, a in html.tags if t == "a")


def run_cli(tmp_path: Path, xdg_cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python3 -m driver ARGS`` from ``tmp_path`` (state under tmp_path/vm)."""
    return subprocess.run(
        [sys.executable, "-m", "driver", *args],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


ONE_NODE = '[nodes.machine]\n[images.default]\npackages = ["python3"]\n'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"start_all()\n# caf\xe9\n", "not UTF-8 text at byte 17"),
        (b"start_all()\n\x00\n", "a NUL byte at byte 12 (not a text file)"),
        (b"start_all()\n" + "# \u2028\n".encode() + b"\xed\xb3\xbf\n", "not UTF-8 text at byte 18"),
    ],
)
def test_a_script_that_is_not_utf8_is_one_line_exit_2(
    tmp_path: Path, xdg_cache: Path, data: bytes, message: str
) -> None:
    topology, script = tmp_path / "one.toml", tmp_path / "t.py"
    topology.write_text(ONE_NODE)
    script.write_bytes(data)
    junit = tmp_path / "junit.xml"
    proc = run_cli(
        tmp_path,
        xdg_cache,
        "run",
        "--topology",
        str(topology),
        str(script),
        "--junit-xml",
        str(junit),
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith(f"error: {script}: {message}"), lines
    assert not list(tmp_path.glob("vm*/**/vm.log")), "something booted"
    main = validate_junit(junit).find(".//testcase[@name='main']")
    assert main is not None and main.find("error") is not None


def test_read_script_accepts_utf8_with_a_bom(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_bytes(b"\xef\xbb\xbfprint('\xe2\x80\xa8')\n")
    assert read_script(script) == "print('\u2028')\n"
    with pytest.raises(UsageError, match=r"t\.py: not UTF-8 text at byte 3$"):
        script.write_bytes(b"abc\xff")
        read_script(script)


def topology_with(tmp_path: Path, *names: str) -> Path:
    """A topology file with VLAN ``lan`` and the nodes ``names``."""
    path = tmp_path / "lab.toml"
    path.write_text('[[vlans]]\nname = "lan"\n' + "".join(f"[nodes.{n}]\n" for n in names))
    return path


CLASHES = {
    ("1st", "2st"): "nodes.2st: is '_st' in a test script, as nodes.1st is",
    ("node-1", "start-all"): "nodes.start-all: is 'start_all' in a test script, which would "
    "hide the script global",
    ("os",): "nodes.os: is 'os' in a test script, which would hide the script global",
    ("vlan1",): "nodes.vlan1: is 'vlan1' in a test script, which would hide that VLAN's",
    ("print",): "nodes.print: is 'print' in a test script, which would hide Python's builtin",
    ("class",): "nodes.class: 'class' is a Python keyword",
}


@pytest.mark.parametrize("names", sorted(CLASHES))
def test_node_names_that_clash_are_one_line_exit_2(
    tmp_path: Path, xdg_cache: Path, names: tuple[str, ...]
) -> None:
    topology = topology_with(tmp_path, *names)
    script = tmp_path / "t.py"
    script.write_text("start_all()\n")
    proc = run_cli(tmp_path, xdg_cache, "run", "--topology", str(topology), str(script))
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {topology}: "), proc.stderr
    assert CLASHES[names] in lines[0], lines[0]
    assert not list(tmp_path.glob("vm*")), "something was built"


def test_every_script_global_is_refused_as_a_node_name(tmp_path: Path) -> None:
    for name in [*GLOBALS, "log", "driver", "machines", "start_all", "subtest", "t", "retry"]:
        node = name.replace("_", "-")
        with pytest.raises(UsageError, match=rf"nodes\.{node}: is '{name}' in a test script"):
            check_node_names(load_topology(topology_with(tmp_path, node)))
    check_node_names(load_topology(topology_with(tmp_path, "node01", "machine", "client")))


VM_SCRIPT = r"""
start_all()
with subtest("every byte"):
    node01.succeed(COMMAND)
"""
# Prints every byte 0-255, U+2028, NEL and `</script>` to stdout and to stderr, and fails;
# the command's own text holds U+2028 and `</script>` too.
COMMAND = (
    ": '\u2028 </script>'; all() { i=0; while [ $i -lt 256 ]; do "
    'printf "\\\\$(printf %03o $i)"; i=$((i+1)); done; '
    "printf '\\342\\200\\250 \\302\\205 </script>\\n'; }; all; all >&2; exit 1"
)


@pytest.mark.vm
def test_a_command_printing_every_byte_on_a_real_guest(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    script = tmp_path / "hostile.py"
    script.write_text(f"COMMAND = {COMMAND!r}\n" + VM_SCRIPT)
    junit = tmp_path / "junit.xml"
    env = photon_env(xdg_cache, tmp_path / "vm")
    proc = photon_cli(
        env,
        "run",
        "--nodes",
        "node01",
        "--rerun-failed",
        "1",
        "--junit-xml",
        str(junit),
        str(script),
        profile="minimal",
    )
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "rerun 1/1 of subtest 'every byte'" in proc.stderr
    out = next((Path(f"{tmp_path / 'vm'}-minimal") / "runs").glob("*/out"))
    # events.jsonl: every line parses; the failing command is in it, its output too.
    events = [strict_json(line) for line in lines_of(out / "events.jsonl")]
    commands = [e for e in events if e["kind"] == "command" and e.get("status") == 1]
    assert len(commands) == 2 and all(COMMAND in e["command"] for e in commands)
    printed = (ALL_BYTES + "\u2028 \x85 </script>\n".encode()).decode(errors="replace")
    assert [e["stdout"] for e in commands] == [printed, printed]
    stderr = [e["text"] for e in events if e["kind"] == "stderr"]
    assert "\x00\x01\x02" in "".join(stderr) and " </script>" in stderr
    # junit.xml: well-formed, the failure and its rerun, the escapes said.
    root = validate_junit(junit)
    case = next(c for c in root.iter("testcase") if c.get("name") == "every byte")
    assert case.find("failure") is not None and len(case.findall("rerunFailure")) == 1
    assert NOTE in (case.findtext("failure") or "") and "\\x01" in (case.findtext("failure") or "")
    assert NOTE in (case.findtext("rerunFailure/system-out") or "")
    # report.html: the failing step's command and output, and the console around it.
    html = parsed(out / "report.html")
    assert not [t for t, _ in html.tags if t == "script"]
    assert visible_text(COMMAND) in html.texts["code."]
    assert "\\x01\\x02" in html.texts["pre.output"] and "\\u2028" in html.texts["pre.output"]
    assert "stderr" in html.texts.get("pre.console", ""), "the console around the failure"
