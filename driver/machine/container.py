"""One container node's systemd-nspawn: the node's Debian image, loop-mounted read-only
under an overlay (the node's identity tree above it, a writable upper directory in its
state directory), booted with systemd as PID 1 in mount and network namespaces of its own.
The mounts exist only in the container's mount namespace and its NICs only in its network
namespace: both go with the container, however it ends. Each VLAN NIC is a tap made in
that namespace (``eth1``, ``eth2``... with the spec's MAC, as on a VM) plugged into the
VLAN's switch by ``vde_plug2tap``. Every process of it is in one cgroup (cgroup.py)."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from driver.atomic import write_atomic
from driver.config.spec import NodeSpec
from driver.errors import InfraError, UsageError
from driver.hosttools import own_group_dying_with_parent, require
from driver.images.container_root import HOST_SOCKET_DIR, REMOVALS_FILE
from driver.machine.accel import Accel
from driver.machine.argv import Paths
from driver.machine.backend import ContainerControl, NodeControl
from driver.machine.cgroup import ContainerGroup
from driver.machine.process import last_line, pid_alive
from driver.safe_files import open_binary_for_writing, private_dir

FORWARDER = Path(__file__).with_name("forwarder.py")
# A NIC's carrier on or off ($1 the NIC, $2 on|off), then the wait until the kernel's link
# watch has acted on it (for off: the NIC's queue stopped, operstate DOWN), at most 2 s:
# the change is asynchronous, and a packet sent at once would still pass.
SET_CARRIER = r"""
ip link set "$1" carrier "$2" || exit
i=0
while [ $i -lt 200 ]; do
  case "$2 $(ip -o link show dev "$1")" in
  off*"state DOWN"*) exit 0 ;;
  on*"state DOWN"*) ;;
  on*) exit 0 ;;
  esac
  sleep 0.01
  i=$((i + 1))
done
"""
CONTAINER_ACCEL = Accel("nspawn", "a container node: the host's kernel, no emulation")
# Lays the node's root and NICs out in the fresh namespaces, then becomes nspawn.
# $1 the work directory, $2 the image, $3 the identity directory, $4 the number of VLAN
# NICs; then (socket, MAC, first address or -) per NIC; the rest is nspawn's command line.
START_SCRIPT = r"""
set -eu
umask 022 # the upper directory is the container's /: the driver's own umask is 077
work=$1 image=$2 identity=$3 nics=$4
shift 4
mkdir -p "$work/lower" "$work/upper" "$work/work" "$work/root"
mount -o loop,ro,noload "$image" "$work/lower"
mount -t overlay overlay \
  -o "lowerdir=$identity/root:$work/lower,upperdir=$work/upper,workdir=$work/work" "$work/root"
while read -r pattern; do
  [ -n "$pattern" ] || continue
  # shellcheck disable=SC2086  # the pattern is a glob
  rm -rf "$work/root/"$pattern
done <"$identity/removals"
ip link set lo up
n=1
while [ "$n" -le "$nics" ]; do
  ip tuntap add dev "eth$n" mode tap
  ip link set "eth$n" address "$2"
  # The first address at once: a service that binds it may start before networkd runs
  # (a container boots in a second); networkd then manages the same address.
  [ "$3" = - ] || ip addr add "$3" dev "eth$n"
  ip link set "eth$n" up
  vde_plug2tap -s "$1" "eth$n" </dev/null &
  shift 3
  n=$((n + 1))
done
exec "$@"
"""


class NspawnProcess:
    """A container node's nspawn: its writable layer, command line and processes. Starts
    it, adopts a running one (a detached cluster node), freezes and kills its cgroup."""

    def __init__(
        self,
        spec: NodeSpec,
        paths: Paths,
        vlan_sockets: Mapping[int, Path],
        host_ports: list[int],
        environ: Mapping[str, str],
        cache_dir: Path,
        detached: bool = False,
    ) -> None:
        if len(spec.disks) != 1 or spec.shares:
            raise UsageError(
                f"node {spec.name}: a container node has its image only (no more disks, no shares)"
            )
        self.program = "systemd-nspawn"  # named in messages
        self.spec = spec
        self.paths = paths
        self.vlan_sockets = dict(vlan_sockets)
        self.host_ports = list(host_ports)
        self.detached = detached
        self.accel: Accel | None = CONTAINER_ACCEL
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.started_wall: float | None = None
        self.started_monotonic = 0.0
        self.serial_socket: Path | None = None
        self.allow_reboot = False
        self.group = ContainerGroup(f"{paths.sockets.parent.name}-{spec.name}")
        private_dir(paths.state)
        paths.sockets.mkdir(parents=True, exist_ok=True)

    @property
    def machine_name(self) -> str:
        """nspawn's machine name (a hostname): from the node's socket directory, unique here."""
        digest = hashlib.sha1(str(self.paths.sockets).encode()).hexdigest()[:12]
        return f"photon-{digest}"

    @property
    def work(self) -> Path:
        """The container's directories: lower (the image), upper (its writes), root."""
        return self.paths.state / "container"

    @property
    def overlays(self) -> list[Path]:
        """The container's writable layer (its "disk")."""
        return [self.work / "upper"]

    def create_overlays(self) -> None:
        """A fresh, empty writable layer."""
        for sub in ("upper", "work"):
            shutil.rmtree(self.work / sub, ignore_errors=True)

    def overlays_over(self, saved: list[Path | None]) -> None:
        """Saved states are QEMU's: not offered on a container node."""
        raise UsageError(
            f"node {self.spec.name}: saved states need a VM node (a container has no QEMU)"
        )

    def choose_accel(self) -> Accel:
        """A container runs on the host's kernel."""
        return CONTAINER_ACCEL

    def argv(self) -> list[str]:
        """The command line: unshare, the start script, then systemd-nspawn."""
        nspawn = require("systemd-nspawn")
        require("vde_plug2tap")
        identity = Path(self.spec.initrd).parent / "container-identity"
        if not (identity / REMOVALS_FILE).exists():
            raise InfraError(f"node {self.spec.name}: no container identity at {identity}")
        nics: list[str] = []
        for nic in self.spec.nics:
            if nic.vlan not in self.vlan_sockets:
                raise InfraError(f"node {self.spec.name}: no switch for VLAN {nic.vlan}")
            nics += [str(self.vlan_sockets[nic.vlan]), nic.mac, nic.address or "-"]
        return [
            "unshare", "--mount", "--net", "--propagation", "private",
            "bash", "-c", START_SCRIPT, "photon-container",
            str(self.work), self.spec.disks[0].base, str(identity), str(len(self.spec.nics)),
            *nics,
            nspawn, "--quiet", "--boot", "--register=no", "--keep-unit", "--console=read-only",
            f"--directory={self.work / 'root'}", "--network-namespace-path=/proc/self/ns/net",
            f"--machine={self.machine_name}", f"--hostname={self.spec.name}",
            f"--bind={self.paths.sockets}:{HOST_SOCKET_DIR}",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no",
            "--capability=CAP_NET_ADMIN", "--setenv=SYSTEMD_COLORS=0",
        ]  # fmt: skip

    def start(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Start the container (its writable layer emptied with ``fresh_disks``)."""
        if extra_args:
            raise UsageError(
                f"node {self.spec.name}: saved states need a VM node (a container has no QEMU)"
            )
        if fresh_disks:
            self.create_overlays()
        self.allow_reboot = allow_reboot
        argv = self.argv()
        self.group.kill()  # what a killed run left of this node
        self.group.create()
        self.paths.backdoor.unlink(missing_ok=True)
        join = self.group.joiner()
        dying = own_group_dying_with_parent(signal.SIGKILL)

        def in_child() -> None:
            join()
            if not self.detached:
                dying()

        self.started_monotonic = time.monotonic()
        self.started_wall = time.time()
        with (
            open_binary_for_writing(self.paths.console_log, truncate=False) as console,
            open_binary_for_writing(self.log_path, truncate=False) as log,
        ):
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=log,
                preexec_fn=in_child,
                start_new_session=self.detached,
                close_fds=True,
            )
        self.pid = self.popen.pid
        self.exit_status = None
        write_atomic(self.paths.state / "argv", "\0".join(argv))
        if self.spec.forwards:
            self._start_forwarder(join)

    def _start_forwarder(self, join: Callable[[], None]) -> None:
        """The host forwards: a process of the container's cgroup (forwarder.py)."""
        rules = [
            f"{f.protocol}:{port}:{f.guest_port}"
            for f, port in zip(self.spec.forwards, self.host_ports, strict=True)
        ]
        with open_binary_for_writing(self.log_path, truncate=False) as log:
            subprocess.Popen(
                [sys.executable, str(FORWARDER), f"/proc/{self.pid}/ns/net", *rules],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=join,
                start_new_session=True,
                close_fds=True,
            )

    @property
    def log_path(self) -> Path:
        """What the start script and nspawn wrote (their stderr)."""
        return self.paths.state / "nspawn.log"

    def last_words(self, limit: int = 400) -> str:
        """The last line nspawn (or the start script) wrote: why the container did not
        start or ended; empty when it wrote nothing."""
        return last_line(self.log_path, limit)

    def adopt(self, pid: int) -> bool:
        """Take over a running nspawn; False when ``pid`` is not running."""
        if not pid_alive(pid):
            return False
        self.pid, self.popen = pid, None
        return True

    def is_running(self) -> bool:
        """Whether nspawn runs."""
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def reap(self) -> int | None:
        """Collect nspawn's exit status, then end what it leaves (the VLAN plugs)."""
        if self.popen is not None:
            self.exit_status = self.popen.wait()
        if not self.is_running():
            self.group.kill()
            self._forget_machine()
        return self.exit_status

    def kill(self) -> None:
        """SIGKILL every process of the container; returns when they are gone."""
        self.group.kill()
        self.reap()

    def freeze(self) -> None:
        """Stop every process of the container (the cgroup freezer)."""
        self.group.freeze()

    def thaw(self) -> None:
        """Resume the container's processes."""
        self.group.thaw()

    def set_link(self, index: int, up: bool) -> None:
        """Put ``eth<index+1>``'s carrier on or off from the host (the container sees
        NO-CARRIER, as a VM does after QMP ``set_link``); returns once the kernel has
        acted on it (SET_CARRIER)."""
        if self.pid is None or not self.is_running():
            raise InfraError(f"node {self.spec.name}: not running")
        argv = ["nsenter", f"--net=/proc/{self.pid}/ns/net", "sh", "-c", SET_CARRIER, "sh"]
        argv += [f"eth{index + 1}", "on" if up else "off"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InfraError(f"node {self.spec.name}: {' '.join(argv)}: {proc.stderr.strip()}")

    def _forget_machine(self) -> None:
        """nspawn leaves a per-machine directory in /run; remove it."""
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / self.machine_name, ignore_errors=True)

    def control(self, alive: Callable[[], None]) -> NodeControl:
        """The container's cgroup freezer; no QEMU monitor."""
        return ContainerControl(self.spec.name, self)
