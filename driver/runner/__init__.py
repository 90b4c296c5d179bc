"""Runs: the Driver (machines and VLANs of one run), scripts, the persistent cluster,
snapshots, faults, the health gate.

``from driver.runner import Driver``."""

from driver.runner.driver import Driver

__all__ = ["Driver"]
