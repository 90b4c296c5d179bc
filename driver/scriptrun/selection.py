"""``--subtest REGEX`` and ``--list``: which subtests of a script run, found from its source.

A script's ``with subtest(...)`` statements are found with ``ast`` (``find_subtests``):
a literal name is known before the run, any other expression is *computed* (known only
when it runs). To skip a subtest that is not selected, the script is compiled with each
``with subtest(...)`` statement's body guarded (``compile_script``): ``subtest`` yields
False for a subtest that does not run, and the body is then not executed. Code outside
subtests runs as written.

Which subtests run (``decide``): one whose name matches a pattern (``re.search``), every
subtest nested in one that matched, and a subtest that holds a selected one (its
*container*: its own code runs, so the selected one can). Any other subtest is skipped,
and everything nested in it with it."""

from __future__ import annotations

import ast
import enum
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from driver.errors import UsageError

GUARD_PREFIX = "__photon_selected_"


class Verdict(enum.Enum):
    """What happens to one subtest under a selection."""

    SELECTED = "run"  # its name matched, or it is inside one that did: all of it runs
    CONTAINER = "run (holds a selected subtest)"  # it runs for a subtest inside it
    SKIPPED = "skip"
    UNKNOWN = "?"  # a computed name under --list: decided when it runs


@dataclass(frozen=True)
class SubtestSite:
    """One ``with subtest(...)`` statement of a script: its name (a literal, or the
    expression's source when ``computed``), its line and how deeply it is nested in other
    subtests."""

    name: str
    computed: bool
    line: int
    depth: int


@dataclass(frozen=True)
class Selection:
    """The ``--subtest`` patterns, and the subtests that hold a selected one
    (``with_sites``): by name, and by script and line (a computed name's only key)."""

    patterns: tuple[re.Pattern[str], ...]
    containers: frozenset[str] = field(default_factory=frozenset)
    container_sites: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    def matches(self, name: str) -> bool:
        """Whether ``name`` matches a pattern."""
        return any(p.search(name) for p in self.patterns)

    def reason(self) -> str:
        """Why a subtest that is not selected is skipped."""
        return "not selected by " + " ".join(f"--subtest {p.pattern!r}" for p in self.patterns)

    def with_sites(self, script: str, sites: Iterable[SubtestSite]) -> Selection:
        """This selection knowing the subtests of ``script``: each subtest that holds a
        literal one that matches becomes a container."""
        names, where = set(self.containers), set(self.container_sites)
        stack: list[SubtestSite] = []
        for site in sites:
            while stack and stack[-1].depth >= site.depth:
                stack.pop()
            if not site.computed and self.matches(site.name):
                names.update(s.name for s in stack if not s.computed)
                where.update((script, s.line) for s in stack)
            stack.append(site)
        return Selection(self.patterns, frozenset(names), frozenset(where))

    def decide(
        self, name: str, inside_selected: bool, where: tuple[str, int] | None = None
    ) -> Verdict:
        """Whether the subtest ``name`` (its ``with`` at ``where``, script and line, when
        known) runs; ``inside_selected``: it is nested in a subtest that matched."""
        if inside_selected or self.matches(name):
            return Verdict.SELECTED
        if name in self.containers or (where is not None and where in self.container_sites):
            return Verdict.CONTAINER
        return Verdict.SKIPPED


def selection_of(texts: list[str] | None) -> Selection | None:
    """The ``--subtest`` options as a Selection (None when there are none); a bad regular
    expression is a UsageError naming it."""
    if not texts:
        return None
    patterns = []
    for text in texts:
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            raise UsageError(f"--subtest: bad regular expression {text!r}: {exc}") from None
    return Selection(tuple(patterns))


def _is_subtest_call(expr: ast.expr) -> bool:
    """Whether ``expr`` is ``subtest(NAME)`` or ``x.subtest(NAME)``."""
    if not isinstance(expr, ast.Call) or not expr.args:
        return False
    func = expr.func
    return (isinstance(func, ast.Name) and func.id == "subtest") or (
        isinstance(func, ast.Attribute) and func.attr == "subtest"
    )


class _Split(ast.NodeTransformer):
    """``with a, subtest(x), b:`` as the nested ``with`` statements it means, so that each
    subtest is a ``with`` of its own."""

    def visit_With(self, node: ast.With) -> ast.AST:
        self.generic_visit(node)
        if len(node.items) < 2 or not any(_is_subtest_call(i.context_expr) for i in node.items):
            return node
        inner: list[ast.stmt] = node.body
        for item in reversed(node.items[1:]):
            inner = [ast.copy_location(ast.With(items=[item], body=inner), node)]
        node.items, node.body = node.items[:1], inner
        return node


def _parse(source: str, path: Path | str) -> ast.Module:
    """The script's tree with every subtest a ``with`` of its own (UsageError on a syntax
    error, naming file and line)."""
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
        raise UsageError(f"{where}: syntax error: {exc.msg}") from None
    split: ast.Module = _Split().visit(tree)
    return ast.fix_missing_locations(split)


def _site_call(node: ast.AST) -> ast.Call | None:
    """The subtest call of a one-item ``with`` statement (None for anything else)."""
    if isinstance(node, ast.With) and len(node.items) == 1:
        expr = node.items[0].context_expr
        if _is_subtest_call(expr):
            assert isinstance(expr, ast.Call)
            return expr
    return None


def find_subtests(source: str, path: Path | str) -> list[SubtestSite]:
    """Every ``with subtest(...)`` of the script, in source order (UsageError on a syntax
    error, naming file and line)."""
    sites: list[SubtestSite] = []

    def visit(node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            call = _site_call(child)
            if call is None or not isinstance(child, ast.With):
                visit(child, depth)
                continue
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                sites.append(SubtestSite(first.value, False, child.lineno, depth))
            else:
                sites.append(SubtestSite(ast.unparse(first), True, child.lineno, depth))
            visit(child, depth + 1)

    visit(_parse(source, path), 0)
    return sites


class _Guard(ast.NodeTransformer):
    """Wrap each ``with subtest(...)`` body in ``if <what subtest yielded> is not False``."""

    def visit_With(self, node: ast.With) -> ast.AST:
        self.generic_visit(node)
        if _site_call(node) is None:
            return node
        item = node.items[0]
        if item.optional_vars is None:
            name = f"{GUARD_PREFIX}{node.lineno}_{node.col_offset}"
            item.optional_vars = ast.copy_location(ast.Name(name, ast.Store()), item.context_expr)
        elif isinstance(item.optional_vars, ast.Name):
            name = item.optional_vars.id
        else:
            return node  # a subtest bound to a pattern (``as (a, b)``): runs as written
        test = ast.Compare(ast.Name(name, ast.Load()), [ast.IsNot()], [ast.Constant(False)])
        guard = ast.copy_location(ast.If(test=test, body=node.body, orelse=[]), node.body[0])
        node.body = [guard]
        return node


def guard_subtests(tree: ast.Module) -> ast.Module:
    """``tree`` with every ``with subtest(...)`` body run only when that subtest runs."""
    guarded: ast.Module = _Guard().visit(_Split().visit(tree))
    return ast.fix_missing_locations(guarded)


def compile_script(source: str, path: Path | str) -> types.CodeType:
    """The script compiled with its subtests guarded (line numbers as in the source)."""
    return compile(guard_subtests(_parse(source, path)), str(path), "exec")


def plan(script: str, sites: list[SubtestSite], selection: Selection | None) -> list[Verdict]:
    """What ``decide`` will say of each site when the script runs (UNKNOWN for a computed
    name, which is known only then); a subtest inside a skipped one is skipped."""
    verdicts: list[Verdict] = []
    stack: list[tuple[int, Verdict]] = []
    for site in sites:
        while stack and stack[-1][0] >= site.depth:
            stack.pop()
        outer = [v for _, v in stack]
        if selection is None or Verdict.SELECTED in outer:
            verdict = Verdict.SELECTED
        elif Verdict.SKIPPED in outer:
            verdict = Verdict.SKIPPED
        elif site.computed:
            held = (script, site.line) in selection.container_sites
            verdict = Verdict.CONTAINER if held else Verdict.UNKNOWN
        else:
            verdict = selection.decide(site.name, False, (script, site.line))
        verdicts.append(verdict)
        stack.append((site.depth, verdict))
    return verdicts


def list_lines(script: str, sites: list[SubtestSite], selection: Selection | None) -> list[str]:
    """``--list``: one line per subtest, nested ones indented, its line number after it.
    With a selection each line starts with ``run``, ``skip`` or ``?`` (a computed name,
    decided when it runs)."""
    lines = []
    for site, verdict in zip(sites, plan(script, sites, selection), strict=True):
        text = "  " * site.depth + site.name + (" (computed)" if site.computed else "")
        text += f"  [line {site.line}]"
        if selection is None:
            lines.append(text)
        else:
            mark = verdict.value.split(" ")[0]
            lines.append(f"{mark:<5}{text}")
    return lines


def unmatched(selection: Selection, sites: list[SubtestSite]) -> list[str]:
    """The patterns that match no subtest of ``sites`` when every name is a literal (with
    a computed name any pattern may still match when it runs)."""
    if any(s.computed for s in sites):
        return []
    return [p.pattern for p in selection.patterns if not any(p.search(s.name) for s in sites)]
