"""Reading typed fields from decoded TOML/JSON with one-line errors that name the place."""

from __future__ import annotations

from typing import Any

from driver.errors import UsageError


def field(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """``table[key]``, which must be a ``kind`` (a bool is not an int); the UsageError
    names ``where`` and the key."""
    place = f"{where}.{key}" if where else key
    if key not in table:
        raise UsageError(f"{place}: missing field")
    value = table[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise UsageError(f"{place}: must be {kind.__name__}, got {value!r}")
    return value


def port(value: Any, where: str, allow_zero: bool = False) -> int:
    """A TCP/UDP port number (0 too with ``allow_zero``: "choose one")."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 65536:
        raise UsageError(f"{where}: bad port {value!r} ({low}-65535)")
    return value
