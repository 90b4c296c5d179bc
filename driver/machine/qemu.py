"""QEMU command lines from node start specs, and the accelerator probe."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driver.errors import InfraError, UsageError
from driver.spec import NodeSpec


@dataclass(frozen=True)
class Accel:
    """The accelerator a node runs with and why."""

    name: str
    reason: str


def probe_kvm(qemu: str, kernel: str, timeout: float = 8.0) -> str | None:
    """None when KVM really runs our kernel; otherwise why not (one line).

    Opening /dev/kvm is not enough (seen: KVM_CREATE_VM works but the guest dies with
    "KVM internal error"), so the node's own kernel is booted to its no-root panic."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is missing or not accessible"
    argv = [qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display",
            "none", "-no-reboot", "-serial", "stdio", "-kernel", kernel,
            "-append", "console=ttyS0 panic=-1 root=/dev/photon-probe-none loglevel=1"]  # fmt: skip
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)  # fmt: skip
    except FileNotFoundError:
        return f"{qemu} not found"
    assert proc.stdout is not None
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                output += chunk
                if b"KVM internal error" in output or not chunk:
                    break
            elif proc.poll() is not None:
                break
    finally:
        proc.kill()
        proc.wait()
    text = output.decode(errors="replace")
    if "Kernel panic" in text:
        return None
    if "KVM internal error" in text:
        return "KVM cannot run the guest kernel (KVM internal error)"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return f"a KVM probe boot failed ({lines[-1] if lines else 'no output'})"


def cached_probe_kvm(qemu: str, kernel: str, cache_dir: Path) -> str | None:
    """``probe_kvm`` remembered per host boot (``/proc/sys/kernel/random/boot_id``)."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return probe_kvm(qemu, kernel)
    record = cache_dir / "kvm-probe.json"
    key = f"{boot_id}:{qemu}:{Path(kernel).name}"
    try:
        doc = json.loads(record.read_text())
        if doc.get("key") == key:
            return doc.get("problem")  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pass
    problem = probe_kvm(qemu, kernel)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "problem": problem}))
    tmp.replace(record)
    return problem


def choose_accel(
    spec_accel: str, qemu: str, kernel: str, environ: Mapping[str, str], cache_dir: Path
) -> Accel:
    """KVM when it works, else TCG; ``PHOTON_ACCEL=kvm|tcg`` overrides the spec."""
    wanted = environ.get("PHOTON_ACCEL", "") or spec_accel
    if wanted not in ("auto", "kvm", "tcg"):
        raise UsageError(f"PHOTON_ACCEL must be auto, kvm or tcg, not {wanted!r}")
    if wanted == "tcg":
        return Accel("tcg", "TCG requested")
    problem = cached_probe_kvm(qemu, kernel, cache_dir)
    if problem is None:
        return Accel("kvm", "KVM probe passed")
    if wanted == "kvm":
        raise InfraError(f"KVM was requested (PHOTON_ACCEL=kvm) but is unusable: {problem}")
    return Accel("tcg", f"falling back to TCG: {problem}")


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


def user_mac(name: str) -> str:
    """A stable MAC for the node's SLiRP NIC."""
    digest = sum(name.encode()) % 256
    return f"52:54:00:ff:{digest:02x}:{len(name) % 256:02x}"


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
        "-name", spec.name, "-machine", spec.machine, "-smp", str(spec.vcpus),
        "-m", str(spec.memory_mib), "-nodefaults", "-no-user-config", "-no-reboot",
        "-display", "none", "-vga", "std",
        "-kernel", spec.kernel, "-initrd", str(initrd), "-append", spec.cmdline,
        "-qmp", f"unix:{paths.qmp},server=on,wait=off",
        "-chardev", f"socket,id=serial0,path={paths.serial},server=on,wait=off,"
                    f"logfile={paths.console_log},logappend=on",
        "-serial", "chardev:serial0",
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", f"socket,id=backdoor,path={paths.backdoor},server=on,wait=off",
        "-device", "virtserialport,chardev=backdoor,name=photon.backdoor",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    if len(overlays) != len(spec.disks):
        raise InfraError(f"node {spec.name}: {len(spec.disks)} disks but {len(overlays)} files")
    for index, (disk, path) in enumerate(zip(spec.disks, overlays, strict=True)):
        fmt = "qcow2" if disk.overlay else disk.format
        serial = f",serial={disk.serial}" if disk.serial else ""
        argv += ["-drive", f"file={path},if=none,id=disk{index},format={fmt},cache=unsafe,"
                 "discard=unmap", "-device", f"virtio-blk-pci,drive=disk{index}{serial}"]  # fmt: skip
    for index, nic in enumerate(spec.nics):
        if nic.vlan not in vlan_sockets:
            raise InfraError(f"node {spec.name}: no switch for VLAN {nic.vlan}")
        argv += ["-netdev", f"vde,id=vlan{index},sock={vlan_sockets[nic.vlan]}",
                 "-device", f"virtio-net-pci,netdev=vlan{index},mac={nic.mac},id=nic{index}"]  # fmt: skip
    fwds = "".join(
        f",hostfwd={f.protocol}:127.0.0.1:{port}-:{f.guest_port}"
        for f, port in zip(spec.forwards, host_ports, strict=True)
    )
    argv += ["-netdev", f"user,id=user0,restrict=on{fwds}",
             "-device", f"virtio-net-pci,netdev=user0,mac={user_mac(spec.name)},id=nicuser"]  # fmt: skip
    for share in spec.shares:
        readonly = ",readonly=on" if share.readonly else ""
        argv += ["-virtfs", f"local,path={share.path},mount_tag={share.tag},"
                 f"security_model=none,id={share.tag}{readonly}"]  # fmt: skip
    argv += list(spec.extra_args)
    return argv
