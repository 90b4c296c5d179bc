"""Shared fixtures: one minimal image per session, two booted nodes shared by DSL tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nixos_shape
from driver.config.topology import load_topology
from driver.images.builder import Image, build_image
from driver.images.profile_specs import debian_specs, image_recipe
from driver.log import Logger
from driver.run.driver import Driver, RunContext, socket_prefix

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def xdg_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XDG_CACHE_HOME for the session (PHOTON_TEST_XDG_CACHE reuses one across sessions)."""
    env = os.environ.get("PHOTON_TEST_XDG_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("xdg")


@pytest.fixture(scope="session")
def cache_root(xdg_cache: Path) -> Path:
    """The image cache the tests share (what photon-driver uses under that XDG dir)."""
    return xdg_cache / "photoncloud-test-driver"


@pytest.fixture(scope="session")
def minimal_image(cache_root: Path) -> tuple[Image, float]:
    """The minimal profile's image, built once per session (from scratch unless
    PHOTON_TEST_XDG_CACHE points at a warm cache); returns (image, build seconds)."""
    import time

    started = time.monotonic()
    image = build_image(image_recipe(load_topology(), "minimal"), cache_root, Logger())
    return image, time.monotonic() - started


def qemu_pids(pattern: str) -> list[int]:
    """PIDs of processes whose command line contains ``pattern``."""
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


def leftovers(state: Path) -> list[int]:
    """QEMU or vde_switch processes that belong to the run with state dir ``state``."""
    return qemu_pids(str(state)) + qemu_pids(socket_prefix(state))


@pytest.fixture(scope="session")
def two_nodes(
    minimal_image: tuple[Image, float], cache_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Driver]:
    """node01 and node02 of the minimal profile on one VLAN, booted once for the session,
    both shaped like NixOS for the backdoor (tests/nixos_shape.py): the whole DSL module runs
    with only the backdoor unit's own PATH."""
    topology = load_topology()
    state = tmp_path_factory.mktemp("two")
    logger = Logger()
    specs = debian_specs(
        topology,
        topology.profile("minimal"),
        state,
        cache_root,
        logger,
        ["node01", "node02"],
        extra_files=nixos_shape.FILES,
    )
    context = RunContext(state, logger, os.environ, state / "out", cache_root)
    with Driver(specs, context) as driver:
        driver.start_all()
        for machine in driver.machines:
            machine.wait_for_unit("multi-user.target", timeout=120)
        yield driver
    assert leftovers(state) == []


def photon_cli(
    env: dict[str, str],
    *args: str,
    profile: str = "reference",
    cwd: Path | None = None,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """``photon-driver --profile PROFILE ARGS`` from this checkout, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "driver", "--profile", profile, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def photon_env(xdg_cache: Path, vm_dir: Path) -> dict[str, str]:
    """Environment for a photon-driver subprocess sharing the session's image cache."""
    env = dict(os.environ)
    env.update(XDG_CACHE_HOME=str(xdg_cache), PHOTON_VM_DIR=str(vm_dir), NO_COLOR="1")
    return env


@pytest.fixture(scope="session")
def installed_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``photon-driver`` from a non-editable install of this checkout into a fresh venv
    outside it (dependencies from the system site-packages)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        capture_output=True,
    )
    python = venv / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(REPO)],
        capture_output=True,
        text=True,
        cwd=venv,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    where = subprocess.run(
        [str(python), "-c", "import driver; print(driver.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv,
    ).stdout
    assert where.startswith(str(venv)), f"driver imported from {where}, not the venv"
    return venv / "bin" / "photon-driver"


def _session_processes(basetemp: Path) -> list[int]:
    """QEMUs whose command line names this session's temporary tree, and the vde_switches
    of their socket directories (a detached cluster's processes have init as parent, so
    they outlive a test that did not stop them)."""
    import re

    qemus = qemu_pids(f"qemu-system.*{basetemp}")
    sockets: set[str] = set()
    for pid in qemus:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            sockets |= set(re.findall(r"(/tmp/photon-[0-9a-f]{10}-[^/\x00]+)/", cmdline))
    switches = [p for s in sockets for p in qemu_pids(f"vde_switch --sock {s}/")]
    return qemus + switches


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """SIGTERM ends the session as Ctrl-C does (every finalizer runs: a test's `cluster
    clean` too); at the end, any QEMU or vde_switch the session left is killed and the
    session fails."""
    import signal

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, on_term)
    basetemp = tmp_path_factory.getbasetemp()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        left = _session_processes(basetemp)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        assert left == [], f"the test session left processes running (killed): {left}"


@pytest.fixture()
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(params=["vm", "container"])
def node_kind(request: pytest.FixtureRequest) -> str:
    """The kind every node of a conformance test's topology is (``kind`` in the topology):
    the suite runs once on VM nodes and once with every node a container node."""
    return str(request.param)
