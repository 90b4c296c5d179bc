"""The one detached boot: fresh nodes in the profile's state directory that outlive the
command (``cluster start``; a ``--keep-on-failure`` run)."""

from __future__ import annotations

from typing import IO

from driver.run.driver import Driver
from driver.session.invocation import Invocation
from driver.state import cluster


def detached_driver(inv: Invocation, lock: IO[str], settled: bool = False) -> Driver:
    """Stop what a stale record left (its record, processes and sockets; the caller holds
    the cluster's ``lock`` and has judged any live record), then a Driver for fresh
    detached nodes on fresh overlays (``settled``: with the keys settled snapshots share)."""
    stopped = cluster.stop(inv.state, inv.logger, inv.environ, lock=lock)
    if stopped.killed:
        inv.logger.log(f"left over from before: {stopped.describe()}")
    driver = inv.fresh_driver(inv.state, detached=True, settled=settled)
    for node in driver.nodes.values():
        node.disks.create_overlays()
    return driver
