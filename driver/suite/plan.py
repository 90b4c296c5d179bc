"""What a suite runs: the tests named by scripts, directories and suite files, each with a
stable id, and the shard of them one CI job takes.

Rules (README, "Running a suite"):

- ``SCRIPT.py``: one test. Its id is its path relative to the working directory without
  ``.py`` (an absolute path, without the leading ``/``, when it lies outside it).
- ``DIR``: every ``*.py`` below it (sorted; a file or folder whose name starts with ``_``
  or ``.`` is skipped), each one test as above.
- ``FILE.toml``: a suite file, ``[[script]]`` tables with ``path`` and optional ``id``,
  ``topology``, ``profile`` and ``args`` (more ``run`` options); paths relative to the
  file, ids by default the script's path relative to the file without ``.py``.
- A script's topology: its suite-file entry's, else a ``topology.toml`` in the script's
  folder, else the suite's ``--topology``, else the bundled one. The suite's ``--profile``
  and ``--specs`` go to the tests that use the suite's topology and name no profile.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.config.fields import field
from driver.errors import UsageError

SUITE_FIELDS = ("path", "id", "topology", "profile", "args")
BESIDE = "topology.toml"  # a topology next to a script is that script's


@dataclass(frozen=True)
class Defaults:
    """The suite's own ``--profile``, ``--topology`` and ``--specs``."""

    profile: str | None = None
    topology: Path | None = None
    specs: Path | None = None


@dataclass(frozen=True)
class SuiteTest:
    """One test of a suite: a script and how to run it."""

    id: str
    script: Path  # absolute
    cwd: Path  # where the run starts (relative paths in ``args`` resolve there)
    topology: Path | None = None  # None: the bundled topology
    profile: str | None = None  # None: the topology's default (or $PHOTON_PROFILE)
    specs: Path | None = None
    args: tuple[str, ...] = ()

    def run_options(self) -> list[str]:
        """The ``run`` options that say how to run it (topology, profile, specs, args)."""
        options: list[str] = []
        if self.profile is not None:
            options += ["--profile", self.profile]
        if self.topology is not None:
            options += ["--topology", str(self.topology)]
        if self.specs is not None:
            options += ["--specs", str(self.specs)]
        return options + list(self.args)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``total`` (1-based, as ``--shard I/N`` is written)."""

    index: int
    total: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with 1 <= I <= N; a ValueError says what is wrong."""
        index, slash, total = text.partition("/")
        if not slash or not index.strip().isdigit() or not total.strip().isdigit():
            raise ValueError(f"not I/N (e.g. 1/2): {text!r}")
        shard = cls(int(index), int(total))
        if not 1 <= shard.index <= shard.total:
            raise ValueError(f"I must be 1 to N: {text!r}")
        return shard


def id_of(script: Path, base: Path) -> str:
    """A script's id: its path relative to ``base`` without ``.py`` (POSIX form); the
    absolute path without its leading ``/`` when it lies outside ``base``."""
    relative = Path(os.path.relpath(script, base))
    if relative.parts and relative.parts[0] == "..":
        relative = script.relative_to(script.anchor)
    return relative.with_suffix("").as_posix() if relative.suffix == ".py" else relative.as_posix()


def check_id(identifier: str, where: str) -> str:
    """An id usable as a relative directory: no empty, ``.`` or ``..`` part, not absolute."""
    parts = identifier.split("/")
    if not identifier or identifier.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"{where}: bad test id {identifier!r} (a relative path, no '..')")
    return identifier


def script_test(script: Path, base: Path, defaults: Defaults) -> SuiteTest:
    """A script named on the command line or found in a directory."""
    script = script.resolve()
    beside = script.parent / BESIDE
    if beside.is_file():
        return SuiteTest(id_of(script, base), script, base, topology=beside)
    return SuiteTest(
        id_of(script, base),
        script,
        base,
        topology=defaults.topology.resolve() if defaults.topology else None,
        profile=defaults.profile,
        specs=defaults.specs.resolve() if defaults.specs else None,
    )


def scripts_below(folder: Path) -> list[Path]:
    """Every ``*.py`` below ``folder``, sorted, without ``_``/``.``-prefixed names."""
    found = []
    for path in folder.rglob("*.py"):
        parts = path.relative_to(folder).parts
        if not any(p.startswith(("_", ".")) for p in parts) and path.is_file():
            found.append(path)
    return sorted(found)


def suite_file_tests(path: Path, defaults: Defaults) -> list[SuiteTest]:
    """The tests of a suite file (``[[script]]``), paths relative to the file."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the suite file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"script"})
    if unknown:
        raise UsageError(f"{path}: unknown table '{unknown[0]}' (a suite file has [[script]])")
    entries = field(raw, "script", list, str(path))
    base = path.parent.resolve()
    tests = []
    for number, entry in enumerate(entries):
        where = f"{path}: script[{number}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: must be a table, got {entry!r}")
        tests.append(entry_test(entry, base, where, defaults))
    return tests


def entry_test(entry: dict[str, Any], base: Path, where: str, defaults: Defaults) -> SuiteTest:
    """One ``[[script]]`` table of a suite file in folder ``base``."""
    for key in entry:
        if key not in SUITE_FIELDS:
            raise UsageError(f"{where}.{key}: unknown field (known: {', '.join(SUITE_FIELDS)})")
    script = (base / field(entry, "path", str, where)).resolve()
    if not script.is_file():
        raise UsageError(f"{where}.path: {script}: no such test script")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise UsageError(f"{where}.args: must be a list of strings, got {args!r}")
    identifier = field(entry, "id", str, where) if "id" in entry else id_of(script, base)
    check_id(identifier, f"{where}.id")
    topology: Path | None = None
    if "topology" in entry:
        topology = (base / field(entry, "topology", str, where)).resolve()
        if not topology.is_file():
            raise UsageError(f"{where}.topology: {topology}: no such topology file")
    elif (script.parent / BESIDE).is_file():
        topology = script.parent / BESIDE
    own = topology is not None or "profile" in entry
    profile = field(entry, "profile", str, where) if "profile" in entry else None
    if topology is None:
        topology = defaults.topology.resolve() if defaults.topology else None
    return SuiteTest(
        identifier,
        script,
        base,
        topology=topology,
        profile=profile if own else defaults.profile,
        specs=None if own or defaults.specs is None else defaults.specs.resolve(),
        args=tuple(args),
    )


def collect(paths: list[Path], defaults: Defaults, cwd: Path) -> list[SuiteTest]:
    """The tests ``paths`` name (scripts, directories, suite files), sorted by id; an id
    named twice is a UsageError."""
    tests: list[SuiteTest] = []
    for path in paths:
        if path.is_dir():
            scripts = scripts_below(path)
            if not scripts:
                raise UsageError(f"{path}: no test scripts (*.py) in this directory")
            tests += [script_test(s, cwd, defaults) for s in scripts]
        elif path.suffix == ".toml" and path.is_file():
            tests += suite_file_tests(path, defaults)
        elif path.suffix == ".py" and path.is_file():
            tests.append(script_test(path, cwd, defaults))
        elif not path.exists():
            raise UsageError(f"{path}: no such script, directory or suite file")
        else:
            raise UsageError(f"{path}: not a test script (.py), directory or suite file (.toml)")
    seen: dict[str, SuiteTest] = {}
    for test in tests:
        if test.id in seen:
            raise UsageError(
                f"test id {test.id!r} named twice ({seen[test.id].script} and {test.script}); "
                "give one an id in a suite file"
            )
        seen[test.id] = test
    return sorted(tests, key=lambda t: t.id)


def read_durations(path: Path) -> dict[str, float]:
    """Test id -> seconds from a previous merged JUnit file (each ``testsuite``'s name and
    ``time``); ``path`` may be that file or a suite output directory holding it."""
    junit = path / "junit.xml" if path.is_dir() else path
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as exc:
        raise UsageError(f"--durations: {junit}: not a readable JUnit file: {exc}") from None
    durations: dict[str, float] = {}
    for suite in root.iter("testsuite"):
        try:
            durations[suite.get("name", "")] = float(suite.get("time", ""))
        except ValueError:
            continue
    return durations


def stable_hash(identifier: str) -> str:
    """A hash of an id that is the same on every machine and Python."""
    return hashlib.sha256(identifier.encode("utf-8", "surrogateescape")).hexdigest()


def assign(tests: list[SuiteTest], total: int, durations: dict[str, float]) -> list[int]:
    """The shard (0-based) of each test. With durations (tests not in them count as the
    median of those that are): longest first, each to the least loaded shard (the lowest
    on a tie). Without: ordered by a stable hash of the id and dealt round-robin. Every
    shard computes the same plan, so the shards are disjoint and cover every test once."""
    if not tests:
        return []
    known = sorted(durations[t.id] for t in tests if t.id in durations)
    if not known:
        order = sorted(range(len(tests)), key=lambda i: (stable_hash(tests[i].id), tests[i].id))
        shards = [0] * len(tests)
        for position, i in enumerate(order):
            shards[i] = position % total
        return shards
    median = known[len(known) // 2]
    cost = [max(durations.get(t.id, median), 0.0) for t in tests]
    loads = [0.0] * total
    shards = [0] * len(tests)
    for i in sorted(range(len(tests)), key=lambda i: (-cost[i], tests[i].id)):
        target = min(range(total), key=lambda s: (loads[s], s))
        shards[i] = target
        loads[target] += cost[i]
    return shards


def select(
    tests: list[SuiteTest], shard: Shard | None, durations: dict[str, float]
) -> list[SuiteTest]:
    """The tests of ``shard`` (all without one), in id order."""
    tests = sorted(tests, key=lambda t: t.id)
    if shard is None:
        return tests
    shards = assign(tests, shard.total, durations)
    return [t for t, s in zip(tests, shards, strict=True) if s == shard.index - 1]
