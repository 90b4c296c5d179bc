"""A Debian node shaped like NixOS for the backdoor (issue 8): the backdoor unit sees only
its own PATH, and the FHS bin directories hold nothing but ``/bin/sh`` and ``/usr/bin/env``,
as on NixOS. Baked into the node identity as a systemd drop-in, so it holds from the first
command of every boot.

DEBIAN_PACKAGES mirrors the backdoor unit's ``path`` in nodes/common.nix (plus what NixOS adds
to every unit's path: coreutils, findutils, gnugrep, gnused, systemd): keep the two lists
together."""

from __future__ import annotations

DEBIAN_PACKAGES = (
    "bash coreutils findutils grep sed mawk systemd iproute2 iputils-ping netcat-openbsd curl "
    "procps util-linux tar gzip kmod busybox-static"
    # From NixOS's system profile (/run/current-system/sw, last in the unit's path):
    " hostname"
)
NIXLIKE = "/opt/nixlike"

SETUP = f"""#!/bin/sh
# Copy the backdoor's packages' binaries into one directory, like a NixOS unit's path.
set -e
[ -x {NIXLIKE}/bin/bash ] && exit 0
mkdir -p {NIXLIKE}/bin {NIXLIKE}/fhs
for pkg in {DEBIAN_PACKAGES}; do dpkg -L "$pkg"; done \\
  | grep -E '^/(usr/)?s?bin/[^/]+$' | while read -r f; do
      [ -f "$f" ] && cp -L "$f" {NIXLIKE}/bin/ || :
    done
cp -L /bin/sh /usr/bin/env {NIXLIKE}/fhs/
# Names nixpkgs' packages have that Debian gives through alternatives or another package.
ln -sf bash {NIXLIKE}/bin/sh
ln -sf nc.openbsd {NIXLIKE}/bin/nc
ln -sf mawk {NIXLIKE}/bin/awk
"""

# The copy runs in its own unit: the backdoor's mount namespace needs its bind sources first.
SETUP_UNIT = """[Unit]
Description=NixOS-shaped tool directory for the backdoor (tests)
DefaultDependencies=no

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/photon/nixlike-setup
"""

DROP_IN = f"""[Unit]
Requires=photon-nixlike.service
After=photon-nixlike.service

[Service]
Environment=PATH={NIXLIKE}/bin
TemporaryFileSystem=/usr/bin:ro /usr/sbin:ro /usr/local/bin:ro /usr/local/sbin:ro
BindReadOnlyPaths={NIXLIKE}/fhs/sh:/usr/bin/sh {NIXLIKE}/fhs/env:/usr/bin/env
ExecStart=
ExecStart={NIXLIKE}/bin/bash /usr/lib/photon/backdoor.sh
"""

FILES: dict[str, tuple[bytes, int]] = {
    "usr/lib/photon/nixlike-setup": (SETUP.encode(), 0o755),
    "etc/systemd/system/photon-nixlike.service": (SETUP_UNIT.encode(), 0o644),
    "etc/systemd/system/photon-backdoor.service.d/nixos-shape.conf": (DROP_IN.encode(), 0o644),
}
