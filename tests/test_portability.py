"""photo3d where Windows users have it: no POSIX-only module, paths with spaces and
non-ASCII characters, and outputs moved into place although another program may hold them.

The subprocess tests make ``resource``, ``fcntl``, ``termios``, ``pwd`` and ``grp``
unimportable (a ``sitecustomize`` on PYTHONPATH, as they are on Windows), then enable the
extension and make a 3D photo through its operator, and run the command line. Blender
itself (the ``bpy`` module) needs none of them; the standard library's ``subprocess`` and
``tarfile`` and the ``filelock`` package try some of them and fall back, as on Windows.
"""
from __future__ import annotations

import errno
import importlib.util
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from photo3d.inference import files
from photo3d.inference.errors import Photo3DError

POSIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the bpy module")

SITECUSTOMIZE = textwrap.dedent(f"""
    import os
    import sys

    BLOCKED = frozenset({POSIX_ONLY!r})
    LOG = os.environ.get("PHOTO3D_BLOCKED_LOG")


    class NotOnWindows:
        def find_spec(self, name, path=None, target=None):
            if name not in BLOCKED:
                return None
            if LOG:      # who asked: the first frame outside the import machinery
                f = sys._getframe(1)
                while f is not None and f.f_code.co_filename.startswith("<frozen importlib"):
                    f = f.f_back
                with open(LOG, "a", encoding="utf-8") as fh:
                    fh.write(f"{{name}} {{f.f_globals.get('__name__') if f else '?'}}\\n")
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


    for name in BLOCKED:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, NotOnWindows())
""")

OPERATOR = textwrap.dedent("""
    import importlib, pkgutil, sys
    import bpy
    import photo3d
    for mod in pkgutil.walk_packages(photo3d.__path__, "photo3d."):   # every module imports
        if mod.name.split(".")[1] not in ("__main__", "tests", "tools"):
            importlib.import_module(mod.name)
    photo3d.register()
    try:
        assert bpy.ops.photo3d.make_photo(filepath=sys.argv[1]) == {"FINISHED"}
        coll = bpy.data.collections.get("3D Photo")
        assert coll is not None, "no 3D Photo collection"
        print("OBJECTS", sorted(o.name for o in coll.all_objects))
        print("SOURCE", bpy.context.scene.photo3d.source_photo == sys.argv[1])
    finally:
        photo3d.unregister()
    print("PORTABLE-OK")
""")


@pytest.fixture
def windowsish(tmp_path):
    """(env, log): Python with the POSIX-only modules unimportable, and where attempts are logged."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    log = tmp_path / "blocked.txt"
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, PHOTO3D_BLOCKED_LOG=str(log)), log


@pytest.fixture
def odd_photo(tmp_path, portrait_path) -> str:
    """The portrait, 256 px, in a folder and under a name with spaces and non-ASCII characters."""
    folder = tmp_path / "Fotos ü"
    folder.mkdir()
    path = str(folder / "été photo.jpg")
    small = cv2.resize(cv2.imread(portrait_path), (256, 256), interpolation=cv2.INTER_AREA)
    files.write_image(path, small)
    return path


def _blocked(log) -> list[str]:
    return sorted(set(log.read_text(encoding="utf-8").splitlines())) if log.exists() else []


def _run(cmd, env, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, encoding="utf-8", env=env, cwd=cwd,
                          timeout=300)


def test_the_blocker_blocks(windowsish):
    env, log = windowsish
    code = (f"import importlib\nfor n in {POSIX_ONLY!r}:\n    try:\n        importlib.import_module(n)\n"
            "    except ModuleNotFoundError:\n        print('blocked', n)\n")
    p = _run([sys.executable, "-c", code], env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [w for n in POSIX_ONLY for w in ("blocked", n)]
    assert {line.split()[0] for line in _blocked(log)} == set(POSIX_ONLY)


@pytest.mark.blender
@needs_bpy
def test_register_and_make_photo_without_posix_modules(windowsish, odd_photo, tmp_path):
    env, log = windowsish
    script = tmp_path / "make_3d_photo.py"       # not operator.py: that would shadow the stdlib
    script.write_text(OPERATOR, encoding="utf-8")
    p = _run([sys.executable, str(script), odd_photo], env)
    assert "PORTABLE-OK" in p.stdout, p.stdout[-2000:] + p.stderr[-3000:] + "\nblocked: " + repr(_blocked(log))
    assert "SOURCE True" in p.stdout
    assert "'3D Photo Foreground'" in p.stdout and "'3D Photo Camera'" in p.stdout
    # Nothing of photo3d needs them; what tried (stdlib, filelock) fell back as on Windows.
    assert not [b for b in _blocked(log) if b.split()[1].startswith("photo3d") and
                b.split()[1] != "photo3d.inference.memory"], _blocked(log)


OUTPUTS = ["background.png", "confidence.png", "depth.npy", "depth.png", "mask.png", "scene.blend"]


@pytest.mark.blender
@needs_bpy
def test_cli_make_with_spaces_and_non_ascii_paths(windowsish, odd_photo, tmp_path):
    env, log = windowsish
    env = dict(env, PYTHONIOENCODING="ascii")   # output piped in a code page without these letters
    out = tmp_path / "Ausgabe ö" / "3D Foto é"
    p = _run([sys.executable, "-m", "photo3d", "make", odd_photo, "--out", str(out), "--no-render",
              "--depth-model", "classical", "--frames", "12"], env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:] + "\nblocked: " + repr(_blocked(log))
    assert sorted(os.listdir(out)) == OUTPUTS
    depth = np.load(out / "depth.npy")
    for name, dtype in (("depth.png", np.uint16), ("mask.png", np.uint8), ("background.png", np.uint8),
                        ("confidence.png", np.uint8)):
        img = cv2.imdecode(files.read_bytes(out / name), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.dtype == dtype and img.shape[:2] == depth.shape == (256, 256), name

    # Again into the same folder: every output is replaced, nothing else is left behind.
    before = os.path.getmtime(out / "scene.blend")
    p = _run([sys.executable, "-m", "photo3d", "make", odd_photo, "--out", str(out), "--no-render",
              "--depth-model", "classical", "--frames", "12"], env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(os.listdir(out)) == OUTPUTS
    assert os.path.getmtime(out / "scene.blend") >= before


# --- inference/files.py ------------------------------------------------------------------

def test_image_bytes_round_trip_at_an_odd_path(tmp_path):
    path = tmp_path / "Bilder ñ" / "größe 1.png"
    path.parent.mkdir()
    img = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300)
    files.write_image(path, img)
    back = cv2.imdecode(files.read_bytes(path), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, img)
    with pytest.raises(OSError):
        files.write_image(tmp_path / "x.nosuchformat", img)


def test_replace_overwrites_files_and_folders(tmp_path):
    src, dst = tmp_path / "new.txt", tmp_path / "out.txt"
    src.write_text("new")
    dst.write_text("old")
    files.replace(src, dst)
    assert dst.read_text() == "new" and not src.exists()

    new, old = tmp_path / "frames.new", tmp_path / "frames"
    new.mkdir()
    (new / "a.png").write_text("a")
    old.mkdir()
    (old / "stale.png").write_text("x")
    files.replace(new, old)
    assert os.listdir(old) == ["a.png"] and not new.exists()
    assert sorted(os.listdir(tmp_path)) == ["frames", "out.txt"]      # the old folder is gone


def test_replace_waits_out_a_short_lock(tmp_path, monkeypatch):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("new")
    dst.write_text("old")
    real, calls, sleeps = os.replace, [], []

    def locked_twice(a, b):
        calls.append(a)
        if len(calls) <= 2:
            raise PermissionError(errno.EACCES, "The process cannot access the file", str(b))
        real(a, b)

    monkeypatch.setattr(files.os, "replace", locked_twice)
    monkeypatch.setattr(files.time, "sleep", sleeps.append)
    files.replace(src, dst)
    assert dst.read_text() == "new" and len(calls) == 3 and sleeps == list(files.RETRY_DELAYS[:2])


def test_replace_gives_one_clear_error_when_the_lock_stays(tmp_path, monkeypatch):
    src, dst = tmp_path / "a", tmp_path / "video.mp4"
    src.write_text("new")
    dst.write_text("old")

    def locked(a, b):
        raise PermissionError(errno.EACCES, "The process cannot access the file", str(b))

    monkeypatch.setattr(files.os, "replace", locked)
    monkeypatch.setattr(files.time, "sleep", lambda s: None)
    with pytest.raises(files.FileInUseError) as info:
        files.replace(src, dst)
    assert isinstance(info.value, Photo3DError) and isinstance(info.value, PermissionError)
    assert str(info.value).startswith(f"{dst} is open in another program")
    assert src.read_text() == "new" and dst.read_text() == "old"


def test_replace_keeps_the_old_folder_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    new, old = tmp_path / "frames.new", tmp_path / "frames"
    new.mkdir()
    old.mkdir()
    (old / "kept.png").write_text("x")
    real = os.replace

    def new_locked(a, b):
        if os.fspath(a) == str(new):
            raise PermissionError(errno.EACCES, "locked", str(b))
        real(a, b)

    monkeypatch.setattr(files.os, "replace", new_locked)
    monkeypatch.setattr(files.time, "sleep", lambda s: None)
    with pytest.raises(files.FileInUseError):
        files.replace(new, old)
    assert os.listdir(old) == ["kept.png"] and new.is_dir()
