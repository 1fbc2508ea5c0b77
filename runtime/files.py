"""Moving and deleting folders in a way that also works on Windows.

Windows refuses to move or delete a file that is open: a DLL of a PyTorch that Blender has
imported stays locked until Blender exits, and the virus scanner or the search indexer opens
what pip has just written for a moment. The moment passes, so a few retries ride it out; a
loaded DLL does not, and the callers then say that a restart finishes the job. Elsewhere a
PermissionError is final and nothing is retried.
"""
from __future__ import annotations

import os
import shutil
import stat
import sys
import time

WINDOWS = os.name == "nt"
ATTEMPTS = 6 if WINDOWS else 1
DELAY_S = 0.05                  # doubled after each try: about 1.5 s in all on Windows


def _retrying(action, attempts: int | None):
    n = ATTEMPTS if attempts is None else max(1, attempts)
    for i in range(n):
        try:
            return action()
        except PermissionError:
            if i == n - 1:
                raise
            time.sleep(DELAY_S * 2 ** i)


def replace(src: str, dst: str, attempts: int | None = None):
    """``os.replace`` (``dst`` must not be an existing folder), retried while Windows reports
    a file in use; the last PermissionError is raised."""
    _retrying(lambda: os.replace(src, dst), attempts)


def remove_file(path: str, attempts: int | None = None):
    """Delete one file, read-only ones too (Windows refuses those)."""
    def action():
        try:
            os.remove(path)
        except PermissionError:
            if not WINDOWS:
                raise
            os.chmod(path, stat.S_IWRITE)
            os.remove(path)
    _retrying(action, attempts)


def _make_writable_and_retry(func, path, _exc):
    """shutil.rmtree's error hook on Windows: clear the read-only flag and try once more;
    what is still in use stays (the caller sees the folder is not gone)."""
    try:
        os.chmod(path, stat.S_IWRITE)
        func(path)
    except OSError:
        pass


def rmtree(path: str, attempts: int | None = None) -> bool:
    """Delete a folder as far as it goes; True when it is gone."""
    n = ATTEMPTS if attempts is None else max(1, attempts)
    for i in range(n):
        if not os.path.lexists(path):
            return True
        if not WINDOWS:
            shutil.rmtree(path, ignore_errors=True)
        elif sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_make_writable_and_retry)
        else:
            shutil.rmtree(path, onerror=_make_writable_and_retry)
        if not os.path.lexists(path):
            return True
        if i < n - 1:
            time.sleep(DELAY_S * 2 ** i)
    return False
