"""A debugger at the failing line (issue 33): ``--debug-hook`` stops a run at its first
failure, and at ``debug.breakpoint()``, with pdb on a UNIX socket in the run directory that
``photon-driver debug-attach`` reaches without a terminal; ``c`` goes on, ``q`` ends the
run; Ctrl-C, SIGTERM and the global timeout still end it at once. Without the hook
``debug.breakpoint()`` does nothing.

The socket pdb is tested in-process (a thread serving, a client sending commands); the CLI
runs use scripts that touch no node (nothing boots); the last test is the acceptance on a
real guest."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType

import pytest

from conftest import leftovers, photon_env
from driver.errors import GlobalTimeout
from driver.log import Logger
from driver.scriptrun.debugger import Debugger, DebuggerQuit
from driver.scriptrun.remote_pdb import Session, attach, stop_here
from driver.session.signals import global_timeout
from driver.wait import wait_until

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"
FAILING = "x = 41\n\ndef check(n):\n    y = n + 1\n    raise ValueError(f'boom {y}')\n\ncheck(x)\n"


def failure(tmp_path: Path) -> tuple[str, BaseException]:
    """A failure raised inside a script's function (its frames kept by the traceback)."""
    script = str(tmp_path / "s.py")
    try:
        exec(compile(FAILING, script, "exec"), {})
    except ValueError as exc:
        return script, exc
    raise AssertionError("the script did not fail")


def wait_for(path: Path, seconds: float = 10.0) -> None:
    wait_until(path.exists, seconds, 0.02)


def serve(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``target`` in a thread; its result (or exception) lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def stopped(
    session: Session, frame: FrameType | None, tb: TracebackType | None, script: str = ""
) -> Callable[[], object]:
    """What the serving thread runs: wait for a client, serve pdb, close (as Debugger
    does); its result is whether the client quit."""

    def run() -> bool:
        try:
            session.wait_for_client()
            return stop_here(session, frame, tb, script)
        finally:
            session.close()

    return run


def client(path: Path, commands: str) -> str:
    out = io.BytesIO()
    attach(path, io.BytesIO(commands.encode()), out)
    return out.getvalue().decode()


def test_post_mortem_starts_at_the_script_frame_and_continues(tmp_path: Path) -> None:
    script, exc = failure(tmp_path)
    session = Session(tmp_path / "debug.sock")
    thread, outcome = serve(stopped(session, None, exc.__traceback__, script))
    text = client(tmp_path / "debug.sock", "p y\np x\nn\nc\n")
    thread.join(10)
    assert outcome == [False], text
    assert "s.py(5)check()" in text, text  # the failing line, in the script's own frame
    assert "42\n" in text and "41\n" in text, text
    assert "not offered here" in text, text  # stepping says so instead of running on
    assert not (tmp_path / "debug.sock").exists()


def test_quit_is_reported(tmp_path: Path) -> None:
    script, exc = failure(tmp_path)
    session = Session(tmp_path / "debug.sock")
    thread, outcome = serve(stopped(session, None, exc.__traceback__, script))
    client(tmp_path / "debug.sock", "q\n")
    thread.join(10)
    assert outcome == [True]


def test_a_client_that_leaves_is_not_a_quit_the_next_one_continues(tmp_path: Path) -> None:
    script, exc = failure(tmp_path)
    sock = tmp_path / "debug.sock"
    said: list[str] = []
    session = Session(sock, said.append)
    thread, outcome = serve(stopped(session, None, exc.__traceback__, script))
    first = client(sock, "p y * 2\n")  # no c: pipe closed after this
    assert "84\n" in first, first
    assert thread.is_alive() and outcome == []
    second = client(sock, "c\n")
    thread.join(10)
    assert "attached again" in second, second
    assert outcome == [False]
    assert any("left without continue or quit" in line for line in said), said


def test_a_long_socket_path_is_reached_through_its_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    session = Session(deep / "debug.sock")
    thread, outcome = serve(stopped(session, sys._getframe(), None))
    text = client(deep / "debug.sock", "p 6 * 7\nc\n")
    thread.join(10)
    assert "42\n" in text and outcome == [False]


def test_a_signal_during_a_pdb_command_ends_the_stop(tmp_path: Path) -> None:
    """pdb swallows whatever a command raises; an interruption (here the global timeout,
    in the main thread as a signal's) still ends the stop at once. The client sends ``c``
    once it sees the error, so a stop that swallowed it would return instead of raising."""
    sock = tmp_path / "debug.sock"
    session = Session(sock)
    replies: list[str] = []

    def patient_client() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(sock))
            conn.sendall(b"p __import__('time').sleep(60)\n")
            text = b""
            while b"GlobalTimeout" not in text and (chunk := conn.recv(4096)):
                text += chunk
            with contextlib.suppress(OSError):
                conn.sendall(b"c\n")
                while chunk := conn.recv(4096):
                    text += chunk
            replies.append(text.decode())

    sender = threading.Thread(target=patient_client, daemon=True)
    sender.start()
    started = time.monotonic()
    try:
        with pytest.raises(GlobalTimeout), global_timeout(1.0):
            session.wait_for_client()
            stop_here(session, sys._getframe(), None)
    finally:
        session.close()
    assert time.monotonic() - started < 5
    sender.join(10)
    assert "GlobalTimeout" in replies[0], replies  # what pdb printed of it


def debugger(tmp_path: Path) -> tuple[Debugger, io.StringIO]:
    log = io.StringIO()
    return Debugger(tmp_path, Logger(log, colour=False), []), log


def test_breakpoint_stops_at_its_caller_and_quit_ends_the_run(tmp_path: Path) -> None:
    debug, log = debugger(tmp_path)

    def script_function() -> None:
        marker = "at-the-caller"  # noqa: F841 (read through pdb)
        debug.breakpoint()

    thread, outcome = serve(script_function)
    wait_for(tmp_path / "debug.sock")
    text = client(tmp_path / "debug.sock", "p marker\nq\n")
    thread.join(10)
    assert "'at-the-caller'" in text, text
    assert len(outcome) == 1 and isinstance(outcome[0], DebuggerQuit), outcome
    assert outcome[0].exit_code == 1
    hint = log.getvalue()
    assert "debugger: stopped at debug.breakpoint() at test_debug_hook.py:" in hint, hint
    assert f"photon-driver debug-attach {tmp_path / 'debug.sock'}" in hint, hint
    assert "Ctrl-C or SIGTERM end it at once" in hint
    assert not (tmp_path / "debug.sock").exists()


def test_post_mortem_stops_once(tmp_path: Path) -> None:
    script, exc = failure(tmp_path)
    debug, log = debugger(tmp_path)
    thread, outcome = serve(lambda: debug.post_mortem(exc, script))
    wait_for(tmp_path / "debug.sock")
    client(tmp_path / "debug.sock", "c\n")
    thread.join(10)
    assert outcome == [None]
    debug.post_mortem(exc, script)  # a later failure goes by without waiting
    assert "the failure at s.py:5 (ValueError: boom 42)" in log.getvalue(), log.getvalue()


def test_the_global_timeout_ends_a_wait_for_an_attach(tmp_path: Path) -> None:
    debug, log = debugger(tmp_path)
    started = time.monotonic()
    with pytest.raises(GlobalTimeout), global_timeout(1.0):
        debug.breakpoint()
    assert time.monotonic() - started < 3
    assert "the global timeout ends the run in 1 s" in log.getvalue(), log.getvalue()
    assert not (tmp_path / "debug.sock").exists()


def test_without_the_hook_breakpoint_does_nothing(tmp_path: Path, xdg_cache: Path) -> None:
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text("debug.breakpoint()\nprint('went-on')\n")
    proc = run_cli(tmp_path, xdg_cache, "t.py")
    out, err = finish(proc)
    assert proc.returncode == 0, err
    assert "went-on" in out and "debugger" not in err, err


def run_cli(tmp_path: Path, xdg_cache: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", *args],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def attach_line(proc: subprocess.Popen[str], seconds: float = 240.0) -> tuple[Path, list[str]]:
    """The socket the run's hint names, and the lines read up to it."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    for line in proc.stderr:
        seen.append(line)
        found = re.search(r"attach: +photon-driver debug-attach (\S+)$", line)
        if found:
            return Path(found.group(1)), seen
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError("no attach hint:\n" + "".join(seen))


def finish(proc: subprocess.Popen[str], seconds: float = 120.0) -> tuple[str, str]:
    """Wait for the run; its stdout and the rest of its stderr (read through the same
    buffered files that attach_line read, so no line is lost)."""
    assert proc.stdout is not None and proc.stderr is not None
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both pipes drained: no stall
        out, err = pool.submit(proc.stdout.read), pool.submit(proc.stderr.read)
        try:
            proc.wait(seconds)
        finally:
            if proc.poll() is None:
                proc.kill()  # the readers end with it
        return out.result(seconds), err.result(seconds)


def debug_attach(
    tmp_path: Path, xdg_cache: Path, target: str, commands: str
) -> subprocess.CompletedProcess[str]:
    """``photon-driver debug-attach [TARGET]`` with ``commands`` piped in: no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "driver", "debug-attach", *([target] if target else [])],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        input=commands,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_breakpoint_attach_with_a_pipe_and_continue(tmp_path: Path, xdg_cache: Path) -> None:
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text("x = 5\ndebug.breakpoint()\nprint('went-on', x)\n")
    proc = run_cli(tmp_path, xdg_cache, "--debug-hook", "t.py")
    try:
        sock, _ = attach_line(proc)
        assert sock.parent == tmp_path / "vm" / "runs" / str(proc.pid)
        run_dir = str(sock.parent)  # the run directory works as the target too
        attached = debug_attach(tmp_path, xdg_cache, run_dir, "p x * 3\nc\n")
        out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert attached.returncode == 0, attached.stderr
    assert "15\n" in attached.stdout and "continued: the run goes on" in attached.stdout
    assert proc.returncode == 0, err
    assert "went-on 5" in out
    assert not sock.exists()
    gone = debug_attach(tmp_path, xdg_cache, str(sock), "c\n")
    assert gone.returncode == 2 and "no run is waiting there" in gone.stderr, gone.stderr


@pytest.mark.parametrize(
    ("signame", "code", "attached"), [("SIGTERM", 143, False), ("SIGINT", 130, True)]
)
def test_a_signal_ends_a_stopped_run_at_once(
    tmp_path: Path, xdg_cache: Path, signame: str, code: int, attached: bool
) -> None:
    """SIGTERM while waiting for an attach, SIGINT inside pdb (a client attached, idle):
    the run ends with the signal's code within seconds, the socket gone."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text("raise RuntimeError('boom')\n")
    proc = run_cli(tmp_path, xdg_cache, "--debug-hook", "t.py")
    holder = None
    try:
        sock, _ = attach_line(proc)
        if attached:
            holder = subprocess.Popen(
                [sys.executable, "-m", "driver", "debug-attach", str(sock)],
                env=photon_env(xdg_cache, tmp_path / "vm"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None
            assert "RuntimeError: boom" in holder.stdout.readline()  # pdb has it now
        sent = time.monotonic()
        proc.send_signal(getattr(signal, signame))
        _, err = finish(proc, 60)
        took = time.monotonic() - sent
    finally:
        for p in (proc, holder):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert proc.returncode == code, err
    assert took < 5, f"{took:.1f} s from {signame} to exit"
    assert not sock.exists()


@pytest.mark.vm
def test_acceptance_a_failing_subtest_stops_with_the_node_up(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """The acceptance on a real guest: a failing subtest under ``--debug-hook`` prints the
    hint; a second process (no terminal, commands piped) sees the failing frame's
    variable, runs a command on the node (it is up), continues; the run then fails as it
    would have (exit 1) and leaves nothing running."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(
        "start_all()\n"
        "with subtest('checks'):\n"
        "    marker = 'failing-frame'\n"
        "    machine.succeed('echo probe > /tmp/probe; false')\n"
        "print('not reached')\n"
    )
    proc = run_cli(tmp_path, xdg_cache, "--debug-hook", "t.py")
    try:
        sock, seen = attach_line(proc, seconds=400)
        hint = "".join(seen[-8:])
        assert "debugger: stopped at the failure at t.py:4" in hint, hint
        attached = debug_attach(
            tmp_path,
            xdg_cache,
            str(sock),
            "p marker\np machine.succeed('cat /tmp/probe')\nc\n",
        )
        out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert attached.returncode == 0, attached.stderr
    assert "'failing-frame'" in attached.stdout, attached.stdout
    assert "'probe\\n'" in attached.stdout, attached.stdout
    assert proc.returncode == 1, err[-3000:]
    assert "not reached" not in out
    log = "".join(seen) + err
    assert 'Test "checks" failed' in log and "subtests: 0 passed, 1 failed" in log
    assert re.search(r"ssh machine: (ssh -p \d+ |\(none: )", log), log[-3000:]
    assert not sock.exists()
    assert leftovers(sock.parent) == []


def test_cli_quit_ends_a_run_that_would_have_passed(tmp_path: Path, xdg_cache: Path) -> None:
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text("debug.breakpoint()\nprint('went-on')\n")
    junit = tmp_path / "junit.xml"
    proc = run_cli(tmp_path, xdg_cache, "--debug-hook", "t.py", "--junit-xml", str(junit))
    try:
        sock, _ = attach_line(proc)
        attached = debug_attach(tmp_path, xdg_cache, "", "q\n")  # the one run waiting
        out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "quit: the run ends now (exit 1)" in attached.stdout, attached.stdout
    assert proc.returncode == 1, err
    assert "went-on" not in out
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert errors == [
        "error: the run was ended from the debugger (quit at debug.breakpoint() at t.py:1)"
    ], err
    assert junit.exists() and "ended from the debugger" in junit.read_text()
    assert not sock.exists()
