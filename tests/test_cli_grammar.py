"""The command line as a user types it (issue 16): options before or after a verb, extra
words refused, `--` ending options once, one line and the documented exit code for every
odd invocation, and a JUnit report whenever --junit-xml is given, even when the run ends
before any script starts."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, leftovers, photon_cli, photon_env
from junit_schema import junit_cases

ODD = [
    (["cluster", "status", "extra", "words"], 2, r"unrecognized arguments: extra words"),
    (["status"], 2, r"no cluster is running in"),
    (["cluster", "status"], 2, r"no cluster is running in"),
    (["smoke", "--profile", "reference"], 2, r"no cluster is running in"),
    (["ssh", "node04", "--", "hostname", "--", "x"], 2, r"no cluster is running in"),
    (["cluster", "ssh"], 2, r"the following arguments are required: NODE"),
    (["build", "node99"], 2, r"build: unknown node 'node99' \(known: node01"),
    (["cluster"], 2, r"the following arguments are required: VERB"),
    (["cluster", "frob"], 2, r"invalid choice: 'frob'"),
    (["cluster", "start", "--specs", "/nonexistent"], 2, r"/nonexistent: spec directory not found"),
    (["--specs", "/nonexistent", "cluster", "start"], 2, r"/nonexistent: spec directory not found"),
    (["cluster", "snapshot"], 2, r"required: NAME"),
    (["cluster", "clean", "--bogus"], 2, r"unrecognized arguments: --bogus"),
    (["run"], 2, r"run: name a test script"),
    (["run", "--nodes", "node77", "x.py"], 2, r"--nodes: unknown node 'node77'"),
    (["run", "--global-timeout", "-5", "x.py"], 2, r"--global-timeout: must be a number of"),
    (["run", "--global-timeout", "0", "x.py"], 2, r"--global-timeout: must be a number of"),
    (["run", "--global-timeout", "inf", "x.py"], 2, r"--global-timeout: must be a number of"),
    (["smoke", "--global-timeout", "soon"], 2, r"--global-timeout: not a number of seconds"),
    (["run", "--subtest", "(", "x.py"], 2, r"--subtest: bad regular expression '\('"),
    (["fresh-smoke", "--subtest", "a[", "--list"], 2, r"--subtest: bad regular expression"),
    (["run", "--list"], 2, r"run: name a test script"),
    (["run", "--list", "/nonexistent.py"], 2, r"/nonexistent.py"),
    (["run", "--progress-after", "0", "x.py"], 2, r"--progress-after: must be a number of"),
    (["fresh-smoke", "--progress-after", "soon"], 2, r"--progress-after: not a number of"),
    (["run", "--quarantine", "/nonexistent.toml", "x.py"], 2, r"/nonexistent.toml: quarantine"),
    (["run", "--log-level", "loud", "x.py"], 2, r"--log-level: invalid choice: 'loud'"),
    (["run", "--debug-hook", "-I"], 2, r"run: --debug-hook stops scripts for pdb; -I is"),
    (["debug-attach", "/nonexistent.sock"], 2, r"/nonexistent.sock: no run is waiting there"),
    (["debug-attach"], 2, r"debug-attach: no run under .* is waiting for a debugger"),
    (["--log-level", "quiet", "status"], 2, r"--log-level: invalid choice: 'quiet'"),
]


def photon(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return photon_cli(env, *args, profile="minimal", cwd=cwd, timeout=120)


@pytest.mark.parametrize(("args", "code", "message"), ODD, ids=[" ".join(a) for a, _, _ in ODD])
def test_odd_invocations_are_one_line_with_the_documented_code(
    args: list[str], code: int, message: str, tmp_path: Path, xdg_cache: Path
) -> None:
    env = photon_env(xdg_cache, tmp_path / "vm")
    proc = photon(args, env, tmp_path)
    state = Path(f"{tmp_path / 'vm'}-minimal")
    if (state / "cluster.json").exists():  # a regression that booted a cluster: stop it
        photon(["cluster", "stop"], env, tmp_path)
        pytest.fail(f"`{' '.join(args)}` started a cluster")
    assert leftovers(state) == []
    assert proc.returncode == code, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr


def test_version(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "driver", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and re.match(r"photon-driver \d+\.\d+", proc.stdout)


def test_cluster_clean_images_after_the_verb_removes_the_cache(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    image = xdg / "photoncloud-test-driver" / "images" / "minimal-0123456789abcdef"
    image.mkdir(parents=True)
    proc = photon(["cluster", "clean", "--images"], photon_env(xdg, tmp_path / "vm"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not image.exists()


def test_junit_for_a_precheck_error_and_no_cluster(tmp_path: Path, xdg_cache: Path) -> None:
    env = photon_env(xdg_cache, tmp_path / "vm")
    bad = tmp_path / "bad.py"
    bad.write_text("start_all()\nnode01.wait_for_unitt('x')\n")
    junit = tmp_path / "precheck.xml"
    proc = photon(["run", "--nodes", "node01", str(bad), "--junit-xml", str(junit)], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    main = junit_cases(junit)["main"]
    error = main.find("error")
    assert error is not None and "wait_for_unitt" in (error.get("message") or ""), proc.stderr
    junit = tmp_path / "nocluster.xml"
    proc = photon(["smoke", "--profile", "reference", "--junit-xml", str(junit)], env, tmp_path)
    assert proc.returncode == 2
    error = junit_cases(junit)["main"].find("error")
    assert error is not None and "no cluster is running" in (error.get("message") or "")


def test_reports_go_to_the_output_directory_not_next_to_the_script() -> None:
    writers = [p for p in (REPO / "testscripts").rglob("*.py") if "write_report(" in p.read_text()]
    assert len(writers) == 4
    for script in writers:
        text = script.read_text()
        assert "__file__" not in text and "driver.out_dir" in text, script


@pytest.mark.vm
def test_junit_for_an_image_build_failure(tmp_path: Path, xdg_cache: Path) -> None:
    topology = tmp_path / "lab.toml"
    topology.write_text('[images.default]\npackages = ["no-such-package-photon"]\n[nodes.a]\n')
    script = tmp_path / "t.py"
    script.write_text("start_all()\n")
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "driver", "run", "--topology", str(topology), str(script)]
    proc = subprocess.run(
        [*argv, "--junit-xml", str(junit)],
        capture_output=True,
        text=True,
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]  # a package Debian does not have
    error = junit_cases(junit)["main"].find("error")
    assert error is not None and "no-such-package-photon" in ET.tostring(error, "unicode")


def test_shell_completion_knows_the_verbs() -> None:
    for shell in ("bash", "zsh"):
        proc = subprocess.run(
            [sys.executable, "-m", "driver", "--print-completion", shell],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        for word in ("cluster", "fresh-smoke", "--junit-xml", "--topology"):
            assert word in proc.stdout, (shell, word)
    flake = (REPO / "flake.nix").read_text()
    assert "installShellCompletion --cmd photon-driver" in flake


def test_double_dash_ends_options_once() -> None:
    from driver.cli.cluster_cmds import remote_command
    from driver.cli.grammar import parser

    args = parser().parse_args(["ssh", "node04", "--", "grep", "--", "-x", "f"])
    assert args.node == "node04"
    assert remote_command(args.remote) == ["grep", "--", "-x", "f"]
    args = parser().parse_args(["cluster", "ssh", "node04", "hostname"])
    assert remote_command(args.remote) == ["hostname"]


def test_old_run_directories_are_pruned(tmp_path: Path) -> None:
    import os

    from driver.log import Logger
    from driver.state import runs

    for number in range(1, 9):
        run = tmp_path / str(900000 + number)
        run.mkdir()
        os.utime(run, (number, number))
    alive = tmp_path / str(os.getpid())  # a run still going is never removed
    alive.mkdir()
    os.utime(alive, (0, 0))
    runs.prune(tmp_path, keep=runs.KEEP_RUNS, logger=Logger(open(os.devnull, "w")))
    left = sorted(p.name for p in tmp_path.iterdir())
    newest = [str(900000 + n) for n in range(9 - (runs.KEEP_RUNS - 1), 9)]
    assert left == sorted([*newest, str(os.getpid())])
