"""The flake's app wrappers and check script, run for real (issue 16). Their exact text comes
from the evaluated flake (tests/nixeval.py: the stubbed nixpkgs keeps each script's text);
the store paths in it are replaced by a real installed photon-driver and a directory of
Debian-built specs for one minimal node (the same JSON contract the Nix specs follow), and
then every verb a PhotonCloud engineer types runs end to end on real QEMU: `nix run
.#cluster -- build | start | status | ssh | smoke | matrix | fresh-smoke | stop | clean`,
`nix run .#driver -- SCRIPT`, and the `checks.*.minimal` build script writing junit.xml and
logs/<node>.vm.log into $out. What is not shown here: Nix building these derivations itself
(the stubs do not build), and PhotonCloud's own services (the smoke fails on bare nodes, as
it must: the test checks that it ran, not that it passed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.config.topology import load_topology
from driver.images.builder import Image
from driver.images.profile_specs import debian_specs
from driver.log import Logger
from junit_schema import junit_cases
from nixeval import NIXPKGS_LIB, REPO, Workspace

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(shutil.which("nix") is None, reason="nix missing (Debian nix-bin)"),
    pytest.mark.skipif(not NIXPKGS_LIB.is_dir(), reason=f"{NIXPKGS_LIB} missing"),
]
SYSTEM = "x86_64-linux"


@dataclass
class Wrappers:
    """The flake's scripts with real paths, and where they keep their state."""

    cluster: Path
    driver: Path
    check: Path
    env: dict[str, str]
    vm_dir: Path
    specs: Path

    def cluster_app(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.cluster), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            cwd=self.vm_dir.parent,
        )


def _text(ws: Workspace, attribute: str, name: str, key: str) -> tuple[str, dict[str, str]]:
    """The script text (``key`` of the derivation called ``name``) and every store output
    path in the closure by derivation name."""
    drvs = ws.derivations(attribute)
    outputs = {d["env"].get("name", ""): d["outputs"]["out"]["path"] for d in drvs.values()}
    text = next(d["env"][key] for d in drvs.values() if d["env"].get("name") == name)
    return str(text), outputs


@pytest.fixture(scope="module")
def wrappers(
    tmp_path_factory: pytest.TempPathFactory,
    installed_driver: Path,
    minimal_image: tuple[Image, float],
    cache_root: Path,
    xdg_cache: Path,
) -> Iterator[Wrappers]:
    root = tmp_path_factory.mktemp("wrappers")
    ws = Workspace.create(root / "flake")
    cluster_text, outputs = _text(ws, f"packages.{SYSTEM}.cluster-app", "photon-cluster", "text")
    driver_text, _ = _text(ws, f"packages.{SYSTEM}.driver-app", "photon-driver-photoncloud", "text")
    check_text, check_outputs = _text(
        ws, f"checks.{SYSTEM}.minimal", "photoncloud-test-minimal", "buildCommand"
    )
    outputs.update(check_outputs)

    # Debian-built specs for node01 of the minimal profile, in the Nix specs' layout.
    topology = load_topology()
    build_state = root / "build"
    specs = root / "specs"
    specs.mkdir()
    for name, spec in debian_specs(
        topology, topology.profile("minimal"), build_state, cache_root, Logger(), ["node01"]
    ).items():
        doc = json.loads((build_state / name / "spec.json").read_text())
        doc["meta"]["provision_ssh_key"] = True  # as Nix-built specs ask (no baked-in key)
        (specs / f"{name}.json").write_text(json.dumps(doc))
        del spec

    driver_bin = f"{outputs['photoncloud-test-driver-0.1.0']}/bin/photon-driver"
    replacements = {
        driver_bin: str(installed_driver),
        outputs["photoncloud-node-specs"]: str(specs),
        outputs["minimal-node-specs"]: str(specs),
        # only printed by `build`: the Nix store image is not built here
        outputs["photoncloud-nix-store-image"]: str(root / "nix-store-image-not-built-here"),
    }

    def real(text: str) -> Path:
        for store_path, path in replacements.items():
            assert store_path in text or "-node-specs" in store_path or "image" in path
            text = text.replace(store_path, path)
        for path in {w for w in text.split() if w.startswith("/nix/store/")}:
            assert Path(path.rstrip(";\"'")).exists(), f"{path} is neither replaced nor real"
        script = root / f"script-{abs(hash(text))}.sh"
        script.write_text(text)
        return script

    vm_dir = root / "vm"
    wrappers = Wrappers(
        cluster=real("#!/bin/bash\n" + cluster_text),
        driver=real("#!/bin/bash\n" + driver_text),
        check=real(check_text),
        env=photon_env(xdg_cache, vm_dir),
        vm_dir=vm_dir,
        specs=specs,
    )
    try:
        yield wrappers
    finally:
        wrappers.cluster_app("stop")
        assert leftovers(Path(f"{vm_dir}-photoncloud")) == []


def test_cluster_verbs_through_the_wrapper(wrappers: Wrappers) -> None:
    build = wrappers.cluster_app("build")
    assert build.returncode == 0 and str(wrappers.specs) in build.stdout, build.stderr

    start = wrappers.cluster_app("start")  # `cluster start --specs DIR`: the broken line
    assert start.returncode == 0, start.stderr[-3000:]
    assert "node01" in start.stdout and " up " in start.stdout, start.stdout

    status = wrappers.cluster_app("status")
    assert status.returncode == 0 and "node01" in status.stdout, status.stderr

    ssh = wrappers.cluster_app("ssh", "node01", "--", "hostname")
    assert ssh.returncode == 0 and ssh.stdout.strip() == "node01", ssh.stderr

    # PhotonCloud's scripts on a bare node: they must run (JUnit written, checks failing),
    # not stop at the command line (exit 2).
    for verb in ("smoke", "matrix"):
        junit = wrappers.vm_dir.parent / f"{verb}.xml"
        proc = wrappers.cluster_app(verb, "--junit-xml", str(junit))
        assert proc.returncode == 1, (verb, proc.stderr[-3000:])
        assert junit_cases(junit), verb

    stop = wrappers.cluster_app("stop")
    assert stop.returncode == 0, stop.stderr
    assert leftovers(Path(f"{wrappers.vm_dir}-photoncloud")) == []
    clean = wrappers.cluster_app("clean")
    assert clean.returncode == 0 and not Path(f"{wrappers.vm_dir}-photoncloud").exists()


def test_fresh_smoke_and_driver_app(wrappers: Wrappers, tmp_path: Path) -> None:
    junit = tmp_path / "fresh.xml"
    fresh = wrappers.cluster_app("fresh-smoke", "--cold", "--junit-xml", str(junit))
    assert fresh.returncode == 1, fresh.stderr[-3000:]  # booted, ran, failed on bare nodes
    assert "main" in junit_cases(junit)

    script = tmp_path / "one.py"
    script.write_text("start_all()\nwith subtest('up'):\n    node01.succeed('true')\n")
    junit = tmp_path / "driver.xml"
    proc = subprocess.run(
        ["bash", str(wrappers.driver), str(script), "--junit-xml", str(junit)],
        capture_output=True,
        text=True,
        env=wrappers.env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "up" in junit_cases(junit)


def test_check_script_writes_junit_and_logs_into_out(wrappers: Wrappers, tmp_path: Path) -> None:
    out, build_tmp = tmp_path / "out", tmp_path / "build-tmp"
    build_tmp.mkdir()
    env = {**os.environ, "out": str(out), "TMPDIR": str(build_tmp), "PATH": os.environ["PATH"]}
    proc = subprocess.run(
        ["bash", "-e", str(wrappers.check)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=build_tmp,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert junit_cases(out / "junit.xml")
    assert (out / "logs" / "node01.vm.log").stat().st_size > 0
    assert leftovers(build_tmp) == []
    assert REPO.exists()
