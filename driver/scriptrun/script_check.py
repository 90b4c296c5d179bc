"""Pre-boot check of a test script, in well under a second, before any VM boots: syntax,
unknown node names, undefined globals, attributes that do not exist on the objects a
script gets (``node01.wait_for_unitt``, ``t.assertEquall``), and names that must exist in
the topology (``profile.service("x")``, ``.endpoint("x")``, ``cli(profile, svc, action)``).
Every error is one line: ``file:line: message``."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import re
import symtable
from collections.abc import Iterable
from pathlib import Path

from driver.config.topology import Topology
from driver.errors import UsageError
from driver.scriptrun.namespace import GLOBALS, NODE_TYPE, node_symbols, vlan_symbol
from driver.scriptrun.nixos_imports import OFFERED

NODE_NAME = re.compile(r"^node\d+$")


def read_script(path: Path) -> str:
    """The text of the test script ``path``: UTF-8 (a leading BOM dropped), with no NUL
    byte, or a UsageError of one line naming the file and the byte offset."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: test script not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a test script") from None
    except PermissionError:
        raise UsageError(f"{path}: cannot read the test script (permission denied)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text at byte {exc.start}") from None
    if "\0" in text:
        raise UsageError(f"{path}: a NUL byte at byte {data.index(0)} (not a text file)")
    return text.removeprefix("\ufeff")


def _first_use(tree: ast.AST, name: str) -> int:
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    return min(lines) if lines else 1


def _undefined(table: symtable.SymbolTable, module_defs: set[str]) -> set[str]:
    missing: set[str] = set()
    for symbol in table.get_symbols():
        name = symbol.get_name()
        if not symbol.is_referenced():
            continue
        if table.get_type() == "module":
            if not (symbol.is_assigned() or symbol.is_imported() or name in module_defs):
                missing.add(name)
        elif symbol.is_global() and name not in module_defs:
            missing.add(name)
    for child in table.get_children():
        missing |= _undefined(child, module_defs)
    return missing


def _global_assignments(table: symtable.SymbolTable) -> set[str]:
    """Names a function declares ``global`` and assigns: module names the script makes."""
    names: set[str] = set()
    for child in table.get_children():
        for symbol in child.get_symbols():
            if symbol.is_declared_global() and symbol.is_assigned():
                names.add(symbol.get_name())
        names |= _global_assignments(child)
    return names


def _import_problems(path: Path, tree: ast.AST) -> list[tuple[int, str]]:
    """``from test_driver.X import Y`` of a module or name photon-driver does not offer."""
    problems: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            wanted = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            module, wanted = "", []
            for alias in node.names:
                if alias.name.split(".")[0] == "test_driver" and alias.name not in OFFERED:
                    problems.append(
                        (
                            node.lineno,
                            f"{path}:{node.lineno}: {alias.name}: not offered by photon-driver "
                            f"(offered: {', '.join(OFFERED)})",
                        )
                    )
            continue
        else:
            continue
        if module.split(".")[0] != "test_driver":
            continue
        if module not in OFFERED:
            problems.append(
                (
                    node.lineno,
                    f"{path}:{node.lineno}: {module}: not offered by photon-driver "
                    f"(offered: {', '.join(OFFERED)})",
                )
            )
            continue
        for name in wanted:
            if name != "*" and name not in OFFERED[module]:
                problems.append(
                    (
                        node.lineno,
                        f"{path}:{node.lineno}: {module} has no '{name}' here (offered: "
                        f"{', '.join(OFFERED[module])}); script globals need no import",
                    )
                )
    return problems


def _attributes(kind: type) -> set[str]:
    names = set(dir(kind))
    if dataclasses.is_dataclass(kind):
        names |= {f.name for f in dataclasses.fields(kind)}
    for klass in kind.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
    return names


def _types(tree: ast.AST, nodes: Iterable[str]) -> dict[str, type | str]:
    """What each script variable is: a global's type, a node (Machine), or a list of nodes
    ("machines"); simple aliases (``m = node01``, ``for w in workers``) follow."""
    types: dict[str, type | str] = {n: NODE_TYPE for n in node_symbols(list(nodes))}
    for name, entry in GLOBALS.items():
        resolved = entry.kind()
        if resolved is not None:
            types[name] = resolved
    types["machines"] = types["machines_qemu"] = types["machines_nspawn"] = "machines"
    stored = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for name in stored & set(GLOBALS):  # a script that rebinds a global owns it
        types.pop(name, None)
    for _ in range(2):  # aliases of aliases
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
                if not isinstance(target, ast.Name):
                    continue
                if isinstance(value, ast.Name) and value.id in types:
                    types[target.id] = types[value.id]
                elif (
                    isinstance(value, ast.List | ast.Tuple)
                    and value.elts
                    and all(
                        isinstance(e, ast.Name) and types.get(e.id) is NODE_TYPE for e in value.elts
                    )
                ):
                    types[target.id] = "machines"
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                it = node.iter
                if isinstance(it, ast.Name) and types.get(it.id) == "machines":
                    types[node.target.id] = NODE_TYPE
                elif (
                    isinstance(it, ast.List | ast.Tuple)
                    and it.elts
                    and all(
                        isinstance(e, ast.Name) and types.get(e.id) is NODE_TYPE for e in it.elts
                    )
                ):
                    types[node.target.id] = NODE_TYPE
    return types


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _topology_problems(
    path: Path, tree: ast.AST, topology: Topology | None, profile: str | None
) -> list[tuple[int, str]]:
    problems: list[tuple[int, str]] = []
    if topology is None or profile is None or profile not in topology.profiles:
        return problems
    services = {s.name: s for s in topology.profiles[profile].services}
    endpoints = {e.name for s in services.values() for e in s.endpoints}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = _literal(node.args[0])
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "service" and first is not None:
            if first not in services:
                problems.append(
                    (
                        node.lineno,
                        f"{path}:{node.lineno}: profile {profile} has no service '{first}' "
                        f"(known: {', '.join(services)})",
                    )
                )
        if isinstance(func, ast.Attribute) and func.attr == "endpoint" and first is not None:
            if first not in endpoints:
                problems.append(
                    (
                        node.lineno,
                        f"{path}:{node.lineno}: no endpoint '{first}' in profile {profile}",
                    )
                )
        if isinstance(func, ast.Name) and func.id == "cli" and len(node.args) >= 3:
            service, action = _literal(node.args[1]), _literal(node.args[2])
            if service is not None and service not in services:
                problems.append(
                    (
                        node.lineno,
                        f"{path}:{node.lineno}: profile {profile} has no service '{service}'",
                    )
                )
            elif service is not None and action is not None and action not in services[service].cli:
                known = ", ".join(services[service].cli) or "none"
                problems.append(
                    (
                        node.lineno,
                        f"{path}:{node.lineno}: service {service} declares no CLI action "
                        f"'{action}' (known: {known})",
                    )
                )
    return problems


def check_script(
    path: Path,
    source: str,
    nodes: Iterable[str],
    topology: Topology | None = None,
    profile: str | None = None,
) -> None:
    """Raise UsageError listing every problem of the script, one ``file:line: message``
    line each: a syntax error, a node that is not in this run, an undefined global, a
    missing attribute on a known object, a ``test_driver`` import that is not offered, or a
    service, endpoint or CLI action the topology does not declare."""
    nodes = list(nodes)
    try:
        tree = ast.parse(source, filename=str(path))
        table = symtable.symtable(source, str(path), "exec")
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
        raise UsageError(f"{where}: syntax error: {exc.msg}") from None
    module_defs = {
        s.get_name()
        for s in table.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace()
    } | _global_assignments(table)
    vlans = [vlan_symbol(n) for n in (topology.vlans.values() if topology else [])]
    known = {*GLOBALS, *node_symbols(nodes), *vlans, *dir(builtins), "__file__", "__name__"}
    problems: list[tuple[int, str]] = []
    all_nodes = set(topology.nodes) if topology else set()
    for name in _undefined(table, module_defs) - known:
        line = _first_use(tree, name)
        if NODE_NAME.match(name) or name in all_nodes:
            where = "not part of this run" if name in all_nodes else "not a node of this cluster"
            problems.append((line, f"{path}:{line}: unknown node '{name}' ({where})"))
        else:
            problems.append((line, f"{path}:{line}: undefined name '{name}'"))
    types = _types(tree, nodes)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            kind = types.get(node.value.id)
            if isinstance(kind, type) and node.attr not in _attributes(kind):
                what = "a node" if kind is NODE_TYPE else kind.__name__
                problems.append(
                    (
                        node.lineno,
                        f"{path}:{node.lineno}: {node.value.id}.{node.attr}: {what} has no "
                        f"attribute '{node.attr}'",
                    )
                )
    problems += _import_problems(path, tree) + _topology_problems(path, tree, topology, profile)
    if problems:
        ordered = [text for _, text in sorted(set(problems))]
        raise UsageError("\n".join(ordered))
