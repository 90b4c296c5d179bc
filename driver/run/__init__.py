"""The run and its driver: the Driver (nodes and VLAN switches of one run, their start and
cleanup), host ports, the health gate, faults, whole-cluster snapshots, unit readiness and
the script helpers the Driver keeps (polling conditions).

``from driver.run import Driver``."""

from driver.run.driver import Driver

__all__ = ["Driver"]
