"""QEMU command lines from node start specs: every socket a server the driver connects to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driver.config.macs import user_mac
from driver.config.spec import NodeSpec
from driver.errors import InfraError
from driver.machine.accel import Accel


@dataclass(frozen=True)
class Paths:
    """Where one node's sockets and files are."""

    state: Path
    sockets: Path

    @property
    def qmp(self) -> Path:
        """QMP socket."""
        return self.sockets / "qmp"

    @property
    def backdoor(self) -> Path:
        """Backdoor socket."""
        return self.sockets / "bd"

    @property
    def serial(self) -> Path:
        """Serial console socket."""
        return self.sockets / "tty"

    @property
    def console_log(self) -> Path:
        """The console log QEMU writes (``<state>/<node>/vm.log``)."""
        return self.state / "vm.log"


def qemu_argv(
    spec: NodeSpec,
    accel: Accel,
    paths: Paths,
    overlays: list[Path],
    vlan_sockets: Mapping[int, Path],
    host_ports: list[int],
    initrd: Path,
) -> list[str]:
    """The full QEMU argv for ``spec``; every socket is a server (the driver connects)."""
    if accel.name == "kvm":
        argv = [spec.qemu, "-accel", "kvm", "-cpu", spec.cpu_kvm]
    else:
        argv = [spec.qemu, "-accel", "tcg,tb-size=64", "-cpu", spec.cpu_tcg]
    argv += [
        "-name",
        spec.name,
        "-machine",
        spec.machine,
        "-smp",
        str(spec.vcpus),
        "-m",
        str(spec.memory_mib),
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        "-display",
        "none",
        "-vga",
        "std",
        "-kernel",
        spec.kernel,
        "-initrd",
        str(initrd),
        "-append",
        spec.cmdline,
        "-qmp",
        f"unix:{paths.qmp},server=on,wait=off",
        "-chardev",
        f"socket,id=serial0,path={paths.serial},server=on,wait=off,"
        f"logfile={paths.console_log},logappend=on",
        "-serial",
        "chardev:serial0",
        "-device",
        "virtio-serial-pci,id=vser0",
        "-chardev",
        f"socket,id=backdoor,path={paths.backdoor},server=on,wait=off",
        "-device",
        "virtserialport,chardev=backdoor,name=photon.backdoor",
        "-device",
        "virtio-rng-pci",
    ]
    if len(overlays) != len(spec.disks):
        raise InfraError(f"node {spec.name}: {len(spec.disks)} disks but {len(overlays)} files")
    for index, (disk, path) in enumerate(zip(spec.disks, overlays, strict=True)):
        fmt = "qcow2" if disk.overlay else disk.format
        serial = f",serial={disk.serial}" if disk.serial else ""
        argv += [
            "-drive",
            f"file={path},if=none,id=disk{index},format={fmt},cache=unsafe,discard=unmap",
            "-device",
            f"virtio-blk-pci,drive=disk{index}{serial}",
        ]
    # NICs numbered as on a NixOS test node: the user-mode NIC first (eth0), then one per
    # VLAN in the spec's order (eth1, eth2, ...; PCI order is command-line order).
    fwds = "".join(
        f",hostfwd={f.protocol}:127.0.0.1:{port}-:{f.guest_port}"
        for f, port in zip(spec.forwards, host_ports, strict=True)
    )
    argv += [
        "-netdev",
        f"user,id=user0,restrict=on{fwds}",
        "-device",
        f"virtio-net-pci,netdev=user0,mac={user_mac(spec.name)},id=nicuser",
    ]
    for index, nic in enumerate(spec.nics):
        if nic.vlan not in vlan_sockets:
            raise InfraError(f"node {spec.name}: no switch for VLAN {nic.vlan}")
        argv += [
            "-netdev",
            f"vde,id=vlan{index},sock={vlan_sockets[nic.vlan]}",
            "-device",
            f"virtio-net-pci,netdev=vlan{index},mac={nic.mac},id=nic{index}",
        ]
    for share in spec.shares:
        readonly = ",readonly=on" if share.readonly else ""
        argv += [
            "-virtfs",
            f"local,path={share.path},mount_tag={share.tag},"
            f"security_model=none,id={share.tag}{readonly}",
        ]
    argv += list(spec.extra_args)
    return argv
