"""One install of a runtime (any kind: PyTorch, ONNX Runtime GPU): pip in a subprocess, read by
a background thread (no bpy here).

- pip installs into a staging folder beside the target (its temporary files too); only when
  pip succeeded is the staging folder moved into place, so a failed, cancelled or disk-full
  install leaves no half runtime, and a previous good one survives a failed upgrade;
- Blender's NumPy stays authoritative: pip gets a constraints file pinning the running
  ``numpy.__version__``, and the copy of NumPy pip puts into the target is deleted;
- ``step()`` (Blender's main thread, or a test's loop) applies what the thread posted: a short
  status and a rough fraction; ``cancel()`` kills pip and the staging folder goes. Errors
  become one message.
"""
from __future__ import annotations

import errno
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

from . import files, paths
from .builds import TORCH, TORCH_CPU_INDEX, Build, builds, constraints_text, kind_of, mb_text, own_indexes, pip_command
from .distributions import drop_distribution
from .folder import cleanup
from .pip_output import PipOutput

NEVER_KEEP = ("numpy",)                # Blender ships it; a second copy would break Blender and add-ons
RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
# Windows: pip and its helpers get no console window of their own popping up over Blender.
NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


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
                 env=None, kind: str = TORCH):
        b = build if isinstance(build, Build) else builds(kind=kind)[build]
        self.options = _Options(os.path.abspath(target), b, pkgs, python or sys.executable,
                                dict(os.environ if env is None else env))
        self.state = RUNNING
        self.text = "Starting..."
        self.fraction = 0.0
        self.error: str | None = None
        self.installed: list[str] = []
        self.pip_version: str | None = None
        self.staging = paths.beside(self.options.target, paths.STAGING)
        self.output = PipOutput(0 if self._custom_packages else b.download_mb)
        self._messages: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._proc_lock = threading.Lock()
        self._thread = threading.Thread(target=self.run_thread, name="photo3d-runtime-install", daemon=True)

    @property
    def target(self) -> str:
        return self.options.target

    @property
    def kind(self) -> str:
        """The runtime kind being installed (``builds.TORCH``, ``builds.ORT_GPU``)."""
        return self.options.build.kind

    def start(self) -> Installer:
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
                kill(self._proc)

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
        # Its own session (POSIX) lets kill() take pip's children along; no shell anywhere.
        kw = {"start_new_session": True} if os.name != "nt" else {"creationflags": NO_WINDOW}
        # Pipes default to the ANSI code page on Windows: a path pip cannot encode there would end it.
        env = dict(env, PYTHONIOENCODING="utf-8")
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
            files.rmtree(self.staging)
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
            files.rmtree(self.staging)
            raise
        with self._proc_lock:
            self._proc = None
        files.rmtree(self.staging)
        self._post(*end)

    @property
    def _site(self) -> str:
        return os.path.join(self.staging, "site-packages")

    @property
    def _custom_packages(self) -> bool:
        return self.options.packages is not None or bool(self.options.env.get(kind_of(self.kind).env_packages))

    def _check_space(self):
        o = self.options
        if self._custom_packages:
            return                                    # someone else's package list: no estimate
        parent = os.path.dirname(o.target)
        os.makedirs(parent, exist_ok=True)
        free = shutil.disk_usage(parent).free / 1e6
        if free < o.build.disk_mb:
            raise _Failed(f"not enough disk space: {kind_of(self.kind).name} ({o.build.label}) needs about "
                          f"{mb_text(o.build.disk_mb)} in {parent}, {mb_text(free)} are free")

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
        raw = version_tuple(self.pip_version) >= (24, 1)
        cmd = pip_command(self._site, o.build, constraints, o.packages, o.python, o.env, raw_progress=raw)
        env = dict(o.env, TMPDIR=tmp, TEMP=tmp, TMP=tmp, PYTHONUNBUFFERED="1", PIP_NO_INPUT="1",
                   PIP_REQUIRE_VIRTUALENV="0", PIP_USER="0")
        proc = self._spawn(cmd, env)
        out = self.output
        # The CPU index unreachable: pip would quietly take PyPI's CUDA torch (GBs) instead.
        guard_cuda = o.build.kind == TORCH and o.build.key == "CPU" and bool(o.build.index_args) and \
            own_indexes(o.env)
        cuda = None
        for line in proc.stdout:
            out.feed(line)
            self._post("progress", out.text, out.fraction)
            if guard_cuda and (cuda := out.cuda_in_cpu_build(torch_named_cpu=sys.platform.startswith("linux"))):
                kill(proc)
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
        """Move the new runtime into place; the previous one goes only once the new one is there."""
        target = self.options.target
        old = None
        if os.path.exists(target):
            old = paths.beside(target, paths.OLD)
            try:
                files.replace(target, old)
            except PermissionError as e:
                if not files.WINDOWS:
                    raise
                name = kind_of(self.kind).name
                raise _Failed(f"the installed {name} is in use (Windows keeps the files of a loaded {name} "
                              f"open): restart Blender and install again before using it ({e.strerror})") from None
        try:
            files.replace(self._site, target)
        except OSError:
            if old is not None:
                files.replace(old, target)       # should this fail too, the next start puts it back
            raise
        if old is not None:
            files.rmtree(old)                    # what Windows keeps open goes at the next start


class _Stop(Exception):
    pass


class _Failed(Exception):
    pass


def version_tuple(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text or "")[:3])


def kill(proc: subprocess.Popen):
    """Kill pip and anything it started (a build backend), at once."""
    if proc.poll() is not None:
        return
    try:
        if os.name != "nt":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            taskkill = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "taskkill.exe")
            subprocess.run([taskkill, "/F", "/T", "/PID", str(proc.pid)], capture_output=True,
                           creationflags=NO_WINDOW)
    except OSError:
        pass
    try:
        proc.kill()
    except OSError:
        pass
