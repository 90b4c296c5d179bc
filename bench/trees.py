"""A checkout of the driver and how to run its photon-driver, for benchmarks that compare
two trees (compare.py, bench_reuse_ab.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


class Tree:
    """One checkout and how to run its photon-driver."""

    def __init__(self, name: str, path: Path, work: Path, vm_dir: Path | None = None) -> None:
        self.name = name
        self.path = path
        self.work = work / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.vm_dir = vm_dir or self.work / "vm"  # its clusters' state (shareable)
        self.settled_saved = False  # smoke_settled's untimed first run happened

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PYTHONPATH=str(self.path), PHOTON_VM_DIR=str(self.vm_dir), NO_COLOR="1")
        return env

    def cli(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "driver", *args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self.env(), cwd=self.path, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{self.name}: {' '.join(args)}: exit {proc.returncode}\n" + proc.stderr[-3000:]
            )
        return proc

    def timed(self, *args: str) -> float:
        started = time.monotonic()
        self.cli(*args)
        return time.monotonic() - started

    def script(self, name: str, text: str) -> str:
        path = self.work / name
        path.write_text(text)
        return str(path)
