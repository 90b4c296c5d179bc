"""The whole flake, evaluated (issue 8) on Debian's Nix with path inputs: the real nixpkgs
lib plus typed stubs for nixpkgs, a contract stub for photoncloud (tests/nixeval.py). What a
real NixOS host adds (building and booting the systems) is not shown here."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driver.config.spec import spec_from_dict
from driver.config.topology import load_topology
from nixeval import NIXPKGS_LIB, REPO, Workspace

pytestmark = [
    pytest.mark.skipif(shutil.which("nix") is None, reason="nix missing (Debian nix-bin)"),
    pytest.mark.skipif(not NIXPKGS_LIB.is_dir(), reason=f"{NIXPKGS_LIB} missing"),
]
SYSTEM = "x86_64-linux"
NODES = [f"node0{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.create(tmp_path_factory.mktemp("flake"))


@pytest.fixture()
def broken(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh copy that a test may break."""
    yield Workspace.create(tmp_path)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_flake_show_and_check_no_build_succeed(ws: Workspace) -> None:
    show = ws.nix("flake", "show", ws.flake())
    assert show.returncode == 0, show.stderr
    for needle in ["smoke", "minimal", "driver", "cluster", *NODES, "photoncloud-nix-store-image"]:
        assert needle in show.stdout
    check = ws.nix("flake", "check", "--no-build", ws.flake())
    assert check.returncode == 0, check.stderr


def test_one_check_per_bundled_script(ws: Workspace) -> None:
    proc = ws.nix("eval", "--json", ws.flake(f"checks.{SYSTEM}"), "--apply", "builtins.attrNames")
    assert proc.returncode == 0, proc.stderr
    checks = set(json.loads(proc.stdout))
    scripts = {
        "photoncloud-" + p.stem.replace("_", "-")
        for p in (REPO / "testscripts").glob("*.py")
        if p.name != "minimal.py"
    }
    assert scripts <= checks and "minimal-minimal" in checks, checks
    assert {"smoke", "minimal"} <= checks


def test_nixpkgs_pin_has_qemu_qmp() -> None:
    # python3Packages.qemu-qmp entered nixpkgs in August 2025 (first release: 25.11); the
    # driver's package needs it, so the pin must be that release or newer.
    text = (REPO / "flake.nix").read_text()
    assert "py.qemu-qmp" in text
    match = re.search(r'nixpkgs\.url = "github:NixOS/nixpkgs/nixos-(\d+)\.(\d+)"', text)
    assert match, "nixpkgs must be pinned to a NixOS release branch"
    assert (int(match[1]), int(match[2])) >= (25, 11)


def test_specs_point_at_files_of_the_right_derivations(ws: Workspace) -> None:
    specs: dict[str, Any] = ws.eval_json("lib.nodeSpecs.photoncloud")
    assert sorted(specs) == NODES
    store_image = ws.eval_raw(f"packages.{SYSTEM}.storeImage.outPath")
    assert store_image.endswith("-photoncloud-nix-store-image")
    for name, doc in specs.items():
        spec = spec_from_dict(doc, f"nodeSpecs.{name}")
        toplevel = ws.eval_raw(f"nixosConfigurations.{name}.config.system.build.toplevel.outPath")
        assert toplevel.endswith(f"-nixos-system-{name}-25.11")
        assert spec.kernel == f"{toplevel}/kernel" and spec.initrd == f"{toplevel}/initrd"
        assert spec.cmdline.startswith(f"init={toplevel}/init ")
        store, root = spec.disks
        # One shared image file (not the derivation's directory) for every node ...
        assert (store.base, store.serial, store.overlay) == (
            f"{store_image}/nix-store.img",
            "nix-store",
            True,
        )
        # ... and a blank per-node root disk.
        assert (root.base, root.serial) == ("", "root") and root.size_mib > 0


def test_store_image_holds_every_nodes_closure_without_a_vm(ws: Workspace) -> None:
    drvs = ws.derivations(f"packages.{SYSTEM}.storeImage")
    image = next(d for d in drvs.values() if d["env"].get("name") == "photoncloud-nix-store-image")
    assert "mkfs.erofs" in image["env"]["buildCommand"]
    assert "--tar=f" in image["env"]["buildCommand"]
    assert "kvm" not in image["env"].get("requiredSystemFeatures", "")
    closure = next(d for d in drvs.values() if d["env"].get("name") == "closure-info")
    roots = closure["env"]["rootPaths"].split()
    assert sorted(Path(r).name.split("-", 1)[1] for r in roots) == [
        f"nixos-system-{n}-25.11" for n in NODES
    ]


def test_units_and_clis_in_specs_match_the_contract(ws: Workspace) -> None:
    profile = load_topology().profile("photoncloud")
    specs = ws.eval_json("lib.nodeSpecs.photoncloud")
    for name in NODES:
        expected = {s.name: {"unit": s.unit, "cli": s.cli} for s in profile.services_on(name)}
        assert specs[name]["meta"]["services"] == expected
        assert specs[name]["meta"]["provision_ssh_key"] is True
    assert "chainfire" in specs["node01"]["meta"]["services"]
    assert "apigateway" in specs["node06"]["meta"]["services"]
    minimal = ws.eval_json("lib.nodeSpecs.minimal")
    assert all(doc["meta"]["services"] == {} for doc in minimal.values())


def test_node_modules_give_the_backdoor_and_checks_what_they_need(ws: Workspace) -> None:
    config = "nixosConfigurations.{}.config"
    path = ws.eval_json(config.format("node04") + ".systemd.services.photon-backdoor.path")
    names = " ".join(str(p) for p in path)
    for tool in ("coreutils", "systemd", "iproute2", "qemu_kvm", "busybox"):
        assert f"-{tool}" in names
    assert "/run/current-system/sw" in path
    assert not any(
        "qemu" in str(p)
        for p in ws.eval_json(config.format("node01") + ".systemd.services.photon-backdoor.path")
    )
    etc = ws.eval_json(config.format("node04") + '.environment.etc."photon/busybox".source')
    assert etc.endswith("-busybox-static/bin/busybox")
    packages = ws.eval_json(config.format("node03") + ".environment.systemPackages")
    assert any(p.endswith("-dnsutils") for p in packages)
    filesystems = ws.eval_json(config.format("node02") + ".fileSystems")
    assert filesystems["/nix/store"]["fsType"] == "erofs"
    assert filesystems["/nix/store"]["device"] == "/dev/disk/by-id/virtio-nix-store"
    assert filesystems["/"]["autoFormat"] is True
    wait_target = ws.eval_json(
        config.format("node05") + '.systemd.units."photon-active@.target".text'
    )
    assert wait_target == (REPO / "driver/images/guest/photon-active@.target").read_text()


@pytest.mark.parametrize(
    ("check", "profile", "script"),
    [
        ("smoke", "photoncloud", "smoke.py"),
        ("minimal", "minimal", "minimal.py"),
    ],
)
def test_checks_run_the_driver_in_the_sandbox(
    ws: Workspace, check: str, profile: str, script: str
) -> None:
    drvs = ws.derivations(f"checks.{SYSTEM}.{check}")
    test = next(d for d in drvs.values() if d["env"].get("name") == f"photoncloud-test-{check}")
    assert test["env"]["requiredSystemFeatures"].split() == ["kvm", "nixos-test"]
    command = test["env"]["buildCommand"]
    assert "HOME=$TMPDIR PHOTON_VM_DIR=$TMPDIR/vms XDG_CACHE_HOME=$TMPDIR/cache" in command
    assert re.search(rf"--profile {profile} --topology /nix/store/\S+-cluster\.toml run", command)
    assert re.search(rf"--specs /nix/store/\S+-{profile}-node-specs", command)
    assert re.search(rf"--junit-xml \$out/junit.xml .* /nix/store/\S+-{script}", command)
    assert "vm.log" in command


def test_misspelt_option_fails_with_nix_own_message(broken: Workspace) -> None:
    edit(broken.repo / "nodes" / "common.nix", "networking.useDHCP", "networking.useDHCPP")
    proc = broken.nix("flake", "check", "--no-build", broken.flake())
    assert proc.returncode != 0
    assert "The option `networking.useDHCPP' does not exist" in proc.stderr


def test_missing_contract_option_fails_with_nix_own_message(broken: Workspace) -> None:
    contract = broken.root / "photoncloud" / "cluster.toml"
    edit(contract, '"address", "peers"]', '"address"]')
    proc = broken.nix("flake", "check", "--no-build", broken.flake())
    assert proc.returncode != 0
    assert "The option `services.photoncloud.node.peers' does not exist" in proc.stderr


def test_unit_the_photoncloud_flake_lacks_stops_evaluation(broken: Workspace) -> None:
    contract = broken.root / "photoncloud" / "cluster.toml"
    edit(contract, 'unit = "chainfire.service"', 'unit = "chainfire-server.service"')
    proc = broken.nix("eval", "--json", broken.flake("lib.nodeSpecs.photoncloud.node01"))
    assert proc.returncode != 0
    assert "service chainfire on node01 declares unit chainfire.service" in proc.stderr


def test_topology_evaluates_to_the_python_data(ws: Workspace) -> None:
    proc = ws.nix("eval", "--json", "--file", str(ws.repo / "nodes" / "topology.nix"))
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout) == tomllib.loads((REPO / "nodes" / "cluster.toml").read_text())


def test_nix_nodes_number_nics_as_nixos_test_nodes(ws: Workspace) -> None:
    """eth0 is the user-mode NIC (DHCP), the VLAN NICs follow in [[vlans]] order, each
    matched by the MAC its node spec gives it (tested on the evaluated configuration)."""
    networks = ws.eval_json("nixosConfigurations.node02.config.systemd.network.networks")
    assert networks["20-user"]["matchConfig"]["Name"] == "eth0"
    specs = ws.eval_json("lib.nodeSpecs.photoncloud")
    nics = specs["node02"]["nics"]
    assert [n["vlan"] for n in nics] == [1]
    cluster = networks["10-vlan-cluster"]
    assert cluster["matchConfig"]["MACAddress"] == nics[0]["mac"] == "52:54:00:64:01:02"
    assert cluster["address"] == ["10.100.0.12/24"]


def test_nix_nodes_keep_the_routes_a_partition_adds(ws: Workspace) -> None:
    """networkd drops routes it did not make when it starts; a partition's blackhole routes
    are laid in by the driver (the Debian images say the same in networkd.conf.d)."""
    network = ws.eval_json("nixosConfigurations.node03.config.systemd.network.config")
    assert network["networkConfig"]["ManageForeignRoutes"] is False
    assert network["networkConfig"]["ManageForeignRoutingPolicyRules"] is False
