"""An installed runtime folder put to use, and out of use: PyTorch's on ``sys.path`` (at the
end: Blender's own packages win), ONNX Runtime GPU's handed to the engine, which imports it
from there alone (never on ``sys.path``, where it would shadow or mix with the bundled
onnxruntime); removal, and what interrupted work left beside it cleaned up."""
from __future__ import annotations

import importlib
import os
import sys

from . import files, paths
from .builds import TORCH, kind_of


def activate(target: str, kind: str = TORCH) -> bool:
    """Put an installed runtime to use: on ``sys.path``, or (ONNX Runtime GPU) as the engine's
    ONNX Runtime; False when there is none (or it awaits removal)."""
    cleanup(target)
    if not os.path.isdir(target) or removal_pending(target):
        return False
    if not kind_of(kind).on_sys_path:
        from ..inference import engine
        engine.use_onnxruntime_dir(target)
        return True
    if target not in sys.path:
        sys.path.append(target)
    importlib.invalidate_caches()
    return True


def deactivate(target: str, kind: str = TORCH):
    """Out of use: off ``sys.path``, or no longer the engine's ONNX Runtime (what is imported
    already stays until a restart)."""
    if not kind_of(kind).on_sys_path:
        from ..inference import engine
        if engine.onnxruntime_dir() and paths.same_or_inside(engine.onnxruntime_dir(), target):
            engine.use_onnxruntime_dir(None)
        return
    while target in sys.path:
        sys.path.remove(target)
    importlib.invalidate_caches()


def loaded_from(target: str, kind: str = TORCH) -> bool:
    """A module of the runtime (torch, transformers; onnxruntime) is already imported from
    ``target`` (only a restart unloads it)."""
    for name in kind_of(kind).modules:
        f = getattr(sys.modules.get(name), "__file__", None) or ""
        if f and paths.same_or_inside(f, target):
            return True
    return False


def removal_pending(target: str) -> bool:
    """A removal could not finish (Windows kept the files open): it does at the next start."""
    return os.path.isfile(os.path.join(target, paths.REMOVAL_MARK))


def remove(target: str, kind: str = TORCH) -> bool:
    """Delete the runtime; True when a restart is still needed: it is imported (only a restart
    unloads it), or Windows keeps some of its files open (they go at the next start, and
    ``removal_pending`` tells when nothing could be deleted yet). OSError when not even that
    could be recorded."""
    restart = loaded_from(target, kind)
    deactivate(target, kind)
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
        # runtime in place: it is marked instead, and goes at the next start before anything loads it.
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
