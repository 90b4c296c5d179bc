"""Build a node image into the content-addressed cache, or find it there.

Layout: ``<cache>/images/<name>-<key16>/`` holds ``vmlinux`` (uncompressed, PVH entry),
``initrd.img`` (busybox + modules), ``base.img`` (raw ext4, read-only under per-node qcow2
overlays) and ``manifest.json``. A build happens in a temporary sibling folder and is
renamed into place only when complete, under a lock, so a half-written image is never
picked up and concurrent builds of one key don't collide.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from driver.errors import InfraError
from driver.file_modes import image_files
from driver.hosttools import remove_tree, require, run_tool
from driver.images import cpio
from driver.images.kernel import extract_vmlinux, load_order
from driver.images.recipe import GUEST_DIR, ImageRecipe
from driver.images.rootfs import build_rootfs
from driver.log import Logger


def default_cache_root(environ: Mapping[str, str]) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/photoncloud-test-driver``."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "photoncloud-test-driver"


@dataclass(frozen=True)
class Image:
    """A built image in the cache."""

    directory: Path
    key: str
    kernel_version: str
    cached: bool

    @property
    def vmlinux(self) -> Path:
        """The uncompressed kernel."""
        return self.directory / "vmlinux"

    @property
    def initrd(self) -> Path:
        """The shared initramfs (per-node identity is appended to a copy of it)."""
        return self.directory / "initrd.img"

    @property
    def base(self) -> Path:
        """The read-only raw ext4 base disk."""
        return self.directory / "base.img"


# Where the image carries the uncompressed kernel (nested guests boot it: see
# driver/scripting/endpoints.py).
NESTED_KERNEL = "boot/vmlinux"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load(directory: Path, cached: bool) -> Image:
    manifest = json.loads((directory / "manifest.json").read_text())
    return Image(directory, manifest["key"], manifest["kernel_version"], cached)


def image_dir(recipe: ImageRecipe, cache_root: Path) -> Path:
    """Where the image of ``recipe`` lives (or will live) in the cache: an image of the
    same content built under another name is the same image."""
    key = recipe.cache_key()[:16]
    images = cache_root / "images"
    if images.is_dir():
        for found in sorted(images.glob(f"*-{key}")):
            if not found.name.startswith("."):
                return found
    return images / f"{recipe.name}-{key}"


def build_initramfs(kernel_dir: Path, dest: Path) -> None:
    """busybox + the modules that reach the root disk + our /init, as a newc cpio."""
    busybox = kernel_dir / "busybox"
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    entries = [cpio.Entry.directory(d) for d in ("bin", "dev", "proc", "sys", "modules")]
    entries.append(cpio.Entry.file("bin/busybox", busybox.read_bytes(), 0o755))
    entries += [
        cpio.Entry.symlink(f"bin/{name}", "busybox")
        for name in sorted(set(applets))
        if name != "busybox"  # a self-link would break /init
    ]
    modules = load_order(kernel_dir / "modules")
    entries += [cpio.Entry.file(f"modules/{ko.name}", ko.read_bytes()) for ko in modules]
    order = "".join(f"{ko.name}\n" for ko in modules)
    entries.append(cpio.Entry.file("modules/order", order.encode()))
    entries.append(cpio.Entry.file("init", (GUEST_DIR / "init").read_bytes(), 0o755))
    dest.write_bytes(cpio.archive(entries))


def make_base_disk(
    tarball: Path,
    dest: Path,
    size_mib: int,
    work: Path,
    extra_files: Mapping[str, Path] | None = None,
) -> None:
    """Unpack the rootfs (fakeroot when not root), add ``extra_files`` (path in the rootfs
    to a host file, root-owned, mode 0644) and ``mkfs.ext4 -d`` it into a sparse file."""
    mkfs = require("mkfs.ext4")
    tree = work / "tree"
    tree.mkdir()
    with dest.open("wb") as handle:
        handle.truncate(size_mib * 1024 * 1024)
    copies = "".join(
        f"install -D -m 0644 {shlex.quote(str(source))} {shlex.quote(str(tree / rel))} && "
        for rel, source in (extra_files or {}).items()
    )
    script = (
        f"tar --numeric-owner -xpf '{tarball}' -C '{tree}' && {copies}"
        f"'{mkfs}' -q -F -L photon-root -d '{tree}' "
        f"-E lazy_itable_init=1,lazy_journal_init=1 '{dest}'"
    )
    argv = ["sh", "-c", script] if os.geteuid() == 0 else [require("fakeroot"), "sh", "-c", script]
    proc = run_tool(argv)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        if "No space left" in proc.stderr:
            raise InfraError(f"{dest}: disk full while writing the base disk")
        raise InfraError(f"{dest}: base disk creation failed: {' '.join(detail)}")


def sweep_stale_builds(images: Path) -> None:
    """Remove the temporary folders of builds whose process is gone (killed mid-build)."""
    for stale in images.glob(".*.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            remove_tree(stale)


def build_image(
    recipe: ImageRecipe, cache_root: Path, logger: Logger, force: bool = False
) -> Image:
    """Return the cached image for ``recipe``, building it first if needed."""
    final = image_dir(recipe, cache_root)
    if not force and (final / "manifest.json").exists():
        logger.log(f"image '{recipe.name}' is cached at {final} (nothing to do)")
        return _load(final, cached=True)
    with _locked(final.with_suffix(".lock")):
        if not force and (final / "manifest.json").exists():
            logger.log(f"image '{recipe.name}' was built meanwhile at {final}")
            return _load(final, cached=True)
        started = time.monotonic()
        sweep_stale_builds(final.parent)
        work = final.parent / f".{final.name}.tmp-{os.getpid()}"
        remove_tree(work)
        work.mkdir(parents=True)
        try:
            with (
                image_files(),
                logger.nested(f"building image '{recipe.name}' ({recipe.cache_key()[:16]})"),
            ):
                with logger.nested("root filesystem (mmdebstrap)"):
                    tarball = build_rootfs(recipe, work)
                result = work / "result"
                result.mkdir()
                with logger.nested("kernel and initramfs"):
                    kernel_dir = work / "kernel"
                    extract_vmlinux(kernel_dir / "vmlinuz", result / "vmlinux")
                    build_initramfs(kernel_dir, result / "initrd.img")
                with logger.nested("base disk (mkfs.ext4 -d)"):
                    # The uncompressed kernel in the rootfs too: a nested guest boots it
                    # through its PVH entry, without decompressing (seconds under TCG).
                    make_base_disk(
                        tarball,
                        result / "base.img",
                        recipe.size_mib,
                        work,
                        {NESTED_KERNEL: result / "vmlinux"},
                    )
                kver = (kernel_dir / "kernel-version").read_text().strip()
                manifest = {
                    "key": recipe.cache_key(),
                    "name": recipe.name,
                    "kernel_version": kver,
                    "packages": recipe.all_packages(),
                    "suite": recipe.suite,
                    "build_seconds": round(time.monotonic() - started, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                (result / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
                if final.exists():
                    shutil.rmtree(final)
                result.rename(final)
        finally:
            remove_tree(work)
        return _load(final, cached=False)


def clean_images(cache_root: Path) -> int:
    """Remove every cached image; returns how many were removed."""
    images = cache_root / "images"
    if not images.exists():
        return 0
    count = sum(1 for p in images.iterdir() if p.is_dir() and not p.name.startswith("."))
    shutil.rmtree(images)
    return count
