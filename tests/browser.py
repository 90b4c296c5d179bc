"""Headless Chromium (Debian's ``chromium``) for report tests: the DOM after the browser
parsed a page, as (tag, attributes) pairs, and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The browser binary (Debian's package ``chromium``)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed (.ci/install-host installs it)"
    return found


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def dom(page: Path) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    """The page as Chromium serialises it after loading, and its elements."""
    text = _run(page, "--dump-dom").stdout
    parser = _Elements()
    parser.feed(text)
    return text, parser.elements


def screenshot(page: Path, png: Path) -> Path:
    """A 1400x1100 screenshot of ``page`` at ``png``."""
    _run(page, f"--screenshot={png}", "--window-size=1400,1100", "--hide-scrollbars")
    assert png.stat().st_size > 0
    return png


def with_class(elements: list[tuple[str, dict[str, str]]], name: str) -> list[dict[str, str]]:
    """The attributes of every element whose class list has ``name``."""
    return [a for _, a in elements if name in a.get("class", "").split()]
