"""Where each runtime lives (one folder per kind, side by side), and the folders an install,
an upgrade or a removal puts beside it.

Those work folders sit next to the runtime (same disk, so moving one into place is a rename)
and carry the id of the process that made them (``site-packages.installing-1234``): leftovers
of one that was interrupted are recognised, and another Blender's install still running is
left alone.
"""
from __future__ import annotations

import os
import re
import sys

from .builds import KINDS, TORCH

ENV_DIR = KINDS[TORCH].env_dir          # "PHOTO3D_RUNTIME_DIR"
ROOT_PACKAGE = __package__.rpartition(".")[0]      # "photo3d", or "bl_ext.<repo>.photo3d" in Blender
STAGING, OLD, TRASH = "installing", "old", "removing"
# A file inside the runtime: it is to be deleted at the next start (Windows kept it locked).
REMOVAL_MARK = ".photo3d-remove-at-start"


def default_dir(kind: str = TORCH) -> str:
    """Where the runtime of ``kind`` goes outside Blender's extension folders (CLI, tests, scripts)."""
    k = KINDS[kind]
    return os.environ.get(k.env_dir) or os.path.join(os.path.expanduser("~"), ".cache", "photo3d", "runtime",
                                                     k.folder)


def runtime_dir(kind: str = TORCH) -> str:
    """The folder of the runtime of ``kind``: its environment variable (``PHOTO3D_RUNTIME_DIR``,
    ``PHOTO3D_ONNXRUNTIME_DIR``), else in the extension's user folder (``bl_ext.<repo>.photo3d``
    only), else in ``~/.cache/photo3d/runtime``: ``site-packages`` (PyTorch), ``onnxruntime-gpu``."""
    k = KINDS[kind]
    if os.environ.get(k.env_dir):
        return os.environ[k.env_dir]
    bpy = sys.modules.get("bpy")          # only where Blender runs already: never imported for this
    try:   # the extension's own folder, not the runtime's itself: that appears only once installed
        return os.path.join(bpy.utils.extension_path_user(ROOT_PACKAGE, create=True), k.folder)
    except (ValueError, AttributeError):  # no Blender, not loaded as an extension (tests, scripts), Blender < 4.2
        return default_dir(kind)


def beside(target: str, kind: str, pid: int | None = None) -> str:
    """The work folder of ``kind`` (STAGING, OLD, TRASH) of this process (or ``pid``) next to ``target``."""
    return f"{target}.{kind}-{os.getpid() if pid is None else pid}"


def leftovers(target: str) -> list[tuple[str, str, int]]:
    """The work folders next to ``target``, of any process: (path, kind, pid)."""
    parent, base = os.path.split(os.path.abspath(target))
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    pattern = re.compile(re.escape(base) + rf"\.({STAGING}|{OLD}|{TRASH})-(\d+)", re.I if os.name == "nt" else 0)
    return [(os.path.join(parent, n), m.group(1).lower(), int(m.group(2)))
            for n in sorted(names) if (m := pattern.fullmatch(n))]


def same_or_inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies in it, after links and (Windows) letter case."""
    root = os.path.normcase(os.path.realpath(folder))
    p = os.path.normcase(os.path.realpath(path))
    return p == root or p.startswith(os.path.join(root, ""))
