"""The persistent cluster's verbs: start, status, ssh, stop, clean; and build / clean."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from driver.errors import EXIT_OK, UsageError
from driver.images.builder import clean_images
from driver.images.profile_specs import profile_specs
from driver.run import snapshots
from driver.session.detached import detached_driver
from driver.session.invocation import Invocation
from driver.session.signals import global_timeout
from driver.state import cluster, runs, settled
from driver.state.settled_lock import removing_snapshots


def cmd_start(inv: Invocation, args: argparse.Namespace) -> int:
    """Start the profile's nodes detached (boot groups in order) and record them."""
    # The lock covers the whole start: a second start, a run on it or a stop is refused
    # at once until the record is written.
    with cluster.locked(inv.state) as lock:
        record = cluster.read_record(inv.state)
        if record and not cluster.check_record(inv.state, record):
            inv.logger.log(f"cluster already running in {inv.state}")
            return cluster.print_status(inv.state, sys.stdout)
        driver = detached_driver(inv, lock)
        with driver, global_timeout(inv.options.global_timeout):
            driver.start_all()
            cluster.write_record(driver, inv.profile)
    return cluster.print_status(inv.state, sys.stdout)


def cmd_status(inv: Invocation, args: argparse.Namespace) -> int:
    """One line per node: up or not, boot time, forwarded ports. Exit 2 with no cluster
    (as every verb that needs one), 3 when a node is down."""
    if cluster.read_record(inv.state) is None:
        raise UsageError(cluster.no_cluster(inv.state))
    return cluster.print_status(inv.state, sys.stdout)


def cmd_stop(inv: Invocation, args: argparse.Namespace) -> int:
    """Power the nodes off (then kill what is left) and stop the switches."""
    inv.logger.log(cluster.stop(inv.state, inv.logger, inv.environ).describe())
    return EXIT_OK


def remove_state(state: Path) -> list[str]:
    """Remove the profile's state directory but the run directories of live runs (their
    pids alive); returns those kept."""
    live = [d.name for d in (state / "runs").glob("*") if d.is_dir() and runs.running(d.name)]
    if not live:
        shutil.rmtree(state, ignore_errors=True)
        return []
    for child in state.iterdir():
        if child.name != "runs":
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
    for run in (state / "runs").iterdir():
        if run.name not in live:
            shutil.rmtree(run, ignore_errors=True)
    return live


def cmd_clean(inv: Invocation, args: argparse.Namespace) -> int:
    """Stop the cluster and remove its state (with --images also the image cache)."""
    if inv.options.images:
        inv.logger.log(f"removed {clean_images(inv.cache)} cached images")
    cluster.stop(inv.state, inv.logger, inv.environ)
    live = remove_state(inv.state)
    inv.logger.log(
        f"removed {inv.state}" + (f" (kept the live runs {', '.join(live)})" if live else "")
    )
    with removing_snapshots(inv.settled_root()) as unused:
        if not unused:
            inv.logger.warning(
                f"the settled snapshots in {inv.settled_root()} are in use by a live run: kept"
            )
        elif inv.settled_root().exists():
            shutil.rmtree(inv.settled_root(), ignore_errors=True)
            inv.logger.log(f"removed the settled snapshots in {inv.settled_root()}")
    return EXIT_OK


def remote_command(words: list[str]) -> list[str]:
    """The command ``ssh NODE -- CMD`` runs on the node: the first ``--`` ends our options;
    any later one belongs to the command."""
    return words[1:] if words[:1] == ["--"] else list(words)


def cmd_ssh(inv: Invocation, args: argparse.Namespace) -> int:
    """``ssh NODE [-- CMD]``: real SSH through the node's forwarded port."""
    node, command = args.node, remote_command(args.remote)
    with cluster.attach(inv.state, inv.context(inv.state)) as driver:
        try:
            machine = driver.machine(node)
        except KeyError:
            raise UsageError(f"ssh: unknown node '{node}'") from None
        machine.wait_for_ssh()
        argv = machine.ssh_command()
    return subprocess.call(argv + command)


def cmd_snapshot(inv: Invocation, args: argparse.Namespace) -> int:
    """``cluster snapshot NAME`` / ``restore NAME`` / ``snapshots`` (which also lists the
    cached settled snapshots, with or without a running cluster)."""
    if args.verb == "snapshots":
        for profile, saved in settled.list_settled(inv.cache):
            age = (time.time() - saved.manifest.created) / 3600
            print(
                f"settled/{profile}  {saved.directory.name}  {saved.size / 2**20:.0f} MiB "
                f"for {len(saved.manifest.nodes)} nodes  {age:.1f} h old"
            )
        if cluster.read_record(inv.state) is None:
            return EXIT_OK
    with cluster.attach(inv.state, inv.context(inv.state)) as driver:
        if args.verb == "snapshots":
            for node in driver.nodes.values():
                for info in snapshots.list_snapshots(node):
                    print(f"{info.node}  {info.name}  {info.vm_state}  {info.date}")
            return EXIT_OK
        if args.verb == "snapshot":
            driver.snapshot(args.name)
        else:
            driver.restore(args.name, keep_journals=False)  # no run to keep them for
    return EXIT_OK


def cmd_cluster(inv: Invocation, args: argparse.Namespace) -> int:
    """``cluster VERB``: argparse hands each verb to its own function; this is only reached
    without one."""
    raise UsageError("cluster: name a verb (start, status, ssh, stop, clean, snapshot, ...)")


def cmd_build(inv: Invocation, args: argparse.Namespace) -> int:
    """Build (or find cached) the profile's images and write its node specs."""
    known = inv.topology().nodes
    for name in args.node_names:
        if name not in known:
            raise UsageError(f"build: unknown node '{name}' (known: {', '.join(known)})")
    profile_specs(
        inv.topology(),
        inv.profile,
        inv.state / "build",
        inv.cache,
        inv.logger,
        list(args.node_names) or None,
        inv.args.specs,
    )
    return EXIT_OK
