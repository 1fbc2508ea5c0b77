"""A small shared thread pool for independent pieces of a stage.

NumPy, OpenCV and SciPy release the GIL in their heavy loops, so pieces that do not depend
on each other (the colour fill of each depth bin, the subject's matte beside the depth
fill) overlap on a second core. The pipeline already runs off Blender's main thread; these
workers never touch ``bpy``.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_PREFIX = "photo3d-worker"
_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()


def pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2)), thread_name_prefix=_PREFIX)
        return _POOL


def submit(fn: Callable[..., R], *args, **kwargs) -> Future:
    """Run ``fn`` on a worker (inline when called from one: a worker waiting on the pool
    could wait forever)."""
    if threading.current_thread().name.startswith(_PREFIX):
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:      # noqa: BLE001 - handed to the caller by result()
            f.set_exception(e)
        return f
    return pool().submit(fn, *args, **kwargs)


def map_each(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, the first on this thread and the rest on workers."""
    items = list(items)
    if len(items) < 2:
        return [fn(x) for x in items]
    rest = [submit(fn, x) for x in items[1:]]
    first = fn(items[0])
    return [first] + [f.result() for f in rest]
