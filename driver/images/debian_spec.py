"""Node start specs for nodes booted from a Debian image (the embedded default)."""

from __future__ import annotations

from pathlib import Path

from driver.config.spec import Disk, Forward, Nic, NodeKind, NodeSpec
from driver.images.builder import Image
from driver.images.container_root import write_container_identity
from driver.images.identity import NodeIdentity, write_node_initrd

# Measured under TCG (DESIGN.md section 5): init_on_alloc=0 saves ~1.7 s per boot.
# nosoftlockup: a node restored from a snapshot (loadvm, -incoming) sees the time between
# save and restore as a CPU "stuck for N s", and TCG guests on busy host cores report the
# same for host scheduling; neither is the node's health, so the detector is off.
# no_timer_check: the kernel's early check that the timer interrupt arrives through the
# IO-APIC fails when the host descheduled the TCG vCPU for its whole window, and the boot
# ends in "Kernel panic - not syncing: IO-APIC + timer doesn't work!" (seen in CI with six
# guests on two cores); QEMU's PIT and IO-APIC are known good, as for any VM.
BASE_CMDLINE = (
    "console=ttyS0 init_on_alloc=0 net.ifnames=0 panic=1 quiet loglevel=4 "
    "systemd.show_status=false mitigations=off nosoftlockup no_timer_check"
)


def debian_node_spec(
    image: Image,
    identity: NodeIdentity,
    node_dir: Path,
    nics: tuple[Nic, ...] = (),
    forwards: tuple[Forward, ...] = (),
    vcpus: int = 1,
    memory_mib: int = 512,
    cpu_tcg: str = "qemu64",
    extra_cmdline: str = "",
    kind: NodeKind = NodeKind.VM,
) -> NodeSpec:
    """Write the node's identity into ``node_dir`` (the initramfs a VM boots with, or the
    tree a container's overlay lays over the image: ``container-identity``) and return its
    start spec."""
    node_dir.mkdir(parents=True, exist_ok=True)
    initrd = node_dir / "initrd.img"
    write_node_initrd(image.initrd, identity, initrd)
    if kind is NodeKind.CONTAINER:
        write_container_identity(identity, node_dir / "container-identity")
    return NodeSpec(
        name=identity.hostname,
        kernel=str(image.vmlinux),
        initrd=str(initrd),
        cmdline=f"{BASE_CMDLINE} {extra_cmdline}".strip(),
        cpu_tcg=cpu_tcg,
        vcpus=vcpus,
        memory_mib=memory_mib,
        disks=(Disk(base=str(image.base), format="raw", overlay=True),),
        nics=nics,
        forwards=forwards,
        kind=kind.value,
        meta={"image": image.key, "kernel_version": image.kernel_version},
    )
