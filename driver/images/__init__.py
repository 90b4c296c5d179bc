"""Debian node images: rootfs, kernel, initramfs, base disk, per-node identity, cache."""
