"""The installed runtime folder: put on ``sys.path`` (at the end: Blender's own packages win),
taken off, removed, and what interrupted work left beside it cleaned up."""
from __future__ import annotations

import importlib
import os
import sys

from . import files, paths


def activate(target: str) -> bool:
    """Put an installed runtime on ``sys.path``; False when there is none (or it awaits removal)."""
    cleanup(target)
    if not os.path.isdir(target) or removal_pending(target):
        return False
    if target not in sys.path:
        sys.path.append(target)
    importlib.invalidate_caches()
    return True


def deactivate(target: str):
    while target in sys.path:
        sys.path.remove(target)
    importlib.invalidate_caches()


def loaded_from(target: str) -> bool:
    """Torch or transformers is already imported from ``target`` (only a restart unloads it)."""
    for name in ("torch", "transformers"):
        f = getattr(sys.modules.get(name), "__file__", None) or ""
        if f and paths.same_or_inside(f, target):
            return True
    return False


def removal_pending(target: str) -> bool:
    """A removal could not finish (Windows kept the files open): it does at the next start."""
    return os.path.isfile(os.path.join(target, paths.REMOVAL_MARK))


def remove(target: str) -> bool:
    """Delete the runtime; True when a restart is still needed: it is imported (only a restart
    unloads it), or Windows keeps some of its files open (they go at the next start, and
    ``removal_pending`` tells when nothing could be deleted yet). OSError when not even that
    could be recorded."""
    restart = loaded_from(target)
    deactivate(target)
    if not os.path.isdir(target):
        return restart
    trash = paths.beside(target, paths.TRASH)
    attempts = 1 if restart else None          # a loaded DLL stays locked: no use waiting for it
    try:
        files.replace(target, trash, attempts)
    except PermissionError:
        if not files.WINDOWS:
            raise
        # Windows: a loaded DLL pins the folder. Deleting file by file would leave half a
        # PyTorch in place: it is marked instead, and goes at the next start before anything loads it.
        with open(os.path.join(target, paths.REMOVAL_MARK), "w", encoding="utf-8") as f:
            f.write("photo3d deletes this folder when Blender starts next\n")
        return True
    return not files.rmtree(trash, attempts) or restart


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)        # signal 0: a check only (on Windows os.kill would end the process)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)      # own prototypes, not the shared windll's
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.GetExitCodeProcess.restype = wintypes.BOOL
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    handle = kernel32.OpenProcess(0x1000, False, pid)           # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5                     # access denied: it exists
    try:
        code = wintypes.DWORD()
        return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == 259   # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def cleanup(target: str):
    """Finish what an interrupted install, upgrade or removal left (never touching the staging
    folder of an install still running in another process), and a removal that had to wait."""
    if removal_pending(target):
        try:
            files.replace(target, paths.beside(target, paths.TRASH))
        except OSError:
            pass                    # still in use: activate() keeps it off sys.path
    for path, kind, pid in paths.leftovers(target):
        if kind == paths.STAGING and _pid_alive(pid):
            continue
        if kind == paths.OLD and not os.path.exists(target) and (pid == os.getpid() or not _pid_alive(pid)):
            try:            # an upgrade stopped between its two renames: the previous runtime is whole
                files.replace(path, target)
                continue
            except OSError:
                pass
        files.rmtree(path)
