"""RunOptions: a command line's options, typed and read once. Subcommands accept different
options; every one a run consults is a field here with its default written once (the
grammar's defaults are these), so no code asks an argparse Namespace whether it has one."""

from __future__ import annotations

import argparse
import dataclasses
import enum
from dataclasses import dataclass
from pathlib import Path

from driver.errors import UsageError

# The defaults the grammar shows and a command without the option gets.
GLOBAL_TIMEOUT_SECONDS = 3600.0
PROGRESS_AFTER_SECONDS = 30.0


class RunMode(enum.Enum):
    """Where a run's scripts meet their nodes."""

    FRESH = "fresh"  # fresh nodes in a run directory of their own, gone after the run
    REUSE = "reuse"  # the profile's running cluster (``--reuse``, the seed's script verbs)
    KEEP = "keep"  # fresh nodes, kept as the profile's cluster when the run fails


# The seed's script verbs: ``smoke`` runs on the running cluster, ``fresh-smoke`` on fresh
# nodes from the settled snapshot (``--cold``: a cold boot).
FRESH_PREFIX = "fresh-"


@dataclass(frozen=True)
class RunOptions:
    """What a command line says about a run (each field: its option's name)."""

    command: str = "run"
    scripts: tuple[Path, ...] = ()
    topology: Path | None = None
    log_level: str | None = None
    nodes: str | None = None
    subtest: tuple[str, ...] | None = None
    quarantine: Path | None = None
    output_dir: Path | None = None
    junit_xml: Path | None = None
    skip_check: bool = False
    debug_hook: bool = False
    rerun_failed: int = 0
    keep_on_failure: bool = False
    interactive: bool = False
    repeat: int = 1
    repetition: int = 0  # which repetition of ``--repeat`` this is (0: no repeat)
    progress_after: float = PROGRESS_AFTER_SECONDS
    global_timeout: float = GLOBAL_TIMEOUT_SECONDS
    images: bool = False
    reuse: bool = False
    settled: bool = False
    cold: bool = False
    containers: bool = False

    @property
    def mode(self) -> RunMode:
        """The run's mode: ``run --reuse`` and a seed verb without ``fresh-`` reuse the
        running cluster; ``--keep-on-failure`` keeps fresh nodes; else fresh nodes."""
        seed_verb = self.command not in ("run", "")
        if self.reuse or (seed_verb and not self.command.startswith(FRESH_PREFIX)):
            return RunMode.REUSE
        return RunMode.KEEP if self.keep_on_failure else RunMode.FRESH

    @property
    def from_settled(self) -> bool:
        """Whether fresh nodes start from the profile's settled snapshot: ``--settled``,
        or a ``fresh-`` seed verb without ``--cold`` or ``--containers`` (a settled
        snapshot is QEMU's: container nodes boot cold, in about a second)."""
        if self.mode is RunMode.REUSE or (self.containers and not self.settled):
            return False
        return self.settled or (self.command.startswith(FRESH_PREFIX) and not self.cold)

    def check(self) -> None:
        """UsageError, one line, for options that cannot go together."""
        clashes = [
            (
                self.settled and self.reuse,
                "--settled starts fresh nodes; it cannot go with --reuse",
            ),
            (
                self.repeat > 1 and self.interactive,
                "--repeat runs scripts again and again; it cannot go with -I",
            ),
            (
                self.debug_hook and self.interactive,
                "--debug-hook stops scripts for pdb; -I is interactive already",
            ),
            (
                self.settled and self.containers,
                "--settled starts QEMU from a saved state; container nodes have none",
            ),
            (
                self.keep_on_failure and self.reuse,
                "--keep-on-failure keeps fresh nodes; with --reuse they stay anyway",
            ),
        ]
        for clash, why in clashes:
            if clash:
                raise UsageError(f"{self.command}: {why}")

    @classmethod
    def of(cls, args: argparse.Namespace) -> RunOptions:
        """The options ``args`` holds; an option its subcommand does not take keeps its
        default."""
        given = vars(args)
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            value = given.get(field.name)
            if value is None:
                continue
            values[field.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)  # type: ignore[arg-type]

    def repetition_of(self, number: int, output_dir: Path) -> RunOptions:
        """These options for repetition ``number`` of ``--repeat``, writing to
        ``output_dir`` (its JUnit file there when the run writes one)."""
        junit = output_dir / "junit.xml" if self.junit_xml is not None else None
        return dataclasses.replace(self, repetition=number, output_dir=output_dir, junit_xml=junit)
