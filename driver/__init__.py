"""photoncloud-test-driver: a NixOS-test-driver-style QEMU VM test cluster."""

__version__ = "0.1.0"
