"""Which accelerator a node runs with: KVM when it really works here, else TCG."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driver.atomic import write_atomic
from driver.errors import InfraError, UsageError
from driver.hosttools import host_boot_id


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
    argv = [
        qemu,
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        kernel,
        "-append",
        "console=ttyS0 panic=-1 root=/dev/photon-probe-none loglevel=1",
    ]
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
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
    boot_id = host_boot_id()
    if boot_id is None:
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
    write_atomic(record, json.dumps({"key": key, "problem": problem}))
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
