"""Evaluate this project's flake with path inputs (issue 8): nixpkgs replaced by the real
nixpkgs lib (../shared/nix/nixpkgs-lib) plus typed stubs (tests/nix/nixpkgs), photoncloud by
a stub flake that declares the contract (tests/nix/photoncloud). Used by tests/test_flake.py.

Each ``Workspace`` copies the project's files (those git tracks, plus this working tree's
changes), the stubs and the lib into a temporary folder, so a test may break a copy on
purpose."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STUBS = REPO / "tests" / "nix"
NIXPKGS_LIB = REPO.parent / "shared" / "nix" / "nixpkgs-lib" / "lib"
FEATURES = ["--extra-experimental-features", "nix-command flakes"]


def project_files() -> list[str]:
    """The files a git flake would see: tracked plus untracked-but-not-ignored."""
    proc = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return [f for f in proc.stdout.splitlines() if (REPO / f).is_file()]


def real_nixpkgs() -> Path | None:
    """A real nixpkgs checkout named in NIX_PATH (``nixpkgs=/path``), used instead of the
    stubs when the host has one."""
    for entry in os.environ.get("NIX_PATH", "").split(":"):
        name, _, path = entry.partition("=")
        if name == "nixpkgs" and (Path(path) / "flake.nix").is_file():
            return Path(path)
    return None


@dataclass
class Workspace:
    """A copy of the flake and its stub inputs under ``root``."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """Lay out repo/, nixpkgs/ (stubs + real lib) and photoncloud/ (contract stub)."""
        for name in project_files():
            target = root / "repo" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
        shutil.copytree(STUBS / "nixpkgs", root / "nixpkgs")
        shutil.copytree(NIXPKGS_LIB, root / "nixpkgs" / "lib")
        shutil.copytree(STUBS / "photoncloud", root / "photoncloud")
        shutil.copy2(REPO / "nodes" / "cluster.toml", root / "photoncloud" / "cluster.toml")
        return cls(root)

    @property
    def repo(self) -> Path:
        """The project's copy."""
        return self.root / "repo"

    def nix(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """``nix ARGS`` on the copied flake with both inputs overridden by the stubs."""
        nixpkgs = real_nixpkgs() or self.root / "nixpkgs"
        argv = [
            "nix",
            *FEATURES,
            *args,
            "--override-input",
            "nixpkgs",
            f"path:{nixpkgs}",
            "--override-input",
            "photoncloud",
            f"path:{self.root / 'photoncloud'}",
            "--no-write-lock-file",
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def flake(self, attribute: str = "") -> str:
        """A flake reference to the copy (``path:`` so untracked files count)."""
        return f"path:{self.repo}" + (f"#{attribute}" if attribute else "")

    def eval_raw(self, attribute: str) -> str:
        """``nix eval --raw`` of a flake attribute."""
        proc = self.nix("eval", "--raw", self.flake(attribute))
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        return proc.stdout

    def derivations(self, attribute: str) -> dict[str, Any]:
        """``nix show-derivation -r``: the attribute's derivation and all it depends on."""
        proc = self.nix("show-derivation", "-r", self.flake(attribute))
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc

    def eval_json(self, attribute: str) -> Any:
        """``nix eval --json`` of a flake attribute; raises with Nix's stderr on failure."""
        proc = self.nix("eval", "--json", self.flake(attribute))
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        return json.loads(proc.stdout)
