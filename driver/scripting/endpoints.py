"""Helpers for test scripts: endpoint probes driven by the topology, so every port and path
a script uses is declared once in nodes/cluster.toml."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from driver.config.topology import Endpoint, Profile, Service
from driver.machine.machine import Machine
from driver.run.readiness import READINESS_TIMEOUT, wait_for_readiness
from driver.scripting.probes import Probe, check_endpoints, probe_all

__all__ = [
    "boot_and_wait_for_units",
    "check_endpoints",
    "check_service_endpoints",
    "nested_guest_script",
    "probe_endpoint",
]


def boot_and_wait_for_units(
    start_all: Callable[[], None],
    machines: Sequence[Machine],
    profile: Profile,
    timeout: float = READINESS_TIMEOUT,
) -> None:
    """Boot in dependency order, then wait for multi-user and every unit the profile declares
    on each node (the nodes waited for at once, each unit within ``timeout`` s)."""
    start_all()
    wait_for_readiness(list(machines), profile, timeout)


def probe_endpoint(prober: Machine, host: str, endpoint: Endpoint, timeout: float = 60.0) -> str:
    """Check one endpoint of ``host`` from ``prober``; returns a one-line result, as
    ``check_endpoints`` does (udp: checked on the serving node by the caller)."""
    if endpoint.protocol == "udp":
        return f"udp {host}:{endpoint.port} (checked on the node)"
    return probe_all(prober, [Probe(host, endpoint)], timeout)[0]


def check_service_endpoints(
    service: Service, machines: dict[str, Machine], prober: Machine, timeout: float = 60.0
) -> list[str]:
    """Probe every endpoint of ``service`` on each of its nodes from ``prober``, all at once
    (``check_endpoints`` for one service)."""
    return check_endpoints([service], machines, prober, timeout)


# pci=noearly: the kernel's early PCI scan (the AMD GART aperture check of a family-15h CPU
# model) reads config space port by port, each read a VM exit: ~1.8 s of the nested boot.
NESTED_GUEST = r"""set -e
modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null || true
accel=tcg; [ -c /dev/kvm ] && accel=kvm
# Debian images: /bin/busybox (static) and /boot/vmlinux (the image's kernel uncompressed,
# booted through its PVH entry: decompressing /boot/vmlinuz costs ~3 s in a nested guest);
# NixOS nodes (nodes/common.nix): /etc/photon/busybox and the booted system's kernel.
bb=; for f in /bin/busybox /etc/photon/busybox; do [ -x "$f" ] && { bb=$f; break; }; done
kernel=; for f in /boot/vmlinux /boot/vmlinuz /run/booted-system/kernel; do [ -r "$f" ] && { kernel=$f; break; }; done
[ -n "$bb" ] && [ -n "$kernel" ] || { echo "nested guest: no static busybox or kernel" >&2; exit 1; }
rm -rf /tmp/inner && mkdir -p /tmp/inner/bin /tmp/inner/proc
cp "$bb" /tmp/inner/bin/busybox
printf '#!/bin/busybox sh\n/bin/busybox echo INNER-GUEST-OK $(/bin/busybox uname -r)\n/bin/busybox poweroff -f\n' > /tmp/inner/init
chmod +x /tmp/inner/init
(cd /tmp/inner && find . | "$bb" cpio -o -H newc > /tmp/inner.cpio 2>/dev/null)
timeout {timeout} qemu-system-x86_64 -accel $accel -m 128 -nodefaults -display none \
  -no-reboot -serial stdio -kernel "$kernel" -initrd /tmp/inner.cpio \
  -append 'console=ttyS0 panic=-1 quiet pci=noearly init=/init rdinit=/init' > /tmp/inner.log 2>&1 || true
grep -q INNER-GUEST-OK /tmp/inner.log
echo "accel=$accel"
"""


def nested_guest_script(timeout: float = 240.0) -> str:
    """Shell that boots a busybox guest with the worker's QEMU (KVM when /dev/kvm exists)
    and prints ``accel=kvm|tcg`` on success."""
    return NESTED_GUEST.replace("{timeout}", f"{timeout:g}")
