"""Shared fixtures: one minimal image per session, two booted nodes shared by DSL tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from driver.driver import Driver, socket_prefix
from driver.images.builder import Image, build_image
from driver.log import Logger
from driver.realise import debian_specs, image_recipe
from driver.topology import load_topology

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
    """node01 and node02 of the minimal profile on one VLAN, booted once for the session."""
    topology = load_topology()
    state = tmp_path_factory.mktemp("two")
    logger = Logger()
    specs = debian_specs(
        topology, topology.profile("minimal"), state, cache_root, logger, ["node01", "node02"]
    )
    driver = Driver(specs, state, logger, os.environ, out_dir=state / "out", cache_dir=cache_root)
    try:
        driver.start_all()
        for machine in driver.machines:
            machine.wait_for_unit("multi-user.target", timeout=120)
        yield driver
    finally:
        driver.cleanup()
    assert leftovers(state) == []


def photon_env(xdg_cache: Path, vm_dir: Path) -> dict[str, str]:
    """Environment for a photon-driver subprocess sharing the session's image cache."""
    env = dict(os.environ)
    env.update(XDG_CACHE_HOME=str(xdg_cache), PHOTON_VM_DIR=str(vm_dir), NO_COLOR="1")
    return env
