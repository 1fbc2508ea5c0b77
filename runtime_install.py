"""PyTorch and transformers on demand, for the downloadable depth models (no bpy here).

The extension ships no PyTorch (far too big to bundle). This module installs ``torch``,
``transformers``, ``huggingface_hub`` and ``safetensors`` into a private folder that the
caller names (Blender: the extension's user folder; elsewhere ``PHOTO3D_RUNTIME_DIR`` or
``~/.cache/photo3d/runtime/site-packages``) with ``python -m pip install --target``:

- pip installs into a staging folder beside the target (its temporary files too); only when
  pip succeeded is the staging folder renamed into place, so a failed, cancelled or disk-full
  install leaves no half runtime, and a previous good one survives a failed upgrade;
- Blender's NumPy stays authoritative: pip gets a constraints file pinning the running
  ``numpy.__version__`` (torch and transformers resolve to versions that work with it), and
  the copy of NumPy pip puts into the target is deleted. ``activate`` *appends* the target
  to ``sys.path``, so nothing in it shadows what Blender ships;
- builds: "CPU" (PyTorch's CPU index on Linux and Windows, a few hundred MB) or "GPU"
  (CUDA: PyPI's torch on Linux, PyTorch's CUDA index on Windows; GBs). On macOS PyPI's
  torch already uses the Apple GPU (MPS): both choices install it;
- ``PHOTO3D_PIP_ARGS`` adds pip arguments (a studio's wheel mirror: ``--no-index
  --find-links /mirror``; an ``--index-url`` or ``--no-index`` there replaces the build's
  indexes), ``PHOTO3D_RUNTIME_PACKAGES`` replaces the package list (pinned versions);
- ``Installer`` runs pip in a subprocess read by a background thread; ``step()`` (Blender's
  main thread, or a test's loop) turns pip's lines into a short status and a rough fraction;
  ``cancel()`` kills pip and the staging folder goes. Errors become one message.
"""
from __future__ import annotations

import errno
import importlib
import importlib.metadata
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

PACKAGES = ("torch>=2.2", "transformers>=4.50,<5", "huggingface_hub", "safetensors")
ENV_PIP_ARGS = "PHOTO3D_PIP_ARGS"
ENV_PACKAGES = "PHOTO3D_RUNTIME_PACKAGES"
ENV_DIR = "PHOTO3D_RUNTIME_DIR"
PYPI = "https://pypi.org/simple"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"     # Windows: PyPI's torch there is CPU-only
NEVER_KEEP = ("numpy",)                # Blender ships it; a second copy would break Blender and add-ons
# What the CPU build must never pull in: a sign that pip fell back to PyPI's CUDA torch.
_CUDA_PACKAGE = re.compile(r"^(nvidia[-_]|cuda[-_](toolkit|bindings|runtime)|triton\b)", re.I)

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


@dataclass(frozen=True)
class Build:
    key: str                  # "CPU" or "GPU"
    label: str
    description: str
    index_args: tuple[str, ...]
    download_mb: int          # roughly what pip downloads
    disk_mb: int              # roughly what the installed runtime and its staging take

    def size_text(self) -> str:
        return _mb_text(self.download_mb)


def builds(platform: str = sys.platform) -> dict[str, Build]:
    """The two choices, as they are on ``platform`` (``sys.platform``)."""
    if platform == "darwin":
        mps = ("Apple GPU", "PyTorch from PyPI: runs on the Apple GPU (MPS) where there is one")
        return {k: Build(k, mps[0], mps[1], (), 150, 900) for k in ("CPU", "GPU")}
    cpu_index = ("--index-url", TORCH_CPU_INDEX, "--extra-index-url", PYPI)
    gpu_index = ("--index-url", TORCH_CUDA_INDEX, "--extra-index-url", PYPI) if platform == "win32" else ()
    return {
        "CPU": Build("CPU", "CPU", "PyTorch's CPU build: works everywhere, a smaller download", cpu_index, 250, 1500),
        "GPU": Build("GPU", "GPU (CUDA)", "PyTorch with CUDA for NVIDIA graphics cards: much faster depth, "
                                          "a download of several GB", gpu_index, 3000, 9000),
    }


def _mb_text(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB" if mb >= 1 else f"{mb * 1000:.0f} kB"


def default_dir() -> str:
    """Where the runtime goes outside Blender's extension folders (CLI, tests, scripts)."""
    return os.environ.get(ENV_DIR) or os.path.join(os.path.expanduser("~"), ".cache", "photo3d", "runtime",
                                                   "site-packages")


def extra_pip_args(env=None) -> list[str]:
    text = (os.environ if env is None else env).get(ENV_PIP_ARGS, "").strip()
    if not text:
        return []
    if os.name == "nt":          # keep backslashes in Windows paths; drop the quotes around them
        return [a[1:-1] if len(a) > 1 and a[0] == a[-1] and a[0] in "\"'" else a
                for a in shlex.split(text, posix=False)]
    return shlex.split(text)


def uses_network(env=None) -> bool:
    """Whether the install would reach out to an index (``--no-index`` mirrors do not)."""
    return "--no-index" not in extra_pip_args(env)


def packages(env=None) -> list[str]:
    text = (os.environ if env is None else env).get(ENV_PACKAGES, "").strip()
    return text.split() if text else list(PACKAGES)


def constraints_text() -> str:
    """Pins for pip: the NumPy that is running (Blender's) stays the one torch and transformers see."""
    import numpy
    return f"numpy=={numpy.__version__}\n"


def own_indexes(env=None) -> bool:
    """The build's indexes are used (``PHOTO3D_PIP_ARGS`` names none of its own)."""
    return not any(a in ("--no-index", "-i", "--index-url") or a.startswith("--index-url=")
                   for a in extra_pip_args(env))


def pip_command(target: str, build: Build, constraints: str, pkgs=None, python: str | None = None,
                env=None, raw_progress: bool = True) -> list[str]:
    """``python -m pip install --target ...`` for the chosen build and packages."""
    extra = extra_pip_args(env)
    return [python or sys.executable, "-m", "pip", "install", "--target", target, "--constraint", constraints,
            "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
            "--progress-bar", "raw" if raw_progress else "off",
            *(build.index_args if own_indexes(env) else ()), *extra,
            *(packages(env) if pkgs is None else pkgs)]


# --- the folder -----------------------------------------------------------------------------

def activate(target: str) -> bool:
    """Put an installed runtime on ``sys.path`` (at the end: Blender's own packages win)."""
    cleanup(target)
    if not os.path.isdir(target):
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
    root = os.path.realpath(target) + os.sep
    for name in ("torch", "transformers"):
        f = getattr(sys.modules.get(name), "__file__", None) or ""
        if f and os.path.realpath(f).startswith(root):
            return True
    return False


def remove(target: str) -> bool:
    """Delete the runtime; True when a restart is still needed to unload it (already imported)."""
    restart = loaded_from(target)
    deactivate(target)
    if os.path.isdir(target):
        trash = f"{target}.removing-{os.getpid()}"
        try:
            os.replace(target, trash)
        except OSError:      # Windows: a loaded DLL pins the folder; it goes at the next start
            trash = target
        shutil.rmtree(trash, ignore_errors=True)
        if os.path.exists(trash) and trash != target:
            restart = True
    return restart


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        import ctypes
        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)   # PROCESS_QUERY_LIMITED_INFORMATION
        if handle:
            ctypes.windll.kernel32.CloseHandle(handle)
        return bool(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def cleanup(target: str):
    """Remove what an interrupted install, upgrade or removal left beside ``target``
    (never the staging folder of an install still running in another process)."""
    parent, base = os.path.split(os.path.abspath(target))
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        m = re.fullmatch(re.escape(base) + r"\.(installing|old|removing)-(\d+)", name)
        if m and not (m.group(1) == "installing" and _pid_alive(int(m.group(2)))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def drop_distribution(folder: str, name: str) -> bool:
    """Delete an installed distribution from a ``--target`` folder by its RECORD."""
    canon = re.sub(r"[-_.]+", "_", name).lower()
    found = False
    for entry in os.listdir(folder):
        if not entry.endswith(".dist-info") or re.sub(r"[-_.]+", "_", entry.split("-")[0]).lower() != canon:
            continue
        found = True
        info = os.path.join(folder, entry)
        dirs = set()
        try:
            with open(os.path.join(info, "RECORD"), encoding="utf-8") as f:
                for line in f:
                    rel = line.rsplit(",", 2)[0].strip().strip('"')
                    path = os.path.normpath(os.path.join(folder, rel))
                    if not rel or not path.startswith(os.path.join(os.path.abspath(folder), "")):
                        continue
                    if os.path.isfile(path) or os.path.islink(path):
                        os.remove(path)
                    dirs.add(os.path.dirname(path))
        except OSError:
            pass
        for d in sorted(dirs, key=len, reverse=True):      # now-empty package folders
            while d.startswith(os.path.join(os.path.abspath(folder), "")) and os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    break
                d = os.path.dirname(d)
        shutil.rmtree(info, ignore_errors=True)
    for top in (canon, f"{canon}.libs"):                     # whatever RECORD missed
        shutil.rmtree(os.path.join(folder, top), ignore_errors=True)
    return found


# --- what is installed -----------------------------------------------------------------------

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
        home = os.path.realpath(str(torch.locate_file(""))) + os.sep
        if mod is not None and hasattr(mod, "cuda") and \
                os.path.realpath(getattr(mod, "__file__", None) or "").startswith(home):   # this torch, loaded
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


# --- pip's output -----------------------------------------------------------------------------

_SIZE = re.compile(r"\(([\d.,]+)\s*(bytes|kB|MB|GB|KB)\)\s*$")
_UNITS = {"bytes": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
_NO_NETWORK = ("NewConnectionError", "Failed to establish a new connection", "Name or service not known",
               "Temporary failure in name resolution", "getaddrinfo failed", "Network is unreachable",
               "nodename nor servname", "No address associated with hostname", "ConnectTimeoutError",
               "ProxyError", "Max retries exceeded", "Read timed out", "Connection refused")
_DISK_FULL = ("No space left on device", "[Errno 28]", "not enough space on the disk")


def _dist_name(ref: str) -> str:
    """``torch`` from ``torch-2.5.1+cpu-cp311-...whl``, a URL to it, or a path."""
    base = unquote(os.path.basename(urlparse(ref).path if "://" in ref else ref))
    return base.split("-")[0] or base


class PipOutput:
    """Follows pip's output line by line: a short status and a rough fraction."""

    def __init__(self, expected_mb: float = 0.0):
        self.expected = expected_mb * 1e6
        self.text = "Starting pip..."
        self.fraction = 0.0
        self.downloads: dict[str, float] = {}     # file -> bytes (deduplicated: pip may list one twice)
        self.current: str | None = None
        self.current_name = ""
        self.current_done = 0.0
        self.collected: list[str] = []
        self.installed: list[str] = []
        self.errors: list[str] = []
        self.lines: list[str] = []
        self.no_network = False
        self.host: str | None = None
        self.disk_full = False

    def _download_fraction(self) -> float:
        done = sum(v for k, v in self.downloads.items() if k != self.current)
        seen = sum(self.downloads.values())
        total = max(self.expected, seen, 1.0)
        return 0.05 + 0.8 * min(1.0, (done + self.current_done) / total)

    def feed(self, line: str):
        line = line.rstrip()
        if not line:
            return
        self.lines = (self.lines + [line])[-200:]
        s = line.strip()
        if any(k in s for k in _NO_NETWORK):
            self.no_network = True
            host = re.search(r"host='([^']+)'", s)
            self.host = host.group(1) if host else self.host
        if any(k in s for k in _DISK_FULL):
            self.disk_full = True
        if s.startswith("ERROR:"):
            self.errors.append(s[6:].strip())
            return
        m = re.match(r"Progress (\d+) of (\d+)$", s)
        if m and self.current is not None:
            self.current_done = float(m.group(1))
            total = float(m.group(2)) or self.downloads.get(self.current, 0.0)
            self.text = f"Downloading {self.current_name}: {self.current_done / 1e6:.0f} of {total / 1e6:.0f} MB"
            self.fraction = max(self.fraction, self._download_fraction())
            return
        m = re.match(r"(Downloading|Using cached|Processing)\s+(\S+)", s)
        if m:
            kind, ref = m.groups()
            size = _SIZE.search(s)
            nbytes = float(size.group(1).replace(",", "")) * _UNITS[size.group(2)] if size else 0.0
            self.current, self.current_name, self.current_done = ref, _dist_name(ref), 0.0
            self.downloads[ref] = nbytes
            if kind == "Downloading":
                self.text = f"Downloading {self.current_name}" + (f" ({_mb_text(nbytes / 1e6)})" if nbytes else "")
            else:
                self.current_done = nbytes        # nothing to wait for
                self.text = f"Reading {self.current_name}"
            self.fraction = max(self.fraction, self._download_fraction())
            return
        m = re.match(r"Collecting\s+(\S+)", s)
        if m:
            name = re.split(r"[<>=!~;\[ ]", m.group(1))[0]
            self.collected.append(name)
            self.text = f"Resolving {name}..."
            self.fraction = max(self.fraction, 0.02)
            return
        m = re.match(r"Installing collected packages:\s*(.*)$", s)
        if m:
            n = len([p for p in m.group(1).split(",") if p.strip()])
            self.text = f"Installing {n} package{'s' if n != 1 else ''}..."
            self.fraction = 0.88
            return
        m = re.match(r"Successfully installed\s+(.*)$", s)
        if m:
            self.installed = m.group(1).split()
            self.text, self.fraction = "Finishing...", 0.97

    def cuda_in_cpu_build(self, torch_named_cpu: bool = False) -> str | None:
        """What shows that pip is fetching a CUDA PyTorch: a CUDA library, or (where the CPU
        index names its wheels ``+cpu``: Linux) a torch wheel without that tag; else None."""
        if torch_named_cpu:
            for ref in self.downloads:
                wheel = unquote(os.path.basename(urlparse(ref).path if "://" in ref else ref))
                if _dist_name(ref).lower() == "torch" and "+cpu" not in wheel:
                    return wheel
        return next((n for n in self.collected if _CUDA_PACKAGE.match(n)), None)

    def error(self, where: str) -> str:
        """One message for a failed pip run."""
        if self.disk_full:
            return f"the disk is full (while installing into {where}); free some space and try again"
        if self.no_network:
            where = f" ({self.host})" if self.host else ""
            return (f"cannot reach the package index{where}: check the internet connection or proxy (or set "
                    f"{ENV_PIP_ARGS} to a local wheel mirror, e.g. --no-index --find-links DIR)")
        useful = [e for e in self.errors if not e.startswith("ResolutionImpossible")]
        msg = useful[-1] if useful else (self.errors[-1] if self.errors else
                                         (self.lines[-1].strip() if self.lines else "pip failed"))
        text = "\n".join(self.lines)
        if "conflicting dependencies" in text and "numpy" in text.lower():
            msg += " (Blender's NumPy is kept: a package wants another NumPy)"
        return "pip: " + msg


# --- the install -----------------------------------------------------------------------------

@dataclass
class _Options:
    target: str
    build: Build
    packages: list[str] | None
    python: str
    env: dict


class Installer:
    """One install, run by ``start()`` in a background thread (or ``run()`` in this one)."""

    def __init__(self, target: str, build: str | Build = "CPU", pkgs=None, python: str | None = None,
                 env=None):
        b = build if isinstance(build, Build) else builds()[build]
        self.options = _Options(os.path.abspath(target), b, pkgs, python or sys.executable,
                                dict(os.environ if env is None else env))
        self.state = RUNNING
        self.text = "Starting..."
        self.fraction = 0.0
        self.error: str | None = None
        self.installed: list[str] = []
        self.pip_version: str | None = None
        self.staging = f"{self.options.target}.installing-{os.getpid()}"
        self.output = PipOutput(0 if self._custom_packages else b.download_mb)
        self._messages: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._proc_lock = threading.Lock()
        self._thread = threading.Thread(target=self.run_thread, name="photo3d-runtime-install", daemon=True)

    @property
    def target(self) -> str:
        return self.options.target

    def start(self) -> "Installer":
        self._thread.start()
        return self

    def run(self) -> str:
        """The whole install in the calling thread (headless Blender, scripts)."""
        self.run_thread()
        return self.step()

    def cancel(self):
        """Stop at once: pip is killed, its staging folder removed (by the install's thread)."""
        self._cancel.set()
        with self._proc_lock:
            if self._proc is not None:
                _kill(self._proc)

    def wait(self, timeout: float | None = None) -> str:
        if self._thread.ident is not None:          # started
            self._thread.join(timeout)
        return self.step()

    def step(self) -> str:
        """Main-thread step: apply the install's messages; returns the state."""
        while True:
            try:
                kind, *rest = self._messages.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                self.text, self.fraction = rest
            elif kind == "done":
                self.installed, self.state, self.fraction, self.text = rest[0], DONE, 1.0, "Installed"
            elif kind == "failed":
                self.error, self.state = rest[0], FAILED
            elif kind == "cancelled":
                self.state = CANCELLED
        return self.state

    # The install's own thread from here on.
    def _post(self, *msg):
        self._messages.put(msg)

    def _spawn(self, cmd: list[str], env: dict) -> subprocess.Popen:
        kw = {"start_new_session": True} if os.name != "nt" else \
            {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
        with self._proc_lock:
            if self._cancel.is_set():
                raise _Stop()
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                                          bufsize=1, env=env, **kw)
            return self._proc

    def _call(self, cmd: list[str], env: dict) -> tuple[int, str]:
        proc = self._spawn(cmd, env)
        out, _ = proc.communicate()
        return proc.returncode, out or ""

    def run_thread(self):
        """The install; its last message is posted only once the staging folder is gone."""
        o = self.options
        try:
            if os.path.exists(self.staging):
                shutil.rmtree(self.staging, ignore_errors=True)
            cleanup(o.target)
            self._check_space()
            self._ensure_pip()
            self._pip()
            if self._cancel.is_set():
                raise _Stop()
            for name in NEVER_KEEP:
                drop_distribution(self._site, name)
            self._swap_in()
            kept = [p for p in self.output.installed
                    if re.sub(r"-[^-]*$", "", p).lower().replace("_", "-") not in NEVER_KEEP]
            end = ("done", kept)
        except _Stop:
            end = ("cancelled",)
        except _Failed as e:
            end = ("failed", str(e))
        except OSError as e:
            end = ("failed", "the disk is full: free some space and try again" if e.errno == errno.ENOSPC
                   else f"installing failed: {e.strerror or e} ({e.filename or o.target})")
        except Exception as e:  # noqa: BLE001 - one message, never a traceback in Blender's face
            end = ("failed", f"installing failed: {type(e).__name__}: {e}")
        except BaseException:     # Ctrl-C in a synchronous run: pip (its own session) goes too
            self.cancel()
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        with self._proc_lock:
            self._proc = None
        shutil.rmtree(self.staging, ignore_errors=True)
        self._post(*end)

    @property
    def _site(self) -> str:
        return os.path.join(self.staging, "site-packages")

    @property
    def _custom_packages(self) -> bool:
        return self.options.packages is not None or bool(self.options.env.get(ENV_PACKAGES))

    def _check_space(self):
        o = self.options
        if self._custom_packages:
            return                                    # someone else's package list: no estimate
        parent = os.path.dirname(o.target)
        os.makedirs(parent, exist_ok=True)
        free = shutil.disk_usage(parent).free / 1e6
        if free < o.build.disk_mb:
            raise _Failed(f"not enough disk space: PyTorch ({o.build.label}) needs about "
                          f"{_mb_text(o.build.disk_mb)} in {parent}, {_mb_text(free)} are free")

    def _ensure_pip(self):
        o = self.options
        self._post("progress", "Checking pip...", 0.0)
        check = [o.python, "-c", "import pip, sys; sys.stdout.write(pip.__version__)"]
        rc, out = self._call(check, o.env)
        if rc != 0:
            self._post("progress", "Installing pip (ensurepip)...", 0.01)
            rc, out = self._call([o.python, "-m", "ensurepip", "--upgrade"], o.env)
            if self._cancel.is_set():
                raise _Stop()
            if rc != 0:
                last = (out.strip().splitlines() or ["no output"])[-1]
                raise _Failed(f"pip is missing from this Python and ensurepip failed: {last}")
            rc, out = self._call(check, o.env)
            if rc != 0:
                raise _Failed("pip is missing from this Python, even after ensurepip")
        if self._cancel.is_set():
            raise _Stop()
        self.pip_version = out.strip().splitlines()[-1] if out.strip() else "0"

    def _pip(self):
        o = self.options
        os.makedirs(self._site)
        tmp = os.path.join(self.staging, "tmp")       # pip's own temporary files, on the target's disk
        os.makedirs(tmp)
        constraints = os.path.join(self.staging, "constraints.txt")
        with open(constraints, "w", encoding="utf-8") as f:
            f.write(constraints_text())
        raw = _version_tuple(self.pip_version) >= (24, 1)
        cmd = pip_command(self._site, o.build, constraints, o.packages, o.python, o.env, raw_progress=raw)
        env = dict(o.env, TMPDIR=tmp, TEMP=tmp, TMP=tmp, PYTHONUNBUFFERED="1", PIP_NO_INPUT="1",
                   PIP_REQUIRE_VIRTUALENV="0", PIP_USER="0")
        proc = self._spawn(cmd, env)
        out = self.output
        # The CPU index unreachable: pip would quietly take PyPI's CUDA torch (GBs) instead.
        guard_cuda = o.build.key == "CPU" and bool(o.build.index_args) and own_indexes(o.env)
        cuda = None
        for line in proc.stdout:
            out.feed(line)
            self._post("progress", out.text, out.fraction)
            if guard_cuda and (cuda := out.cuda_in_cpu_build(torch_named_cpu=sys.platform.startswith("linux"))):
                _kill(proc)
                break
        proc.wait()
        if self._cancel.is_set():
            raise _Stop()
        if cuda:
            raise _Failed(f"pip was about to install PyTorch's CUDA build ({cuda}, several GB) instead of the "
                          f"CPU build: {TORCH_CPU_INDEX} could not be reached; check the connection, or choose "
                          "the GPU build")
        if proc.returncode != 0:
            raise _Failed(out.error(o.target))

    def _swap_in(self):
        """Rename the new runtime into place; the previous one goes only once the new one is there."""
        target = self.options.target
        old = None
        if os.path.exists(target):
            old = f"{target}.old-{os.getpid()}"
            try:
                os.replace(target, old)
            except OSError as e:
                raise _Failed("the installed PyTorch is in use (Windows keeps its files open): remove it, "
                              f"restart Blender and install again ({e.strerror})") from None
        try:
            os.replace(self._site, target)
        except OSError:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


class _Stop(Exception):
    pass


class _Failed(Exception):
    pass


def _version_tuple(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text or "")[:3])


def _kill(proc: subprocess.Popen):
    """Kill pip and anything it started (a build backend), at once."""
    if proc.poll() is not None:
        return
    try:
        if os.name != "nt":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True,
                           creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except OSError:
        pass
    try:
        proc.kill()
    except OSError:
        pass
