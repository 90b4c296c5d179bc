"""The root filesystem: mmdebstrap from Debian packages, tuned for test VMs.

A customize hook (run by mmdebstrap before it cleans up) lays in the backdoor and systemd
tuning, fetches the Debian kernel package (``apt-get download``, never installed: no
initramfs-tools run), unpacks its modules into the rootfs and copies the kernel, the
modules and busybox out for the initramfs. No loop mounts, no host kernel.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from driver.errors import InfraError, UsageError
from driver.hosttools import require, run_tool
from driver.images.recipe import GUEST_DIR, MASKED_UNITS, ImageRecipe

JOURNALD_CONF = """[Journal]
ForwardToConsole=yes
TTYPath=/dev/ttyS0
MaxLevelConsole=info
Storage=volatile
"""

SYSTEM_CONF = """[Manager]
DefaultTimeoutStartSec=90s
DefaultTimeoutStopSec=10s
ShowStatus=no
DefaultLimitCORE=infinity
"""

FSTAB = "/dev/vda / ext4 rw,noatime 0 0\n"

# The backdoor answers before systemd-networkd starts, and networkd drops at its start every
# route and rule it did not configure: a partition's blackhole routes laid in that early
# were silently gone (and healing them failed). Routes the driver or a script adds stay.
NETWORKD_CONF = """[Network]
ManageForeignRoutes=no
ManageForeignRoutingPolicyRules=no
"""

# Every kernel message reaches the console, which the host reads anyway: the health gate
# finds kernel problems there without running dmesg in the guest (run/health.py).
CONSOLE_SYSCTL = "kernel.printk = 8 4 1 7\n"
# The health gate's failed-unit note (photon-health.conf) on every unit type, and not on its
# own handler (a drop-in of the same name in a more specific directory replaces it).
HEALTH_DROPIN_TYPES = ("service", "socket", "mount", "swap", "automount", "timer", "path", "target")
HEALTH_DROPIN = "90-photon-health.conf"
NO_ON_FAILURE = "[Unit]\nOnFailure=\n"

# The driver's own units (driver/images/guest): the backdoor shell, the health gate's
# OnFailure= handler and wait_for_unit's wait target.
GUEST_UNITS = (
    "photon-backdoor.service",
    "photon-backdoor.socket",
    "photon-backdoor@.service",
    "photon-failed@.service",
    "photon-active@.target",
)

# The backdoor answers before systemd-tmpfiles-setup runs; keep /tmp's contents at boot so
# files a script writes there early are not swept away (Debian's tmp.conf says "D /tmp").
TMPFILES_TMP = "d /tmp 1777 root root -\n"

# Drivers for emulated hardware a test VM does not use, kept from loading at boot (an
# explicit modprobe still loads them). Under TCG each costs the node's only vCPU: bochs is
# the DRM driver of QEMU's std VGA (its framebuffer console would draw every console line;
# without it the VGA text console still serves screenshots), cfg80211 is the wireless
# stack, and the rest are the i440FX board's floppy, speaker, PS/2 mouse and SMBus.
MODPROBE_BLACKLIST = "".join(
    f"blacklist {module}\n"
    for module in ("bochs", "cfg80211", "floppy", "pcspkr", "psmouse", "serio_raw", "i2c_piix4")
)
# systemd generators for storage a test VM does not have (encrypted, integrity or verity
# volumes, GPT auto-discovery, hibernation, offline updates): a generator runs at every
# boot and daemon-reload, each an exec under TCG.
MASKED_GENERATORS = (
    "systemd-cryptsetup-generator",
    "systemd-integritysetup-generator",
    "systemd-veritysetup-generator",
    "systemd-gpt-auto-generator",
    "systemd-hibernate-resume-generator",
    "systemd-system-update-generator",
)

SSHD_CONF = """HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""

HOOK = r"""#!/bin/sh
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
root="$1"
# Written inside the rootfs and synced out by mmdebstrap (works in root and unshare mode).
out="$root/tmp/photon-out"
mkdir -p "$out"
stage={stage}
cp -R --preserve=mode,timestamps "$stage/." "$root/"
kpkg=$(chroot "$root" apt-cache depends linux-image-amd64 \
  | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
[ -n "$kpkg" ] || {{ echo "photon-build: cannot resolve linux-image-amd64" >&2; exit 1; }}
chroot "$root" sh -c "cd /tmp && apt-get -q -o APT::Sandbox::User=root download $kpkg"
chroot "$root" sh -c "dpkg-deb -x /tmp/${{kpkg}}_*.deb /tmp/kernel"
kver=${{kpkg#linux-image-}}
mkdir -p "$root/usr/lib/modules"
mv "$root/tmp/kernel/lib/modules/$kver" "$root/usr/lib/modules/"
chroot "$root" depmod -a "$kver"
mkdir -p "$out/modules"
cp "$root/tmp/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/tmp/kernel/boot/vmlinuz-$kver" "$root/boot/vmlinuz"
cp -a "$root/usr/lib/modules/$kver/kernel" "$out/modules/"
echo "$kver" >"$out/kernel-version"
cp "$root/bin/busybox" "$out/busybox"
rm -rf "$root"/tmp/*.deb "$root"/tmp/kernel "$root"/etc/ssh/ssh_host_*
for unit in {disable}; do chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true; done
for unit in {masked}; do chroot "$root" systemctl mask "$unit" >/dev/null 2>&1; done
mkdir -p "$root/etc/systemd/system-generators"
for gen in {generators}; do ln -sf /dev/null "$root/etc/systemd/system-generators/$gen"; done
chroot "$root" systemctl enable photon-backdoor.service systemd-networkd.service >/dev/null 2>&1
chroot "$root" passwd -d root >/dev/null
"""


def stage_files(stage: Path, recipe: ImageRecipe) -> None:
    """Write the files every image carries into ``stage`` (copied over the rootfs)."""
    files: dict[str, tuple[str | bytes, int]] = {
        "usr/lib/photon/backdoor.sh": ((GUEST_DIR / "backdoor.sh").read_bytes(), 0o755),
        "etc/systemd/journald.conf.d/photon.conf": (JOURNALD_CONF, 0o644),
        "etc/systemd/system.conf.d/photon.conf": (SYSTEM_CONF, 0o644),
        "etc/ssh/sshd_config.d/photon.conf": (SSHD_CONF, 0o644),
        "etc/fstab": (FSTAB, 0o644),
        "etc/systemd/networkd.conf.d/photon.conf": (NETWORKD_CONF, 0o644),
        "etc/tmpfiles.d/tmp.conf": (TMPFILES_TMP, 0o644),
        "etc/sysctl.d/90-photon-console.conf": (CONSOLE_SYSCTL, 0o644),
        "etc/modprobe.d/photon-test-vm.conf": (MODPROBE_BLACKLIST, 0o644),
        f"etc/systemd/system/photon-failed@.service.d/{HEALTH_DROPIN}": (NO_ON_FAILURE, 0o644),
    }
    for unit in GUEST_UNITS:
        files[f"etc/systemd/system/{unit}"] = ((GUEST_DIR / unit).read_bytes(), 0o644)
    for unit_type in HEALTH_DROPIN_TYPES:
        files[f"etc/systemd/system/{unit_type}.d/{HEALTH_DROPIN}"] = (
            (GUEST_DIR / "photon-health.conf").read_bytes(),
            0o644,
        )
    for path, text in recipe.extra_files.items():
        files[path] = (text, 0o644)
    for rel, (content, mode) in files.items():
        dest = stage / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            dest.write_text(content)
        else:
            dest.write_bytes(content)
        dest.chmod(mode)


def explain_failure(output: str, recipe: ImageRecipe) -> UsageError | InfraError:
    """mmdebstrap's output as one clear line, in the error it is: a package the suite does
    not have is the user's (usage), anything else the host's (infrastructure)."""
    missing = re.search(r"Unable to locate package (\S+)", output)
    if missing:
        return UsageError(
            f"image '{recipe.name}': package '{missing.group(1)}' does not exist in "
            f"Debian {recipe.suite}"
        )
    if "No space left on device" in output:
        return InfraError(f"image '{recipe.name}': disk full while building the root filesystem")
    if re.search(r"Could not resolve|Failed to fetch|Temporary failure|unable to connect", output):
        return InfraError(
            f"image '{recipe.name}': no network to the package mirror {recipe.mirror}"
        )
    lines = [ln for ln in output.strip().splitlines() if ln and not ln.startswith("I: ")]
    tail = " | ".join(lines[-3:])
    return InfraError(f"image '{recipe.name}': mmdebstrap failed: {tail}")


def build_rootfs(recipe: ImageRecipe, work: Path, timeout: float = 1800.0) -> Path:
    """Run mmdebstrap; returns the rootfs tarball. Kernel bits land in ``work/kernel``."""
    mmdebstrap = require("mmdebstrap")
    stage = work / "stage"
    out = work / "kernel"
    stage.mkdir()
    out.mkdir()
    stage_files(stage, recipe)
    hook = work / "customize.sh"
    hook.write_text(
        HOOK.format(
            stage=shlex.quote(str(stage)),
            disable=" ".join(shlex.quote(u) for u in recipe.disable_units) or "''",
            masked=" ".join(shlex.quote(u) for u in MASKED_UNITS),
            generators=" ".join(MASKED_GENERATORS),
        )
    )
    hook.chmod(0o755)
    tarball = work / "rootfs.tar"
    argv = [
        mmdebstrap,
        "--variant=minbase",
        "--mode=auto",
        "--format=tar",
        f"--include={','.join(recipe.all_packages())}",
        "--aptopt=APT::Install-Recommends false",
        f'--customize-hook={hook} "$1"',
        f"--customize-hook=sync-out /tmp/photon-out {out}",
        '--customize-hook=rm -rf "$1/tmp/photon-out"',
        recipe.suite,
        str(tarball),
        recipe.mirror,
    ]
    # mmdebstrap's temporary chroot goes inside our work directory, so that whatever an
    # interrupted build leaves is removed with it (hosttools.remove_tree unmounts first).
    tmp = work / "tmp"
    tmp.mkdir()
    try:
        proc = run_tool(argv, timeout=timeout, env={**os.environ, "TMPDIR": str(tmp)})
    except subprocess.TimeoutExpired:
        raise InfraError(f"image '{recipe.name}': mmdebstrap timed out after {timeout}s") from None
    if proc.returncode != 0:
        raise explain_failure(proc.stdout + proc.stderr, recipe)
    return tarball
