"""The Machine: one QEMU node driven over QMP, its serial console and the backdoor shell."""
