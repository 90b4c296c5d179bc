"""Pure logic: spec and topology validation, metrics parsing, script check, cpio, JUnit."""

from __future__ import annotations

import json
import re
import shutil
import stat
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from driver.bundled import default_topology
from driver.config.spec import Disk, Forward, Nic, NodeSpec, load_spec, spec_from_dict
from driver.config.topology import load_topology
from driver.errors import UsageError
from driver.images import cpio
from driver.images.recipe import ImageRecipe
from driver.machine.accel import Accel
from driver.machine.argv import Paths, qemu_argv
from driver.metrics import MetricsParseError, parse_metrics
from driver.reports.report import SubtestResult, write_junit
from driver.scriptrun.script_check import check_script

VALID = default_topology().read_text()
NODES = default_topology().parent


def write_topology(tmp_path: Path, text: str) -> Path:
    """``text`` as a cluster.toml beside a copy of the service files it names."""
    shutil.copytree(NODES / "reference", tmp_path / "reference", dirs_exist_ok=True)
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('role = "worker"', 'role = "wrker"', r"nodes\.node04\.role: unknown role 'wrker'"),
        ('"10.100.0.12/24"', '"10.100.0.11/24"', r"node02\.addresses\.cluster: duplicate address"),
        ("port = 2379, protocol", "port = 70000, protocol", r"endpoints\[0\]\.port: bad port"),
        (
            'vcpus = 1\nmemory_mib = 768\naddresses = { cluster = "10.100.0.31/24" }',
            'vcpus = 1\nmemroy_mib = 768\naddresses = { cluster = "10.100.0.31/24" }',
            r"nodes\.node06\.memroy_mib: unknown field \(known: role, vcpus, memory_mib",
        ),
        (
            'nodes = ["node01"]\nunit = "haproxy',
            'nodes = ["node09"]\nunit = "haproxy',
            r"unknown node 'node09'",
        ),
        (
            'protocol = "udp" }]\nfiles = { "/etc/dnsmasq',
            'protocol = "sctp" }]\nfiles = { "/etc/dnsmasq',
            r"protocol: must be one of",
        ),
        (
            "settled = '''",
            "settled = 3 #'''",
            r"services\[7\]\(prometheus\)\.settled: must be str, got 3",
        ),
    ],
)
def test_topology_errors_name_file_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in VALID, old
    path = write_topology(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(UsageError) as info:
        load_topology(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path))
    assert re.search(message, text), text


def test_topology_invalid_toml_and_missing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid TOML"):
        load_topology(write_topology(tmp_path, "[nodes\n"))
    with pytest.raises(UsageError, match="not found"):
        load_topology(tmp_path / "nope.toml")


def test_topology_shape_and_boot_order() -> None:
    topo = load_topology()
    assert list(topo.nodes) == [f"node0{i}" for i in range(1, 7)]
    assert topo.boot_groups() == [["node01", "node02", "node03"], ["node04", "node05", "node06"]]
    pc = topo.profile("photoncloud")
    names = {s.name for s in pc.services}
    assert {
        "chainfire",
        "flaredb",
        "iam",
        "prismnet",
        "flashdns",
        "fiberlb",
        "plasmavmc",
        "lightningstor",
        "coronafs",
        "k8shost",
        "apigateway",
        "nightlight",
        "creditservice",
    } <= names
    ref = topo.profile("reference")
    assert not names & {s.name for s in ref.services}, "stand-ins must keep their own names"
    assert ref.service("etcd").nodes == ("node01", "node02", "node03")
    # Prometheus settles once it has scraped every target; the others when active.
    assert ref.settle_checks_on("node06") == [ref.service("prometheus").settled]
    assert "api/v1/targets" in ref.service("prometheus").settled
    assert ref.settle_checks_on("node01") == []
    with pytest.raises(UsageError, match="unknown profile 'nope'"):
        topo.profile("nope")


def test_spec_validation(tmp_path: Path) -> None:
    base = {"name": "n1", "kernel": "/k", "initrd": "/i", "cmdline": "x"}
    spec = spec_from_dict(base | {"forwards": [{"guest_port": 22}]}, "s.json")
    assert spec.forwards == (Forward(22),)
    for bad, msg in [
        ({"vcpus": 0}, "vcpus' must be positive"),
        ({"accel": "hvf"}, "accel"),
        ({"bogus": 1}, "unknown field 'bogus'"),
        ({"forwards": [{"guest_port": 99999}]}, "bad port 99999"),
    ]:
        with pytest.raises(UsageError, match=msg):
            spec_from_dict(base | bad, "s.json")
    with pytest.raises(UsageError, match=r"\(node n1\)\.kernel: missing field"):
        spec_from_dict({"name": "n1"}, "s.json")
    path = tmp_path / "n.json"
    path.write_text("{ nope")
    with pytest.raises(UsageError, match=r"n\.json:1: invalid JSON"):
        load_spec(path)
    spec.write(path)
    assert load_spec(path) == spec


def test_qemu_argv_tcg_and_kvm(tmp_path: Path) -> None:
    spec = NodeSpec(
        name="n1",
        kernel="/k",
        initrd="/i",
        cmdline="console=ttyS0",
        disks=(Disk("/base.img"),),
        nics=(Nic(1, "52:54:00:00:00:01"),),
        forwards=(Forward(80, "tcp", 0, "http"),),
        cpu_tcg="qemu64",
        cpu_kvm="host",
    )
    paths = Paths(tmp_path / "n1", tmp_path / "s")
    args = [spec, paths, [tmp_path / "d.qcow2"], {1: tmp_path / "v.ctl"}, [4242], Path("/i")]
    tcg = qemu_argv(spec, Accel("tcg", ""), *args[1:])  # type: ignore[arg-type]
    kvm = qemu_argv(spec, Accel("kvm", ""), *args[1:])  # type: ignore[arg-type]
    assert tcg[1:5] == ["-accel", "tcg,tb-size=64", "-cpu", "qemu64"]
    assert kvm[1:5] == ["-accel", "kvm", "-cpu", "host"]
    joined = " ".join(kvm)
    assert "hostfwd=tcp:127.0.0.1:4242-:80" in joined and "restrict=on" in joined
    assert f"logfile={paths.console_log}" in joined
    assert "virtserialport,chardev=backdoor,name=photon.backdoor" in joined


def test_metrics_parser() -> None:
    text = '# HELP x y\n# TYPE up gauge\nup{job="a",i="b"} 1\nreqs_total 4.5e3 1700000\n'
    metrics = parse_metrics(text)
    assert metrics.get("up", job="a") == 1.0 and metrics.get("reqs_total") == 4500.0
    assert metrics.types == {"up": "gauge"}
    with pytest.raises(MetricsParseError, match="line 1"):
        parse_metrics("<html>not metrics</html>")
    with pytest.raises(MetricsParseError, match="no samples"):
        parse_metrics("# only comments\n")


def test_script_check(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    ok = "import os\nstart_all()\ndef f():\n    return node01.succeed('x') + os.sep\nf()\n"
    check_script(script, ok, ["node01", "node02"])
    with pytest.raises(UsageError, match=r"s\.py:2: syntax error"):
        check_script(script, "start_all()\nif\n", ["node01"])
    topology = load_topology()
    with pytest.raises(UsageError, match=r"s\.py:3: unknown node 'node03' \(not part of this run"):
        check_script(script, "start_all()\n\nnode03.succeed('x')\n", ["node01"], topology)
    with pytest.raises(UsageError, match=r"s\.py:1: unknown node 'node09' \(not a node"):
        check_script(script, "node09.succeed('x')\n", ["node01"], topology)
    with pytest.raises(UsageError, match=r"s\.py:2: undefined name 'stat_all'"):
        check_script(script, "x = 1\nstat_all()\n", ["node01"])


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("node01.wait_for_unitt('x')\n", r"s\.py:1: node01\.wait_for_unitt: a node has no"),
        ("t.assertEquall(1, 1)\n", r"s\.py:1: t\.assertEquall: TestCase has no"),
        ("m = node01\nm.succed('x')\n", r"s\.py:2: m\.succed: a node has no"),
        ("for w in [node01, node02]:\n    w.wiat()\n", r"s\.py:2: w\.wiat: a node has no"),
        ("for w in machines:\n    w.nope\n", r"s\.py:2: w\.nope: a node has no"),
        ("profile.service('etcdd')\n", r"s\.py:1: profile reference has no service 'etcdd'"),
        ("profile.service('etcd').endpoint('nbdx')\n", r"s\.py:1: no endpoint 'nbdx'"),
        ("topology.nodez\n", r"s\.py:1: topology\.nodez: Topology has no"),
    ],
)
def test_script_check_sees_attributes_and_topology_names(
    tmp_path: Path, source: str, error: str
) -> None:
    script = tmp_path / "s.py"
    started = time.monotonic()
    with pytest.raises(UsageError, match=error):
        check_script(script, source, ["node01", "node02"], load_topology(), "reference")
    assert time.monotonic() - started < 1.0
    fine = "node01.succeed('x')\nt.assertEqual(1, 1)\nprofile.service('etcd')\ntopology.nodes\n"
    check_script(script, fine, ["node01"], load_topology(), "reference")


def test_script_check_cli_actions(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    source = "from driver.scripting.photoncloud import cli\ncli(profile, 'chainfire', 'memberz')\n"
    with pytest.raises(UsageError, match=r"s\.py:2: service chainfire declares no CLI action"):
        check_script(script, source, ["node01"], load_topology(), "photoncloud")


def parse_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    """An independent reader of the newc format: name -> (mode, content)."""
    entries: dict[str, tuple[int, bytes]] = {}
    offset = 0
    while True:
        header = data[offset : offset + 110]
        assert header[:6] == b"070701", f"bad magic at {offset}"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start : name_start + namesize - 1].decode()
        body_start = (name_start + namesize + 3) & ~3
        body = data[body_start : body_start + filesize]
        offset = (body_start + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, body)


def test_cpio_roundtrip() -> None:
    data = cpio.archive(
        [
            cpio.Entry.directory("a"),
            cpio.Entry.file("a/b", b"hi", 0o600),
            cpio.Entry.symlink("a/c", "b"),
            cpio.Entry.file("a/odd-length-name", b"xyz" * 7, 0o755),
        ]
    )
    assert len(data) % 4 == 0
    entries = parse_newc(data)
    assert entries["a"][0] == stat.S_IFDIR | 0o755
    assert entries["a/b"] == (stat.S_IFREG | 0o600, b"hi")
    assert entries["a/c"] == (stat.S_IFLNK | 0o777, b"b")
    assert entries["a/odd-length-name"] == (stat.S_IFREG | 0o755, b"xyz" * 7)


def test_cache_key_covers_files_and_packages() -> None:
    a = ImageRecipe(name="x", extra_files={"etc/a": "1"})
    assert a.cache_key() == ImageRecipe(name="x", extra_files={"etc/a": "1"}).cache_key()
    assert a.cache_key() != ImageRecipe(name="x", extra_files={"etc/a": "2"}).cache_key()
    assert (
        a.cache_key()
        != ImageRecipe(name="x", packages=("fio",), extra_files={"etc/a": "1"}).cache_key()
    )


def test_junit_parses_back(tmp_path: Path) -> None:
    results = [
        SubtestResult("boot", "s.py", 1.5, output=["line"]),
        SubtestResult("broken", "s.py", 0.2, "failed", "trace\nTestFailure: x", "TestFailure: x"),
        SubtestResult("nested", "s.py", 0.01, "skipped", "no /dev/kvm"),
    ]
    path = tmp_path / "junit.xml"
    write_junit(results, "suite", path)
    root = ET.parse(path).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["boot", "broken", "nested"]
    times = {name: float(c.get("time", "-1")) for name, c in cases.items()}
    assert times == {"boot": 1.5, "broken": 0.2, "nested": 0.01}
    assert cases["broken"].find("failure").get("message") == "TestFailure: x"  # type: ignore[union-attr]
    assert cases["nested"].find("skipped").get("message") == "no /dev/kvm"  # type: ignore[union-attr]
    assert "line" in (cases["boot"].findtext("system-out") or "")


def test_topology_is_plain_toml_for_nix() -> None:
    data = tomllib.loads(VALID)
    json.dumps(data)  # everything builtins.fromTOML returns must be JSON-able too


def test_missing_tool_names_the_package() -> None:
    from driver.errors import ToolMissing
    from driver.hosttools import require

    assert str(ToolMissing("qemu-img", "qemu-utils")).endswith(
        "install the Debian package 'qemu-utils'"
    )
    with pytest.raises(ToolMissing, match="photon-no-such-tool not found on PATH"):
        require("photon-no-such-tool")


def test_mmdebstrap_failures_become_one_line() -> None:
    from driver.images.rootfs import explain_failure

    recipe = ImageRecipe(name="ref")
    cases = {
        "E: Unable to locate package etcd-servr\n": ("package 'etcd-servr' does not exist", 2),
        "W: Failed to fetch http://x\nE: oops": ("no network to the package mirror", 3),
        "tar: write error: No space left on device": ("disk full", 3),
        "E: something else\nE: went wrong": ("mmdebstrap failed: E: something else | E: went", 3),
    }
    for output, (expected, exit_code) in cases.items():
        error = explain_failure(output, recipe)
        message = str(error)
        assert expected in message and "\n" not in message and message.startswith("image 'ref'")
        assert error.exit_code == exit_code, message


def test_photoncloud_contract_page_is_current() -> None:
    from conftest import REPO
    from driver.config.contract import render

    topology = load_topology()
    page = render(topology, topology.profile("photoncloud"))
    assert "`services.photoncloud.node.peers`" in page and "`chainfire.service`" in page
    assert (REPO / "docs" / "photoncloud-contract.md").read_text() == page


def test_readme_table_is_generated_from_the_bench_results() -> None:
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_table", REPO / "bench" / "table.py")
    assert spec is not None and spec.loader is not None
    table = importlib.util.module_from_spec(spec)
    sys.modules["bench_table"] = table  # dataclasses look their module up
    spec.loader.exec_module(table)
    readme = REPO / "README.md"
    assert table.replace_in(readme, table.render()) == readme.read_text()


def test_dsl_reference_is_current_and_lists_only_test_author_methods() -> None:
    from conftest import REPO
    from driver.docs import render

    page = render()
    assert (REPO / "docs" / "dsl.md").read_text() == page
    # The driver's side of a node (its process and control) is not the manual's.
    from driver.machine import Machine
    from driver.machine.node import Node
    from driver.machine.process import QemuProcess

    script_face = set(dir(Machine))
    plumbing = {
        name
        for kind in (Node, QemuProcess)
        for name in dir(kind)
        if not name.startswith("_") and name not in script_face
    }
    assert {"argv", "create_overlays", "detach", "run_logged", "hmp", "check"} <= plumbing
    nodes_section = page[page.index("## Nodes") :]
    for name in plumbing:
        assert f"### `{name}(" not in nodes_section, name
    for name in ("wait_for_unit", "succeed", "start_all", "subtest", "allow_problem"):
        assert f"### `{name}(" in page


def test_code_size_limits() -> None:
    """No module over 400 lines, no class over 300 (docs/architecture.md)."""
    import ast

    from conftest import REPO

    for path in sorted((REPO / "driver").rglob("*.py")):
        text = path.read_text()
        assert text.count("\n") <= 400, f"{path}: {text.count(chr(10))} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 300, f"{path}: class {node.name} has {length} lines"


def test_every_cli_option_explains_itself() -> None:
    import argparse

    from driver.cli.grammar import parser

    top = parser()
    assert "first steps" in top.format_help() and "fresh-smoke" in top.format_help()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert {"fresh-storage-bench", "fresh-smoke", "smoke", "build", "ssh"} <= set(sub.choices)
    for name, command in [("photon-driver", top), *sub.choices.items()]:
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{name}: {action.dest} has no help"


def test_every_package_is_listed_for_installation() -> None:
    from conftest import REPO

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "driver").rglob("__init__.py")
    }
    assert found <= listed, f"not installed: {sorted(found - listed)}"
