"""What goes into a Debian node image, and the content key that names it in the cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

GUEST_DIR = Path(__file__).parent / "guest"
BUILDER_VERSION = 3

# Every node image has these: systemd, the backdoor's needs, networking and probe tools.
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "iputils-ping",
    "netcat-openbsd",
    "curl",
    "busybox-static",
    "openssh-server",
    "procps",
    # Core dumps caught and described (the health gate lists them, runs keep them: triage/).
    "systemd-coredump",
)

# Units a test VM does not need; masking them saves boot time and console noise.
MASKED_UNITS = (
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "serial-getty@hvc0.service",
    "getty-static.service",
    "console-getty.service",
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "dpkg-db-backup.timer",
    "logrotate.timer",
    "systemd-timesyncd.service",
    "systemd-pstore.service",
    "systemd-firstboot.service",
    "ssh.socket",
    # Measured on the backdoor's critical chain / CPU under TCG (systemd-analyze): a prebuilt
    # image has its users and a rw root already, and test VMs need none of these mounts.
    "systemd-sysusers.service",
    "systemd-remount-fs.service",
    "dev-hugepages.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "kmod-static-nodes.service",
    "modprobe@dm_mod.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "modprobe@drm.service",
    "modprobe@efi_pstore.service",
    "modprobe@configfs.service",
    # Each of these is a process and a unit under TCG while six guests share two host cores
    # (seconds each in systemd-analyze blame of a booting reference cluster): binfmt_misc, utmp
    # records, a random seed file (virtio-rng feeds the pool), networks from the kernel
    # command line, and flushing a journal that is volatile anyway.
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    "systemd-random-seed.service",
    "systemd-network-generator.service",
    "systemd-journal-flush.service",
)


@dataclass(frozen=True)
class ImageRecipe:
    """The inputs of one image build; equal recipes give byte-identical cache keys (the
    name only labels the cache directory: the same package set is one image)."""

    name: str
    packages: tuple[str, ...] = ()
    disable_units: tuple[str, ...] = ()
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    size_mib: int = 4096
    extra_files: dict[str, str] = field(default_factory=dict)

    def all_packages(self) -> tuple[str, ...]:
        """Base packages plus the recipe's own, sorted and deduplicated."""
        return tuple(sorted(set(BASE_PACKAGES) | set(self.packages)))

    def cache_key(self) -> str:
        """sha256 over the recipe, every file baked into the image and the builder code."""
        digest = hashlib.sha256()
        doc = asdict(self)
        del doc["name"]  # recipes that differ only in name are one image
        doc["packages"] = self.all_packages()
        doc["masked"] = MASKED_UNITS
        doc["builder_version"] = BUILDER_VERSION
        digest.update(json.dumps(doc, sort_keys=True).encode())
        baked = sorted(GUEST_DIR.iterdir()) + [
            Path(__file__).parent / name for name in ("builder.py", "kernel.py", "rootfs.py")
        ]
        for path in baked:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()
