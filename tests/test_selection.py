"""``--subtest REGEX`` and ``--list`` (issue 33): which subtests run, found from the
script's source; the others reported skipped with the reason (terminal, JUnit,
report.html); code outside subtests still runs; ``--list`` boots and builds nothing.
The runs here touch no node, so no QEMU starts."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, leftovers, photon_env
from driver.errors import UsageError
from driver.scriptrun.selection import (
    Verdict,
    compile_script,
    find_subtests,
    list_lines,
    plan,
    selection_of,
    unmatched,
)

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"
SCRIPT = """\
print("outside before")
with subtest("alpha"):
    print("in alpha")
    with subtest("alpha inner"):
        print("in alpha inner")
with subtest("beta"):
    print("in beta")
    with subtest("gamma"):
        print("in gamma")
    with subtest("delta"):
        print("in delta")
for i in range(2):
    with subtest(f"loop {i}"):
        print("in loop", i)
print("outside after")
"""
SMOKE = REPO / "testscripts" / "reference" / "smoke.py"


def test_find_subtests_literal_computed_nested_and_multi_item() -> None:
    """Literal and computed names, depth, lines; ``with a, subtest(x):`` and
    ``self.subtest(x)`` count; other ``with`` statements do not."""
    source = (
        'with open("f") as f, subtest("multi"):\n'
        '    with x.subtest("attr"):\n'
        "        pass\n"
        'with open("g"):\n'
        "    with subtest(name):\n"
        "        pass\n"
    )
    sites = find_subtests(source, "s.py")
    assert [(s.name, s.computed, s.line, s.depth) for s in sites] == [
        ("multi", False, 1, 0),
        ("attr", False, 2, 1),
        ("name", True, 5, 0),
    ]


def test_a_syntax_error_names_file_and_line() -> None:
    with pytest.raises(UsageError, match=r"^s\.py:2: syntax error"):
        find_subtests("x = 1\nwith subtest(:\n", "s.py")


def test_plan_selects_matches_their_insides_and_their_containers() -> None:
    """``gamma`` selected: beta holds it (runs), delta beside it is skipped; alpha and
    everything inside it skipped; a computed name is '?' until it runs."""
    sites = find_subtests(SCRIPT, "t.py")
    selection = selection_of(["gamma"])
    assert selection is not None
    known = selection.with_sites("t.py", sites)
    verdicts = dict(zip([s.name for s in sites], plan("t.py", sites, known), strict=True))
    assert verdicts == {
        "alpha": Verdict.SKIPPED,
        "alpha inner": Verdict.SKIPPED,
        "beta": Verdict.CONTAINER,
        "gamma": Verdict.SELECTED,
        "delta": Verdict.SKIPPED,
        "f'loop {i}'": Verdict.UNKNOWN,
    }
    outer = selection_of(["^alpha$"])
    assert outer is not None
    assert plan("t.py", sites, outer.with_sites("t.py", sites))[:2] == [Verdict.SELECTED] * 2


def test_list_lines_mark_each_subtest() -> None:
    sites = find_subtests(SCRIPT, "t.py")
    assert list_lines("t.py", sites, None)[:2] == ["alpha  [line 2]", "  alpha inner  [line 4]"]
    selection = selection_of(["gamma"])
    assert selection is not None
    lines = list_lines("t.py", sites, selection.with_sites("t.py", sites))
    assert lines[2:5] == [
        "run  beta  [line 6]",
        "run    gamma  [line 8]",
        "skip   delta  [line 10]",
    ]
    assert lines[5] == "?    f'loop {i}' (computed)  [line 13]"


def test_unmatched_patterns_unless_a_name_is_computed() -> None:
    literal = find_subtests('with subtest("a"):\n    pass\n', "s.py")
    selection = selection_of(["a", "zzz"])
    assert selection is not None
    assert unmatched(selection, literal) == ["zzz"]
    assert unmatched(selection, find_subtests(SCRIPT, "t.py")) == []


def test_guarded_script_skips_bodies_keeps_outside_code_and_line_numbers() -> None:
    """The compiled script runs a body only when ``subtest`` does not yield False; code
    outside subtests runs; a traceback names the source's own line."""
    ran: list[str] = []

    @contextlib.contextmanager
    def subtest(name: str) -> Iterator[bool | None]:
        yield False if name in ("alpha", "delta", "loop 0") else None

    env = {"subtest": subtest, "print": lambda *a: ran.append(" ".join(map(str, a)))}
    exec(compile_script(SCRIPT, "t.py"), env)
    assert ran == [
        "outside before",
        "in beta",
        "in gamma",
        "in loop 1",
        "outside after",
    ]
    failing = 'x = 1\nwith subtest("a"):\n    y = 2\n    raise ValueError(y)\n'
    with pytest.raises(ValueError) as info:
        exec(compile_script(failing, "f.py"), {"subtest": subtest})
    assert traceback.extract_tb(info.value.__traceback__)[-1].lineno == 4


def _cli(
    tmp_path: Path, xdg_cache: Path, *args: str, script: str = SCRIPT
) -> subprocess.CompletedProcess[str]:
    """``photon-driver ARGS`` on a one-node topology whose script touches no node."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(script)
    return subprocess.run(
        [sys.executable, "-m", "driver", *args],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_with_subtest_runs_only_the_selected_and_reports_the_others_skipped(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """``--subtest gamma --subtest 'loop 1'``: beta (holding gamma), gamma and loop 1 run,
    with the code outside subtests; alpha, delta and loop 0 are skipped with the reason in
    the terminal, JUnit (skipped) and report.html; exit 0; no node booted."""
    proc = _cli(
        tmp_path,
        xdg_cache,
        *("run", "--topology", "t.toml", "t.py", "--subtest", "gamma", "--subtest", "loop 1"),
        *("--junit-xml", "junit.xml", "-o", "out"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "outside before",
        "in beta",
        "in gamma",
        "in loop 1",
        "outside after",
    ]
    reason = "not selected by --subtest 'gamma' --subtest 'loop 1'"
    for name in ("alpha", "delta", "loop 0"):
        assert f"subtest: {name}: skipped ({reason})" in proc.stderr
    assert "subtests: 3 passed, 0 failed, 3 skipped" in proc.stderr
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert set(cases) == {"alpha", "beta", "gamma", "delta", "loop 0", "loop 1", "main"}
    for name, case in cases.items():
        skipped = case.find("skipped")
        if name in ("alpha", "delta", "loop 0"):
            assert skipped is not None and skipped.get("message") == reason
        else:
            assert skipped is None and case.find("failure") is None
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count('<span class="reason">not selected by --subtest &#x27;gamma&#x27;') == 3
    assert 'id="count-skipped">3 skipped' in page
    assert list((tmp_path / "vm").rglob("vm.log")) == []  # no QEMU started


def test_a_failing_subtest_that_is_not_selected_does_not_run(
    tmp_path: Path, xdg_cache: Path
) -> None:
    script = 'with subtest("bad"):\n    assert False\nwith subtest("good"):\n    pass\n'
    proc = _cli(
        tmp_path,
        xdg_cache,
        "run",
        "--topology",
        "t.toml",
        "t.py",
        "--subtest",
        "go+d",
        script=script,
    )
    assert proc.returncode == 0, proc.stderr
    assert "subtests: 1 passed, 0 failed, 1 skipped" in proc.stderr
    again = _cli(tmp_path, xdg_cache, "run", "--topology", "t.toml", "t.py", script=script)
    assert again.returncode == 1, again.stderr


def test_a_pattern_matching_no_subtest_is_refused_before_anything_boots(
    tmp_path: Path, xdg_cache: Path
) -> None:
    script = 'with subtest("a"):\n    pass\n'
    proc = _cli(
        tmp_path,
        xdg_cache,
        "run",
        "--topology",
        "t.toml",
        "t.py",
        "--subtest",
        "zzz",
        script=script,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: --subtest 'zzz' matches no subtest of t.py (its subtests: 'a')"]
    assert leftovers(tmp_path / "vm") == []
    assert not (tmp_path / "vm" / "runs").exists() or not any((tmp_path / "vm" / "runs").iterdir())


def test_list_prints_the_script_subtests_and_runs_nothing(tmp_path: Path) -> None:
    """``run --list`` with and without ``--subtest``: the lines on stdout, exit 0, nothing
    built (an empty image cache stays empty), no state directory made."""
    cache = tmp_path / "xdg"
    cache.mkdir()
    proc = _cli(tmp_path, cache, "run", "--topology", "t.toml", "t.py", "--list")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == [
        "t.py:",
        "  alpha  [line 2]",
        "    alpha inner  [line 4]",
    ]
    chosen = _cli(
        tmp_path, cache, "run", "--topology", "t.toml", "t.py", "--list", "--subtest", "gamma"
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "  run    gamma  [line 8]" in chosen.stdout.splitlines()
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "vm").exists()


@pytest.mark.parametrize("verb", ["smoke", "fresh-smoke"])
def test_list_on_the_reference_smoke_boots_and_builds_nothing(verb: str, tmp_path: Path) -> None:
    """The reference smoke's subtests, in order, with ``--subtest`` marks; no cluster
    needed (``smoke`` without ``--list`` would need one), nothing built or booted."""
    cache = tmp_path / "xdg"
    cache.mkdir()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "driver", "--profile", "reference", verb, "--list"),
            *("--subtest", "etcd", "--subtest", "haproxy"),
        ],
        env=photon_env(cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{SMOKE}:"
    marks = [line.split()[0] for line in lines[1:]]
    names = [s.name for s in find_subtests(SMOKE.read_text(), SMOKE)]
    assert len(names) == len(marks) >= 6
    chosen = [n for n, m in zip(names, marks, strict=True) if m == "run"]
    assert chosen == [n for n in names if "etcd" in n or "haproxy" in n] and len(chosen) == 2
    assert list(cache.iterdir()) == []
    assert list(tmp_path.glob("vm*")) == []  # no state directory: nothing started


def test_a_computed_subtest_holding_a_selected_one_runs(tmp_path: Path, xdg_cache: Path) -> None:
    """A subtest whose name is computed (known only when it runs) but that holds the
    selected one is found by its line, also when its ``with`` spans several lines."""
    script = (
        "for i in [1]:\n"
        '    with subtest(\n        f"outer {i}"\n    ):\n'
        '        print("in outer")\n'
        '        with subtest("inner"):\n'
        '            print("in inner")\n'
    )
    args = ("run", "--topology", "t.toml", "t.py", "--subtest", "inner")
    proc = _cli(tmp_path, xdg_cache, *args, script=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["in outer", "in inner"]
    listed = _cli(tmp_path, xdg_cache, *args, "--list", script=script)
    assert listed.stdout.splitlines()[1:] == [
        "  run  f'outer {i}' (computed)  [line 2]",
        "  run    inner  [line 6]",
    ]


def test_a_subtest_entered_in_a_helper_module_runs_with_a_warning(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """A ``with subtest(...)`` in a module the script calls is not guarded: rather than
    report it skipped while its body runs, it runs, and a warning says why."""
    (tmp_path / "helper.py").write_text(
        'def layer(subtest):\n    with subtest("helper"):\n        print("helper body")\n'
    )
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import helper\n"
        "helper.layer(subtest)\n"
        'with subtest("mine"):\n    print("mine")\n'
    )
    args = ("run", "--topology", "t.toml", "t.py", "--subtest", "mine")
    proc = _cli(tmp_path, xdg_cache, *args, script=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["helper body", "mine"]
    assert (
        "warning: subtest 'helper' runs although not selected by --subtest 'mine': its "
        "`with` is not in the script, so its body cannot be skipped"
    ) in proc.stderr
