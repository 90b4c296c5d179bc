"""A run's options (issue 31): typed and read once from the command line (``RunOptions``),
each default written once, and no code asking an argparse Namespace whether it has one."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from driver.cli.grammar import parser
from driver.session.options import RunMode, RunOptions

REPO = Path(__file__).resolve().parent.parent


def namespace_probes(source: str) -> list[int]:
    """Lines of ``getattr(args, ...)`` / ``getattr(x.args, ...)`` calls in ``source``."""
    found = []
    for call in ast.walk(ast.parse(source)):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in ("getattr", "hasattr")
            and call.args
            and ast.unparse(call.args[0]).split(".")[-1] == "args"
        ):
            found.append(call.lineno)
    return found


def test_no_namespace_probing_anywhere_in_the_driver() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in (REPO / "driver").rglob("*.py")
        for line in namespace_probes(path.read_text())
    ]
    assert found == []
    assert namespace_probes("x = getattr(inv.args, 'repeat', 1)\n") == [1]


def test_the_grammar_defaults_are_the_options_defaults() -> None:
    given = RunOptions.of(parser().parse_args(["run", "a.py"]))
    defaults = RunOptions()
    for name in ("global_timeout", "progress_after", "rerun_failed", "repeat", "keep_on_failure"):
        assert getattr(given, name) == getattr(defaults, name), name
    assert given.scripts == (Path("a.py"),) and given.command == "run"


def test_options_a_command_does_not_take_keep_their_defaults() -> None:
    options = RunOptions.of(parser().parse_args(["cluster", "start"]))
    assert dataclasses.replace(options, command="run") == RunOptions()


def test_given_options_are_read() -> None:
    args = ["run", "--global-timeout", "12", "--subtest", "a", "--subtest", "b", "x.py"]
    options = RunOptions.of(parser().parse_args(args))
    assert options.global_timeout == 12.0 and options.subtest == ("a", "b")


def test_a_repetition_writes_its_own_outputs(tmp_path: Path) -> None:
    base = RunOptions(junit_xml=tmp_path / "j.xml", repeat=3)
    third = base.repetition_of(3, tmp_path / "run-3")
    assert third.repetition == 3 and third.output_dir == tmp_path / "run-3"
    assert third.junit_xml == tmp_path / "run-3" / "junit.xml" and third.repeat == 3
    assert RunOptions().repetition_of(1, tmp_path).junit_xml is None


@pytest.mark.parametrize(
    ("argv", "mode", "settled"),
    [
        (["run", "a.py"], RunMode.FRESH, False),
        (["run", "--reuse", "a.py"], RunMode.REUSE, False),
        (["run", "--keep-on-failure", "a.py"], RunMode.KEEP, False),
        (["run", "--settled", "a.py"], RunMode.FRESH, True),
        (["run", "--settled", "--keep-on-failure", "a.py"], RunMode.KEEP, True),
        (["smoke"], RunMode.REUSE, False),
        (["fresh-smoke"], RunMode.FRESH, True),
        (["fresh-smoke", "--cold"], RunMode.FRESH, False),
        (["fresh-matrix", "--keep-on-failure"], RunMode.KEEP, True),
        (["fresh-smoke", "--containers"], RunMode.FRESH, False),
    ],
)
def test_the_command_line_decides_the_mode(argv: list[str], mode: RunMode, settled: bool) -> None:
    options = RunOptions.of(parser().parse_args(argv))
    assert (options.mode, options.from_settled) == (mode, settled)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "--settled", "--reuse", "a.py"], "--settled starts fresh nodes"),
        (["run", "--keep-on-failure", "--reuse", "a.py"], "--keep-on-failure keeps fresh"),
        (["run", "--repeat", "2", "-I"], "--repeat runs scripts again"),
        (["run", "--settled", "--containers", "a.py"], "container nodes have none"),
    ],
)
def test_clashing_modes_are_one_usage_line(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from driver.cli import main

    code = main(argv, {"PHOTON_VM_DIR": str(tmp_path / "vm"), "HOME": str(tmp_path)})
    err = capsys.readouterr().err.strip()
    assert code == 2 and said in err and "\n" not in err
    assert not (tmp_path / "vm" / "runs").exists()  # nothing was built or booted


def test_containers_makes_the_container_ok_nodes_containers() -> None:
    from driver.config.containers import with_containers
    from driver.config.spec import NodeKind
    from driver.config.topology import load_topology

    topology = load_topology()
    assert all(n.kind is NodeKind.VM for n in topology.nodes.values())
    mixed = with_containers(topology)
    kinds = {name: node.kind.value for name, node in mixed.nodes.items()}
    assert kinds == {
        "node01": "container",
        "node02": "container",
        "node03": "container",
        "node04": "vm",
        "node05": "vm",
        "node06": "container",
    }
