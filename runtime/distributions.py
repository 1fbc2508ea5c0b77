"""The distributions in a ``pip install --target`` folder: which PyTorch and transformers are
there (read from their metadata, nothing imported), and deleting one by its RECORD."""
from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass

from . import files, paths


@dataclass(frozen=True)
class RuntimeInfo:
    torch: str | None              # version, or None
    transformers: str | None
    device: str                    # "CUDA", "MPS", "CPU" (in use), or the build's kind before torch loads
    in_target: bool                # installed by photo3d (else: found in Blender's Python)

    @property
    def ready(self) -> bool:
        return bool(self.torch and self.transformers)

    def text(self) -> str:
        if not self.torch and not self.transformers:
            return "PyTorch is not installed"
        parts = [f"PyTorch {self.torch} ({self.device})" if self.torch else "PyTorch missing",
                 f"transformers {self.transformers}" if self.transformers else "transformers missing"]
        return ", ".join(parts) + ("" if self.in_target else " (in Blender's Python)")


def _dist(name: str, target: str):
    for d in importlib.metadata.distributions(name=name, path=[target]):
        return d, True
    try:
        return importlib.metadata.distribution(name), False
    except importlib.metadata.PackageNotFoundError:
        return None, False


def info(target: str) -> RuntimeInfo:
    """What is installed, read from package metadata (torch is not imported for this)."""
    torch, in_target = _dist("torch", target)
    trf, _ = _dist("transformers", target)
    version = torch.version if torch is not None else None
    device = ""
    if version:
        mod = sys.modules.get("torch")
        loaded = getattr(mod, "__file__", None) or ""
        if mod is not None and hasattr(mod, "cuda") and loaded and \
                paths.same_or_inside(loaded, str(torch.locate_file(""))):          # this torch, loaded
            mps = getattr(getattr(mod, "backends", None), "mps", None)
            device = ("CUDA" if mod.cuda.is_available() else
                      "MPS" if mps is not None and mps.is_available() else "CPU")
        elif "+cpu" in version:
            device = "CPU build"
        elif "+cu" in version or any(r.lower().startswith(("nvidia", "cuda")) for r in (torch.requires or [])):
            device = "CUDA build"
        else:
            device = "MPS build" if sys.platform == "darwin" else "CPU build"
    return RuntimeInfo(version, trf.version if trf is not None else None, device, in_target)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def drop_distribution(folder: str, name: str) -> bool:
    """Delete an installed distribution from a ``--target`` folder by its RECORD."""
    canon = _canonical(name)
    root = os.path.join(os.path.abspath(folder), "")
    found = False
    for entry in os.listdir(folder):
        if not entry.endswith(".dist-info") or _canonical(entry.split("-")[0]) != canon:
            continue
        found = True
        info_dir = os.path.join(folder, entry)
        dirs = set()
        try:
            with open(os.path.join(info_dir, "RECORD"), encoding="utf-8") as f:
                record = [line.rsplit(",", 2)[0].strip().strip('"') for line in f]
        except OSError:
            record = []
        for rel in record:
            path = os.path.normpath(os.path.join(root, rel))
            if not rel or not path.startswith(root):
                continue
            if os.path.isfile(path) or os.path.islink(path):
                try:
                    files.remove_file(path)
                except OSError:
                    pass
            dirs.add(os.path.dirname(path))
        for d in sorted(dirs, key=len, reverse=True):      # now-empty package folders
            while d.startswith(root) and os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    break
                d = os.path.dirname(d)
        files.rmtree(info_dir)
    for top in (canon, f"{canon}.libs"):                     # whatever RECORD missed
        files.rmtree(os.path.join(folder, top))
    return found


def version_in(target: str, name: str) -> str | None:
    """The version of distribution ``name`` installed in ``target`` alone (its metadata), or None."""
    if not os.path.isdir(target):
        return None
    for d in importlib.metadata.distributions(name=name, path=[target]):
        return d.version
    return None


_sizes: dict[tuple, float] = {}


def folder_mb(target: str) -> float:
    """The size of a runtime folder in MB (walked once per install: the preferences redraw often)."""
    try:
        st = os.stat(target)
    except OSError:
        return 0.0
    key = (os.path.abspath(target), st.st_ino, st.st_mtime_ns)
    if key not in _sizes:
        total = 0
        for root, _dirs, names in os.walk(target):
            for n in names:
                try:
                    total += os.lstat(os.path.join(root, n)).st_size
                except OSError:
                    pass
        _sizes[key] = total / 1e6
    return _sizes[key]
