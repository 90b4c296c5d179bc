"""The Machine: one QEMU node driven over QMP, its serial console and the backdoor shell.

``from driver.machine import Machine``."""

from driver.machine.machine import Machine

__all__ = ["Machine"]
