"""Text of any bytes, made safe for the files a run writes: the characters XML 1.0 cannot
hold (C0 controls but tab, LF and CR; lone surrogates), the C1 controls and line separators
that split lines in readers (NEL, U+2028, U+2029) and the Unicode non-characters, each
shown as its escape (``\\x1b``, ``\\u2028``). A lone surrogate U+DC80..U+DCFF is a byte
that was not UTF-8 (Python's ``surrogateescape``): it is shown as that byte (``\\xff``)."""

from __future__ import annotations

import re

NOTE = "[control characters escaped]"

_NONCHARACTERS = "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}-{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufddf"
    + _NONCHARACTERS
    + "]"
)
UNSAFE_IN_LINE = re.compile(f"[\t\n\r]|{UNSAFE.pattern}")
SURROGATES = re.compile("[\ud800-\udfff]")


def escape_char(char: str) -> str:
    """The visible escape of one character (``\\x00``, ``\\u2028``, ``\\U0001fffe``); an
    escaped byte (U+DC80..U+DCFF) is shown as the byte it stands for."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        code -= 0xDC00
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> tuple[str, bool]:
    """``text`` with every unsafe character replaced by its escape, and whether any was."""
    escaped, count = UNSAFE.subn(lambda m: escape_char(m.group()), text)
    return escaped, count > 0


def visible_text(text: str) -> str:
    """``text`` with every unsafe character escaped."""
    return visible(text)[0]


def one_line(text: str) -> str:
    """``text`` as one line (a name, an attribute): every unsafe character escaped, and
    tab, LF and CR too."""
    return UNSAFE_IN_LINE.sub(lambda m: escape_char(m.group()), text)


def noted_text(text: str) -> str:
    """``text`` with every unsafe character escaped and, when any was, a last line that
    says so once (``[control characters escaped]``)."""
    escaped, changed = visible(text)
    if not changed:
        return escaped
    return f"{escaped}{'' if escaped.endswith(chr(10)) or not escaped else chr(10)}{NOTE}"


def without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (a byte that was not UTF-8) as U+FFFD: what can
    be encoded as UTF-8 whatever it held."""
    return SURROGATES.sub("\ufffd", text)


def raw_bytes(text: str) -> bytes:
    """The bytes ``text`` was decoded from with ``surrogateescape`` (other lone surrogates
    as their UTF-8-like form)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
