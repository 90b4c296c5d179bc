"""RunOptions: a command line's options, typed and read once. Subcommands accept different
options; every one a run consults is a field here with its default written once (the
grammar's defaults are these), so no code asks an argparse Namespace whether it has one."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

# The defaults the grammar shows and a command without the option gets.
GLOBAL_TIMEOUT_SECONDS = 3600.0
PROGRESS_AFTER_SECONDS = 30.0


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
