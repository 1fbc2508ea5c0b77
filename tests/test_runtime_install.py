"""PyTorch on request (the ``runtime`` package), with real pip and no network:
tiny wheels written by hand into a temporary folder stand in for torch and transformers, and
``PHOTO3D_PIP_ARGS=--no-index --find-links DIR`` points pip at them, exactly as a studio's
wheel mirror would. Checked: the install lands whole or not at all (a failure keeps the
previous runtime), Blender's NumPy is never replaced, cancel kills pip at once, no network
and Blender's offline switch give clear messages, and the operator works in the real bpy."""
import os
import socket
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

from helpers import FakeLayout, write_wheel
from photo3d import runtime as rt

ROOT = os.path.dirname(os.path.dirname(rt.__file__))      # the repository, the package photo3d


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local wheel folder and pip configured to see only it (no user config, no index)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    write_wheel(folder, "tinyrt", "1.0", requires=["numpy"])
    write_wheel(folder, "tinyrt", "2.0", requires=["numpy"])
    # A stand-in NumPy at the running version: pip installs it into the target (--target
    # ignores what is installed), and photo3d must delete it again.
    write_wheel(folder, "numpy", np.__version__, files={"numpy/__init__.py": "FAKE = True\n"})
    write_wheel(folder, "numpy", "2.9.0", files={"numpy/__init__.py": "FAKE = True\n"})
    write_wheel(folder, "wantsnp2", "1.0", requires=["numpy>=2"])
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")      # no shared cache between test runs side by side
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", rt.ENV_PACKAGES,
                rt.ENV_DIR):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(rt.ENV_PIP_ARGS, f"--no-index --find-links {folder}")
    return folder


@pytest.fixture
def path_guard():
    """Whatever a test activates leaves sys.path and sys.modules as they were."""
    path, mods = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for m in set(sys.modules) - mods:
        if m.startswith("tinyrt"):
            del sys.modules[m]


def _leftovers(target):
    parent, base = os.path.split(str(target))
    return sorted(n for n in os.listdir(parent) if n.startswith(base + "."))


def _install(target, pkgs, **kw):
    inst = rt.Installer(str(target), "CPU", pkgs, **kw)
    t0 = time.perf_counter()
    state = inst.start().wait(120)
    return inst, state, time.perf_counter() - t0


def test_install_activates_and_keeps_blenders_numpy(mirror, tmp_path, path_guard):
    target = tmp_path / "Blender Nutzer é" / "site-packages"         # a space and a non-ASCII letter
    seen = []
    inst = rt.Installer(str(target), "CPU", ["tinyrt==1.0"])
    # Every message the UI is handed (one step applies all that queued since the last, so
    # on a busy machine a poll can pass over a short-lived text).
    posted, get = [], inst._messages.get_nowait
    inst._messages.get_nowait = lambda: posted.append(get()) or posted[-1]
    inst.start()
    while inst.step() == rt.RUNNING:            # stepped like Blender's modal timer
        seen.append((inst.text, inst.fraction))
        time.sleep(0.02)
    assert inst.state == rt.DONE, inst.error
    assert any(p.startswith("numpy-") for p in inst.output.installed)   # pip brought a NumPy...
    assert inst.installed == ["tinyrt-1.0"]                             # ...that is not kept
    assert sorted(os.listdir(target)) == ["tinyrt", "tinyrt-1.0.dist-info"]
    assert _leftovers(target) == []                              # no staging folder, no pip temp files
    assert any(m[0] == "progress" and (m[1].startswith("Reading tinyrt") or m[1].startswith("Installing"))
               for m in posted)
    assert seen                                 # and the UI saw the install running
    assert [f for _, f in seen] == sorted(f for _, f in seen) and inst.fraction == 1.0
    assert rt.activate(str(target)) and sys.path[-1] == str(target)     # appended, never first
    import numpy
    import tinyrt
    assert tinyrt.VERSION == "1.0" and tinyrt.__file__.startswith(str(target))
    assert numpy is np and not hasattr(numpy, "FAKE")


def test_pip_gets_the_running_numpy_as_a_constraint(mirror, tmp_path):
    """A package that needs another NumPy cannot be installed: Blender's stays."""
    target = tmp_path / "site-packages"
    inst, state, _ = _install(target, ["wantsnp2"])
    assert state == rt.FAILED
    assert "wantsnp2" in inst.error and "Blender's NumPy is kept" in inst.error
    assert not target.exists() and _leftovers(target) == []
    assert rt.constraints_text() == f"numpy=={np.__version__}\n"


def test_failed_install_keeps_the_previous_runtime(mirror, tmp_path):
    target = tmp_path / "site-packages"
    inst, state, _ = _install(target, ["nosuchpkg"])
    assert state == rt.FAILED and inst.error.startswith("pip: ") and "nosuchpkg" in inst.error
    assert not target.exists() and _leftovers(target) == []      # nothing half-installed
    _install(target, ["tinyrt==1.0"])
    inst, state, _ = _install(target, ["tinyrt==2.0", "nosuchpkg"])
    assert state == rt.FAILED
    assert sorted(os.listdir(target)) == ["tinyrt", "tinyrt-1.0.dist-info"] and _leftovers(target) == []
    inst, state, _ = _install(target, ["tinyrt==2.0"])          # an upgrade replaces it whole
    assert state == rt.DONE and sorted(os.listdir(target)) == ["tinyrt", "tinyrt-2.0.dist-info"]
    assert _leftovers(target) == []


@pytest.fixture
def stalled_index(monkeypatch, mirror):
    """An index that accepts connections and never answers: pip waits until it is killed."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    monkeypatch.setenv(rt.ENV_PIP_ARGS, f"--index-url http://127.0.0.1:{srv.getsockname()[1]}/simple "
                                        "--timeout 60 --retries 0")
    yield srv
    srv.close()


def _wait_for_pip(inst, timeout=30.0):
    """The pip install process (not the pip check) once it has started."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        proc = inst._proc
        if proc is not None and "install" in proc.args and os.path.isdir(os.path.join(inst.staging, "tmp")):
            return proc
        time.sleep(0.02)
    raise AssertionError("pip never started")


def test_cancel_kills_pip_and_cleans_up(stalled_index, tmp_path):
    target = tmp_path / "site-packages"
    inst = rt.Installer(str(target), "CPU", ["tinyrt"]).start()
    proc = _wait_for_pip(inst)
    time.sleep(0.3)
    assert proc.poll() is None                                   # stuck on the index
    t0 = time.perf_counter()
    inst.cancel()
    assert inst.wait(10) == rt.CANCELLED
    assert time.perf_counter() - t0 < 5 and proc.poll() is not None
    assert not target.exists() and _leftovers(target) == []


def test_no_network_is_one_clear_message(mirror, tmp_path, monkeypatch):
    with socket.socket() as s:               # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(rt.ENV_PIP_ARGS, f"--index-url http://127.0.0.1:{port}/simple --retries 1 --timeout 5")
    inst, state, _ = _install(tmp_path / "site-packages", ["tinyrt"])
    assert state == rt.FAILED
    assert inst.error.startswith("cannot reach the package index (127.0.0.1)") and rt.ENV_PIP_ARGS in inst.error
    assert not (tmp_path / "site-packages").exists()


def test_pip_command_per_build_and_platform(monkeypatch):
    monkeypatch.delenv(rt.ENV_PIP_ARGS, raising=False)
    monkeypatch.delenv(rt.ENV_PACKAGES, raising=False)
    linux, win, mac = rt.builds("linux"), rt.builds("win32"), rt.builds("darwin")
    cmd = rt.pip_command("/t", linux["CPU"], "/c.txt", python="py")
    assert cmd[:8] == ["py", "-m", "pip", "install", "--target", "/t", "--constraint", "/c.txt"]
    assert cmd[-len(rt.PACKAGES):] == list(rt.PACKAGES)
    assert cmd[cmd.index("--index-url") + 1] == rt.TORCH_CPU_INDEX and rt.PYPI in cmd
    assert "--index-url" not in rt.pip_command("/t", linux["GPU"], "/c.txt")          # PyPI's CUDA torch
    assert rt.pip_command("/t", win["GPU"], "/c.txt")[cmd.index("--index-url") + 1].startswith(
        "https://download.pytorch.org/whl/cu")                                          # PyPI's is CPU-only there
    assert "--index-url" not in rt.pip_command("/t", mac["CPU"], "/c.txt")             # MPS from PyPI
    assert linux["CPU"].download_mb < 500 < 2000 < linux["GPU"].download_mb
    # A studio's mirror replaces the build's indexes; its own arguments are kept, quoted paths too.
    env = {rt.ENV_PIP_ARGS: "--no-index --find-links '/wheel mirror'", rt.ENV_PACKAGES: "torch==2.5.1 transformers"}
    cmd = rt.pip_command("/t", linux["CPU"], "/c.txt", env=env)
    assert "--index-url" not in cmd and cmd[-4:] == ["--find-links", "/wheel mirror", "torch==2.5.1", "transformers"]
    assert not rt.uses_network(env) and rt.uses_network({})


def test_manifest_declares_network_use():
    import tomllib
    with open(os.path.join(ROOT, "blender_manifest.toml"), "rb") as f:
        assert "PyTorch" in tomllib.load(f)["permissions"]["network"]


def test_pip_output_becomes_a_short_status():
    out = rt.PipOutput(expected_mb=250)
    fractions = []
    for line in ["Looking in indexes: https://download.pytorch.org/whl/cpu, https://pypi.org/simple",
                 "Collecting torch",
                 "  Downloading https://download.pytorch.org/whl/cpu/torch-2.5.1%2Bcpu-cp311-cp311-linux_x86_64.whl"
                 " (174.7 MB)", "Progress 0 of 174700000", "Progress 87350000 of 174700000",
                 "Collecting transformers<5,>=4.50",
                 "  Downloading transformers-4.57.6-py3-none-any.whl (12.0 MB)",
                 "Installing collected packages: mpmath, typing-extensions, torch, transformers",
                 "Successfully installed mpmath-1.3.0 torch-2.5.1+cpu transformers-4.57.6 typing-extensions-4.12.2"]:
        out.feed(line)
        fractions.append(out.fraction)
        if line.startswith("Progress 8"):
            assert out.text == "Downloading torch: 87 of 175 MB"
        if "(12.0 MB)" in line:
            assert out.text == "Downloading transformers (12 MB)"
        if line.startswith("Installing"):
            assert out.text == "Installing 4 packages..."
    assert fractions == sorted(fractions) and 0.3 < fractions[4] < 0.5
    assert out.installed[1] == "torch-2.5.1+cpu" and out.cuda_in_cpu_build(torch_named_cpu=True) is None
    # The CPU index unreachable: pip would fall back to PyPI's CUDA torch; that is caught.
    out.feed("Collecting nvidia-cudnn-cu12==9.1.0.70 (from torch)")
    assert out.cuda_in_cpu_build() == "nvidia-cudnn-cu12"
    full = rt.PipOutput()
    full.feed("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device")
    assert full.error("/x").startswith("the disk is full")
    deep = rt.PipOutput()
    deep.feed("ERROR: Could not install packages due to an OSError: [Errno 2] No such file or directory: 'C:\\x'")
    deep.feed("HINT: This error might have occurred since this system does not have Windows Long Path support "
              "enabled. You can find information on how to enable this at "
              "https://pip.pypa.io/warnings/enable-long-paths")
    assert "longer than 260 characters" in deep.error("C:\\x") and rt.ENV_DIR in deep.error("C:\\x")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the +cpu wheel names are checked on Linux")
def test_cpu_build_never_falls_back_to_cuda_torch(mirror, tmp_path, monkeypatch):
    """The CPU index unreachable, pip would take PyPI's torch (CUDA, GBs): stopped as its
    download starts, with a message that says why."""
    index = tmp_path / "index"
    (index / "torch").mkdir(parents=True)
    wheel = os.path.basename(write_wheel(index / "torch", "torch", "2.5.1"))   # no +cpu: PyPI's CUDA build
    (index / "torch" / "index.html").write_text(f'<a href="{wheel}">{wheel}</a>')
    monkeypatch.delenv(rt.ENV_PIP_ARGS)
    cpu = rt.Build("CPU", "CPU", "", ("--index-url", f"file://{index}"), 1, 1)
    inst = rt.Installer(str(tmp_path / "site-packages"), cpu, ["torch"])
    assert inst.start().wait(60) == rt.FAILED
    assert "CUDA build (torch-2.5.1-py3-none-any.whl" in inst.error and "choose the GPU build" in inst.error
    assert not (tmp_path / "site-packages").exists() and _leftovers(tmp_path / "site-packages") == []


def test_runtime_info_reads_metadata(mirror, tmp_path, monkeypatch):
    target = tmp_path / "site-packages"
    write_wheel(mirror, "torch", "2.5.1+cpu")
    write_wheel(mirror, "transformers", "4.57.6")
    _install(target, ["torch==2.5.1+cpu", "transformers==4.57.6"])
    # Another torch already loaded (Blender's own, the test venv's) says nothing about this one.
    elsewhere = types.SimpleNamespace(__file__="/elsewhere/torch/__init__.py",
                                      cuda=types.SimpleNamespace(is_available=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", elsewhere)
    info = rt.info(str(target))
    assert info.ready and info.in_target and info.torch == "2.5.1+cpu"
    assert info.text() == "PyTorch 2.5.1+cpu (CPU build), transformers 4.57.6"
    restart = rt.remove(str(target))
    assert not restart and not target.exists()
    assert not rt.info(str(target)).in_target


@pytest.mark.slow
def test_ensurepip_when_pythons_pip_is_missing(mirror, tmp_path):
    """A Python without pip (some Blender builds): ensurepip first, then the install (its
    old pip has no raw progress bar: the plain one is asked for)."""
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    assert subprocess.run([python, "-c", "import pip"], capture_output=True).returncode != 0
    inst, state, _ = _install(tmp_path / "site-packages", ["tinyrt==1.0"], python=python)
    assert state == rt.DONE, inst.error
    assert rt.installer.version_tuple(inst.pip_version) >= (9,)    # pip now runs there
    assert sorted(os.listdir(tmp_path / "site-packages")) == ["tinyrt", "tinyrt-1.0.dist-info"]


# --- Windows: files held open, nothing POSIX-only ------------------------------------------

@pytest.fixture
def windows_files(monkeypatch):
    """File operations as on Windows (retries, read-only files), with short waits."""
    monkeypatch.setattr(rt.files, "WINDOWS", True)
    monkeypatch.setattr(rt.files, "ATTEMPTS", 3)
    monkeypatch.setattr(rt.files, "DELAY_S", 0.001)


class _Held:
    """os.replace refuses to move some paths, as Windows refuses a folder with a loaded DLL in it
    (``times``: only the first tries, as a virus scanner holds a new file for a moment)."""

    def __init__(self, monkeypatch, *held, times=None):
        self.paths, self.times, self.refused, self._replace = {str(p) for p in held}, times, 0, os.replace
        monkeypatch.setattr(os, "replace", self)

    def __call__(self, src, dst):
        if str(src) in self.paths and (self.times is None or self.refused < self.times):
            self.refused += 1
            raise PermissionError(13, "The process cannot access the file because it is being used by "
                                      "another process", str(src))
        self._replace(src, dst)


def test_a_file_held_for_a_moment_is_retried(tmp_path, windows_files, monkeypatch):
    (tmp_path / "a").mkdir()
    held = _Held(monkeypatch, tmp_path / "a", times=2)
    rt.files.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert held.refused == 2 and (tmp_path / "b").is_dir()
    held.times = None
    (tmp_path / "a").mkdir()
    with pytest.raises(PermissionError):
        rt.files.replace(str(tmp_path / "a"), str(tmp_path / "c"))
    assert held.refused == 2 + rt.files.ATTEMPTS


def test_removing_a_runtime_in_use_finishes_at_the_next_start(tmp_path, windows_files, monkeypatch, path_guard):
    """Windows keeps a loaded torch's DLLs open: Remove leaves the folder whole (never half a
    PyTorch), keeps it off sys.path, and the next start deletes it."""
    target = tmp_path / "Blender Nutzer é" / "site-packages"
    (target / "torch" / "lib").mkdir(parents=True)
    (target / "torch" / "lib" / "torch_cpu.dll").write_bytes(b"")
    assert rt.activate(str(target))
    held = _Held(monkeypatch, target)
    assert rt.remove(str(target)) is True                        # a restart finishes it
    assert rt.removal_pending(str(target)) and str(target) not in sys.path
    assert (target / "torch" / "lib" / "torch_cpu.dll").exists() and _leftovers(target) == []
    assert not rt.activate(str(target))                          # still held: stays off sys.path
    held.paths.clear()                                           # Blender restarted
    assert not rt.activate(str(target)) and not target.exists() and _leftovers(target) == []


def test_updating_a_runtime_in_use_keeps_it_and_says_restart(mirror, tmp_path, windows_files, monkeypatch):
    target = tmp_path / "site-packages"
    _install(target, ["tinyrt==1.0"])
    _Held(monkeypatch, target)
    inst, state, _ = _install(target, ["tinyrt==2.0"])
    assert state == rt.FAILED and "restart Blender and install again" in inst.error
    assert sorted(os.listdir(target)) == ["tinyrt", "tinyrt-1.0.dist-info"] and _leftovers(target) == []


def test_cleanup_after_an_interrupted_upgrade(tmp_path):
    """Another process's running install is left alone; a runtime moved aside by an upgrade
    that stopped before the new one was in place comes back."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    target = tmp_path / "site-packages"
    for kind, pid in (("old", gone.pid), ("installing", gone.pid), ("installing", os.getppid())):
        (tmp_path / f"site-packages.{kind}-{pid}" / "tinyrt").mkdir(parents=True)
    rt.cleanup(str(target))
    assert os.listdir(target) == ["tinyrt"] and _leftovers(target) == [f"site-packages.installing-{os.getppid()}"]


def test_runtime_needs_nothing_posix_only():
    """Importable without the POSIX-only modules (as on Windows); no shell, no os.rename."""
    code = ("import sys\nfor m in ('fcntl', 'resource', 'pwd', 'grp', 'termios'): sys.modules[m] = None\n"
            "from photo3d import runtime\nfrom photo3d.runtime import installer")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import ast
    folder = os.path.join(ROOT, "runtime")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
                assert node.attr not in ("rename", "getuid", "geteuid", "system", "fork"), (name, node.attr)
            assert not (isinstance(node, ast.keyword) and node.arg == "shell"), name


# --- in Blender -------------------------------------------------------------------------------

@pytest.fixture
def fallback_home(mirror, tmp_path, monkeypatch, path_guard):
    """No extension folder outside Blender's extension system: the runtime goes to
    ~/.cache/photo3d/runtime/site-packages, here under a temporary home."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    monkeypatch.setenv(rt.ENV_PACKAGES, "tinyrt==1.0")
    from photo3d.runtime import operators as ops
    target = os.path.join(str(tmp_path / "home"), ".cache", "photo3d", "runtime", "site-packages")
    assert ops.runtime_dir() == target
    yield target
    ops.state.installer, ops.state.message = None, ""


@pytest.mark.blender
def test_operator_installs_activates_and_removes(blender, fallback_home):
    bpy = blender
    from photo3d.runtime import operators as ops
    assert bpy.app.online_access is False            # a --no-index mirror needs no online access
    t0 = time.perf_counter()
    assert bpy.ops.photo3d.install_runtime() == {"FINISHED"}
    seconds = time.perf_counter() - t0
    assert sorted(os.listdir(fallback_home)) == ["tinyrt", "tinyrt-1.0.dist-info"]
    assert sys.path[-1] == fallback_home and "Installed" in ops.state.message
    import tinyrt
    assert tinyrt.__file__.startswith(fallback_home) and seconds < 30
    # The preferences show it, with the remove button.
    from photo3d.preferences import Photo3DPreferences
    from photo3d.runtime.ui import draw_runtime
    layout = FakeLayout(bpy)
    draw_runtime(layout, bpy.context, types.SimpleNamespace(bl_rna=Photo3DPreferences.bl_rna))
    assert {"torch_build", "photo3d.install_runtime", "photo3d.remove_runtime"} <= set(layout.drawn)
    assert bpy.ops.photo3d.remove_runtime() == {"FINISHED"}
    assert not os.path.exists(fallback_home) and fallback_home not in sys.path
    assert "Removed PyTorch" in ops.state.message


@pytest.mark.blender
def test_operator_refuses_when_online_access_is_off(blender, fallback_home, monkeypatch):
    monkeypatch.delenv(rt.ENV_PIP_ARGS)                  # PyPI, but Blender may not go online
    with pytest.raises(RuntimeError, match="Online access is off.*Allow Online Access"):
        blender.ops.photo3d.install_runtime()
    assert not os.path.exists(fallback_home)


@pytest.mark.blender
def test_register_activates_an_installed_runtime(blender, fallback_home):
    import photo3d
    inst, state, _ = _install(fallback_home, None)
    assert state == rt.DONE and fallback_home not in sys.path
    photo3d.unregister()
    try:
        assert fallback_home not in sys.path
    finally:
        photo3d.register()
    assert sys.path[-1] == fallback_home


@pytest.mark.blender
def test_panel_offers_the_install_and_the_modal_timer_steps_it(blender, fallback_home, stalled_index,
                                                               empty_scene, monkeypatch):
    """A zoo model chosen without PyTorch: the panel says so and offers the install; the
    install stepped like Blender's modal timer shows its progress, and Cancel stops it."""
    bpy = blender
    from photo3d.inference.depth import zoo as depth_hf
    from photo3d.runtime import operators as ops
    from photo3d.ui import panel
    monkeypatch.setattr(depth_hf, "available", lambda: False)
    bpy.context.scene.photo3d.depth_model = "depth-pro"          # a model that runs through PyTorch
    layout = FakeLayout(bpy)
    panel.PHOTO3D_PT_main.draw(types.SimpleNamespace(layout=layout), bpy.context)
    assert "photo3d.install_runtime" in layout.drawn and any("needs PyTorch" in t for t in layout.labels)
    # What execute() does in a window: start, then modal TIMER steps.
    inst = ops.state.installer = rt.Installer(ops.runtime_dir(), "CPU").start()
    reports = []
    op = types.SimpleNamespace(_timer=None, report=lambda kind, msg: reports.append((kind, msg)))
    op._remove_timer = lambda ctx: None
    op._end = lambda installer: ops.PHOTO3D_OT_install_runtime._end(op, installer)
    timer = types.SimpleNamespace(type="TIMER", value="NOTHING")
    _wait_for_pip(inst)
    assert ops.PHOTO3D_OT_install_runtime.modal(op, bpy.context, timer) == {"PASS_THROUGH"}
    busy = FakeLayout(bpy)
    panel.PHOTO3D_PT_main.draw(types.SimpleNamespace(layout=busy), bpy.context)
    assert {"progress", "photo3d.cancel_runtime_install"} <= set(busy.drawn)
    assert any(t.startswith("Installing PyTorch: ") for t in busy.labels)
    assert not bpy.ops.photo3d.install_runtime.poll()            # one install at a time
    assert bpy.ops.photo3d.cancel_runtime_install() == {"FINISHED"}
    for _ in range(500):
        ret = ops.PHOTO3D_OT_install_runtime.modal(op, bpy.context, timer)
        if ret != {"PASS_THROUGH"}:
            break
        time.sleep(0.02)
    assert ret == {"CANCELLED"} and reports[-1][0] == {"WARNING"} and "cancelled" in reports[-1][1]
    assert ops.state.installer is None and not os.path.exists(fallback_home)
    assert _leftovers(fallback_home) == []


@pytest.mark.blender
def test_remove_operator_while_windows_holds_the_files(blender, fallback_home, windows_files, monkeypatch):
    from photo3d.runtime import operators as ops
    os.makedirs(os.path.join(fallback_home, "torch"))
    held = _Held(monkeypatch, fallback_home)
    assert blender.ops.photo3d.remove_runtime() == {"FINISHED"}
    assert "restart Blender to finish removing" in ops.state.message
    assert os.path.isdir(os.path.join(fallback_home, "torch")) and not blender.ops.photo3d.remove_runtime.poll()
    held.paths.clear()
    assert not ops.activate_existing() and not os.path.exists(fallback_home)


EXTENSION_SCRIPT = textwrap.dedent("""
    import os, sys, bpy
    from importlib import import_module
    mod = 'bl_ext.user_default.photo3d'
    res = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo='user_default', enable_on_install=True)
    assert res == {'FINISHED'}, res
    prefs = bpy.context.preferences.addons[mod].preferences
    assert prefs.torch_build == 'CPU'
    prefs.torch_build = 'GPU'
    runtime = import_module(mod + '.runtime.operators')
    assert runtime.chosen_build(bpy.context).key == 'GPU'
    assert bpy.ops.photo3d.install_runtime() == {'FINISHED'}
    import tinyrt
    print('RUNTIME', os.path.dirname(os.path.dirname(tinyrt.__file__)))
    bpy.ops.preferences.addon_disable(module=mod)
    assert runtime.runtime_dir() not in sys.path
    bpy.ops.preferences.addon_enable(module=mod)
    assert sys.path[-1] == runtime.runtime_dir()
    bpy.ops.preferences.addon_disable(module=mod)
    print('EXTENSION-OK')
""")


@pytest.mark.blender
@pytest.mark.slow
def test_installed_extension_keeps_its_runtime_in_its_user_folder(mirror, tmp_path, monkeypatch):
    """As Blender users get it (the zip installed as bl_ext.user_default.photo3d): its
    preferences hold the build, the runtime goes into the extension's user folder, and
    disabling / enabling the extension takes it off / puts it back on sys.path."""
    build = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_extension.py"), "--out",
                            str(tmp_path / "build"), "--no-wheels"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    zips = sorted((tmp_path / "build").glob("*.zip"))
    script = tmp_path / "ext.py"
    script.write_text(EXTENSION_SCRIPT)
    monkeypatch.setenv(rt.ENV_PACKAGES, "tinyrt==1.0")
    monkeypatch.setenv("BLENDER_USER_RESOURCES", str(tmp_path / "user"))
    p = subprocess.run([sys.executable, str(script), str(zips[0])], capture_output=True, text=True, timeout=300)
    assert "EXTENSION-OK" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    want = os.path.join(str(tmp_path / "user"), "extensions", ".user", "user_default", "photo3d", "site-packages")
    assert f"RUNTIME {want}" in p.stdout
