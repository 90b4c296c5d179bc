"""One action on many things at once, one thread each: the results in order, the first
failure re-raised. Each thread runs in a copy of the caller's context (contextvars), so
what it logs is captured for the caller's subtest."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def on_each(
    items: Sequence[Item], action: Callable[[Item], Result], name: str = "each"
) -> list[Result]:
    """``action(item)`` for every item at once; the results in the items' order. The first
    failure (in order) is re-raised; on it, or on an interruption, the others are not waited
    for: their threads end when cleanup kills what they wait on."""
    if not items:
        return []
    if len(items) == 1:
        return [action(items[0])]
    pool = ThreadPoolExecutor(max_workers=len(items), thread_name_prefix=name)
    try:
        futures = [pool.submit(contextvars.copy_context().run, action, i) for i in items]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
