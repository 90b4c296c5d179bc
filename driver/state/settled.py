"""The cached "settled" cluster. After the first cold boot of a fresh run reaches unit
readiness, every node's RAM and device state is saved as a QEMU migration stream and its
disk overlays copied, with a manifest, under ``<cache>/settled/<profile>/<key>/``. Later
fresh runs with the same key start from it in seconds: each QEMU loads its state paused
(``-incoming``) on new overlays backed by the saved disks, then all resume together and
every guest clock is stepped to the host's time.

The key covers what makes a saved state valid: node specs with kernel and initrd contents,
base disks (path, size, mtime), boot groups, profile, QEMU version and accelerator. A
snapshot whose key differs is never used; a missing, truncated or rejected one means a cold
boot with a one-line warning (and the broken snapshot is removed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from driver.atomic import write_atomic
from driver.config.spec import NodeSpec
from driver.config.topology import Profile
from driver.errors import DriverError, InfraError
from driver.hosttools import remove_tree
from driver.keys import CLIENT_KEY, CLIENT_KEY_COMMENT, ssh_keypair
from driver.log import Logger
from driver.machine.node import Node
from driver.parallel import on_each
from driver.run.driver import Driver
from driver.run.readiness import (
    all_active_command,
    declared_units,
    wait_for_readiness,
    wait_until_settled,
)
from driver.run.snapshots import resume_loaded, step_clock, took_effect_at
from driver.state.settled_lock import alone, shared, use_snapshots
from driver.state.settled_manifest import FORMAT, SavedFile, SavedNode, SettledManifest
from driver.wait import wait_until

KEYS = "keys"  # the SSH keys settled runs share (baked into the saved guests)
REPORT = "settled.json"  # what the run did, in its output directory (read by bench/)
SAVE_TIMEOUT = 300.0


def settled_root(cache: Path, profile: str) -> Path:
    """Where the profile's settled snapshots are kept."""
    return cache / "settled" / profile


@dataclass(frozen=True)
class SettledSnapshot:
    """One saved settled cluster: its directory and manifest."""

    directory: Path
    manifest: SettledManifest

    def state_file(self, node: str) -> Path:
        """The node's saved RAM and device state (a QEMU migration stream)."""
        return self.directory / self.manifest.nodes[node].state.file

    def disks(self, node: str) -> list[Path | None]:
        """The node's saved disks, in spec order (None: a disk QEMU opens directly)."""
        return [
            None if d is None else self.directory / d.file for d in self.manifest.nodes[node].disks
        ]

    def frozen_at(self, node: str) -> float | None:
        """The host time the node was paused at for saving (None: not recorded)."""
        return self.manifest.nodes[node].frozen_at

    @property
    def size(self) -> int:
        """Bytes on disk."""
        return sum(f.bytes for f in self.manifest.files())


def seed_keys(root: Path, state: Path, nodes: list[str]) -> None:
    """Give a fresh run the SSH keys that settled runs share (created once under ``root``),
    so node identities, and with them the key, stay the same from run to run."""
    wanted = [(str(CLIENT_KEY), CLIENT_KEY_COMMENT)]
    wanted += [(f"{n}/ssh_host_ed25519_key", f"root@{n}") for n in nodes]
    for relative, comment in wanted:
        ssh_keypair(root / KEYS / relative, comment)
        for suffix in ("", ".pub"):
            source = root / KEYS / (relative + suffix)
            target = state / (relative + suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, partial)
            partial.chmod(source.stat().st_mode & 0o777)
            os.replace(partial, target)  # never a half-copied key under the real name


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _file_stamp(path: str) -> str:
    stat = Path(path).stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def _spec_fingerprint(spec: NodeSpec) -> dict[str, Any]:
    doc = dataclasses.asdict(spec)
    doc["kernel"] = _digest(Path(spec.kernel))
    doc["initrd"] = _digest(Path(spec.initrd))
    doc["disks"] = [
        {**d, "base": _file_stamp(d["base"]) if d["base"] else ""} for d in doc["disks"]
    ]
    return doc


def settled_key(driver: Driver, profile: Profile) -> tuple[str, str]:
    """The key of this run's settled state, or ("", why) when it cannot be snapshotted."""
    shared = [n.name for n in driver.nodes.values() if n.spec.shares]
    if shared:
        return "", f"{', '.join(shared)} mount host shares (9p), which QEMU cannot save"
    versions = {
        qemu: subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout
        for qemu in {n.spec.qemu for n in driver.nodes.values()}
    }
    doc = {
        "format": FORMAT,
        "profile": profile.name,
        # What "settled" means is part of what was saved.
        "settled_when": {name: profile.settle_checks_on(name) for name in driver.nodes},
        "qemu": versions,
        "boot_groups": driver.boot_groups,
        "nodes": {
            c.name: {"accel": c.choose_accel().name, "spec": _spec_fingerprint(c.spec)}
            for c in driver.nodes.values()
        },
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32], ""


def lookup(root: Path, key: str, logger: Logger) -> SettledSnapshot | None:
    """The usable snapshot for ``key``, or None (with a one-line warning when one exists but
    is stale or incomplete; an incomplete one is removed)."""
    directory = root / key
    if not directory.is_dir():
        others = [p.name for p in _snapshot_dirs(root) if not p.name.startswith(".")]
        if others:
            logger.log(
                f"settled snapshot {others[0]} is for other images, specs or profile: not used"
            )
        return None
    problem = ""
    try:
        manifest = SettledManifest.load(directory)
        snapshot = SettledSnapshot(directory, manifest)
        if manifest.format != FORMAT or manifest.key != key:
            logger.warning(
                f"settled snapshot {directory}: its manifest key is "
                f"{manifest.key!r} (format {manifest.format}), not {key!r}: refused, booting cold"
            )
            return None
        for entry in manifest.files():
            size = (directory / entry.file).stat().st_size
            if size != entry.bytes:
                problem = f"{entry.file} has {size} bytes, the manifest says {entry.bytes}"
                break
    except FileNotFoundError as exc:
        problem = f"{Path(exc.filename or '?').name} is missing"
    except (ValueError, KeyError, TypeError) as exc:
        problem = f"unreadable manifest ({exc})"
    if problem:
        logger.warning(f"settled snapshot {directory} is incomplete ({problem}): booting cold")
        remove_tree(directory)
        return None
    return snapshot


def _snapshot_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in (KEYS,))


def list_settled(cache: Path) -> list[tuple[str, SettledSnapshot]]:
    """Every complete settled snapshot in the cache: (profile, snapshot)."""
    found = []
    for profile_dir in sorted((cache / "settled").glob("*")):
        for directory in _snapshot_dirs(profile_dir):
            if directory.name.startswith("."):
                continue
            try:
                manifest = SettledManifest.load(directory)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found.append((profile_dir.name, SettledSnapshot(directory, manifest)))
    return found


def restore_settled(driver: Driver, profile: Profile, snapshot: SettledSnapshot) -> None:
    """Start every node from ``snapshot``: load all paused, resume all together, step the
    clocks, check the declared units are active."""
    started = time.monotonic()
    driver.start_vlans()
    nodes = list(driver.nodes.values())
    for node in nodes:  # main thread: the parent-death signal binds to it
        node.disks.start_from_saved_state(snapshot.state_file(node.name), snapshot.disks(node.name))
    resumed = resume_loaded(nodes, started)
    # How long each guest clock stood still, when the snapshot recorded when it froze: the
    # first round trip of the clock step then steps it (else that round trip only measures).
    lags = {
        node.name: at - frozen
        for node, at in zip(nodes, resumed, strict=True)
        if (frozen := snapshot.frozen_at(node.name)) is not None
    }

    def settle(node: Node) -> None:
        step_clock(node, "restoring the settled snapshot", lags.get(node.name))
        node.check(all_active_command(declared_units(node.name, profile)))

    on_each(nodes, settle, "machines")


def _save_states(nodes: list[Node], directory: Path, timeout: float = SAVE_TIMEOUT) -> None:
    """Stream every (paused) node's state to ``<node>.state``; QEMU migrates them all at
    once. QMP is driven from this thread only (qemu.qmp's clients share its event loop)."""
    for node in nodes:
        target = directory / f"{node.name}.state"
        node.qmp("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
        node.qmp("migrate", uri="exec:cat > " + shlex.quote(str(target)))

    def completed(node: Node) -> bool:
        info = node.qmp("query-migrate")
        status = info.get("status") if isinstance(info, dict) else None
        if status in ("failed", "cancelled"):
            detail = info.get("error-desc", status) if isinstance(info, dict) else status
            raise InfraError(f"{node.name}: saving its state failed: {detail}")
        return status == "completed"

    wait_until(lambda: all([completed(n) for n in nodes]), timeout, 0.05)


def _saved_node(node: Node, directory: Path, frozen_at: float) -> SavedNode:
    """Copy ``node``'s overlays beside its saved state in ``directory``; what was saved."""
    disks: list[SavedFile | None] = []
    for index, (disk, path) in enumerate(zip(node.spec.disks, node.disks.overlays, strict=True)):
        if not disk.overlay:
            disks.append(None)
            continue
        name = f"{node.name}.disk{index}.qcow2"
        shutil.copyfile(path, directory / name)
        disks.append(SavedFile(name, (directory / name).stat().st_size))
    state = f"{node.name}.state"
    return SavedNode(SavedFile(state, (directory / state).stat().st_size), disks, frozen_at)


def save_settled(
    driver: Driver, root: Path, key: str, cold_seconds: float, in_use: IO[str]
) -> SettledSnapshot:
    """Save the running cluster as the settled snapshot for ``key``: all nodes paused, each
    one's state streamed to a file and its overlays copied, all resumed; then the manifest,
    and the directory moved into place in one rename. Older snapshots of the profile go,
    unless another run uses them (``in_use``: this run's shared lock on ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".saving-", dir=root))
    started = time.monotonic()
    try:
        frozen = {name: took_effect_at(node.pause) for name, node in driver.nodes.items()}
        try:
            _save_states(list(driver.nodes.values()), work)
            nodes = {c.name: _saved_node(c, work, frozen[c.name]) for c in driver.nodes.values()}
        finally:
            for node in driver.nodes.values():
                node.resume()
        manifest = SettledManifest(
            key=key,
            created=time.time(),
            cold_ready_seconds=round(cold_seconds, 3),
            save_seconds=round(time.monotonic() - started, 3),
            nodes=nodes,
        )
        manifest.save(work)
        final = root / key
        remove_tree(final)
        os.rename(work, final)
    except BaseException:
        remove_tree(work)
        raise
    if alone(in_use):
        try:
            for other in _snapshot_dirs(root):
                old_work = other.name.startswith(".") and time.time() - other.stat().st_mtime > 3600
                if other != final and (not other.name.startswith(".") or old_work):
                    remove_tree(other)
        finally:
            shared(in_use)
    return SettledSnapshot(final, manifest)


def _reset_for_cold_boot(driver: Driver) -> None:
    for node in driver.nodes.values():
        node.kill()
        node.disks.create_overlays()


def start_settled(driver: Driver, profile: Profile, root: Path) -> dict[str, Any]:
    """Bring every node to unit readiness: from the cached settled snapshot when one matches,
    else by a cold boot after which one is saved. Returns what happened (also written to
    ``settled.json`` in the run's output directory)."""
    logger = driver.logger
    started = time.monotonic()
    key, unsupported = settled_key(driver, profile)
    in_use: IO[str] | None = None
    try:
        in_use = use_snapshots(root)  # held while the run lives: overlays are backed by it
        driver.exit_hooks.append(in_use.close)
    except OSError as exc:  # a read-only or vanished cache: a cold boot, nothing saved
        key, unsupported = "", f"the settled cache {root} is not usable ({exc.strerror or exc})"
    report: dict[str, Any] = {"key": key, "nodes": [m.name for m in driver.machines]}
    snapshot = lookup(root, key, logger) if key else None
    if not key:
        logger.warning(f"settled snapshot not used: {unsupported}")
    if snapshot is not None:
        try:
            with logger.nested(f"restoring the settled cluster {snapshot.directory}"):
                restore_settled(driver, profile, snapshot)
            report.update(mode="restored", ready_seconds=time.monotonic() - started)
            return _report(driver, report, snapshot)
        except (DriverError, TimeoutError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning(
                f"settled snapshot {snapshot.directory} could not be restored ({reason}): "
                "removed, booting cold"
            )
            _reset_for_cold_boot(driver)
            remove_tree(snapshot.directory)
            started = time.monotonic()
    with logger.nested("cold boot to unit readiness"):
        driver.start_all()
        wait_for_readiness(driver.machines, profile)
    report.update(mode="cold", ready_seconds=time.monotonic() - started)
    if key and in_use is not None:
        try:
            with logger.nested("waiting for the services to settle"):
                wait_until_settled(driver.machines, profile)
            with logger.nested("saving the settled cluster"):
                saved = save_settled(driver, root, key, report["ready_seconds"], in_use)
            report["save_seconds"] = saved.manifest.save_seconds
            return _report(driver, report, saved)
        except (DriverError, TimeoutError, OSError) as exc:
            logger.warning(f"could not save the settled cluster: {exc}")
    return _report(driver, report, None)


def _report(
    driver: Driver, report: dict[str, Any], snapshot: SettledSnapshot | None
) -> dict[str, Any]:
    if snapshot is not None:
        report["snapshot"] = str(snapshot.directory)
        report["bytes_per_node"] = {
            name: node.bytes for name, node in snapshot.manifest.nodes.items()
        }
    driver.logger.log(
        f"settled cluster {report['mode']}: every node ready after {report['ready_seconds']:.1f}s"
        + (f", snapshot saved in {report['save_seconds']:.1f}s" if "save_seconds" in report else "")
    )
    driver.context.out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(driver.context.out_dir / REPORT, json.dumps(report, indent=2) + "\n")
    return report
