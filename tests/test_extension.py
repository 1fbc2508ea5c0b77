"""The extension package: manifest validity and the zips tools/build_extension.py makes.

Offline and fast: Blender's own extension tool (``blender_ext.py`` from the ``bpy``
wheel, standard library only) is run in a subprocess; photo3d itself is never imported,
and no wheel is downloaded (the split-platform build uses dummy wheels in a fake cache).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "build_extension.py"


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _build(out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    proc = _run([sys.executable, str(TOOL), "--out", str(out), *extra])
    zips = [Path(line) for line in proc.stdout.splitlines() if line.endswith(".zip")]
    return proc, zips


def _version() -> str:
    with open(ROOT / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)["version"]


def test_manifest_fields():
    with open(ROOT / "blender_manifest.toml", "rb") as fh:
        m = tomllib.load(fh)
    assert m["id"] == "photo3d"
    assert m["name"] == "3D Photo"
    assert m["blender_version_min"] == "4.2.0"
    assert m["type"] == "add-on"
    assert len(m["tagline"]) <= 64 and m["tagline"][-1].isalnum()
    # Schema 1.0.0: a table of permission -> reason.
    assert isinstance(m["permissions"], dict)
    assert set(m["permissions"]) <= {"files", "network", "clipboard", "camera", "microphone"}
    # Wheels are written by tools/build_extension.py into a staged copy only.
    assert "wheels" not in m and "platforms" not in m
    excluded = m["build"]["paths_exclude_pattern"]
    for pattern in ("/tests/", "/tools/", "/.venv*/", "/wheels/", "/build/", "/out/"):
        assert pattern in excluded


def test_manifest_validates(tool, blender_ext):
    tags = tool.find_valid_tags(blender_ext)
    cmd = [sys.executable, str(blender_ext), "validate"]
    if tags:
        cmd.append(f"--valid-tags={tags}")  # as `blender --command extension validate` does
    proc = _run([*cmd, str(ROOT)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_build_without_wheels(tmp_path, blender_ext):
    proc, zips = _build(tmp_path / "out", "--no-wheels", "--cache", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert zips == [tmp_path / "out" / f"photo3d-{_version()}.zip"]
    assert zips[0].is_file()
    with zipfile.ZipFile(zips[0]) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert "blender_manifest.toml" in names
    assert "__init__.py" in names
    assert any(n.startswith("inference/") for n in names)
    tops = {n.split("/", 1)[0] for n in names}
    for bad in ("tests", "tools", "wheels", "build", "out", ".git", "Makefile", "requirements.txt"):
        assert bad not in tops, bad
    assert not any(t.startswith(".venv") for t in tops)
    assert not any(n.endswith((".pyc", ".whl")) for n in names)
    assert "wheels" not in manifest and "platforms" not in manifest
    assert not (tmp_path / "cache").exists()  # nothing downloaded
    # The portrait networks travel inside, with their licence (read by OpenCV, offline).
    for f in ("selfie_segmentation.tflite", "face_landmark.tflite", "LICENSE.txt"):
        assert f"models/mediapipe/{f}" in names, f


def _dummy_wheel(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dummydep/__init__.py", "")


def test_split_platform_build_with_cached_wheels(tmp_path, blender_ext):
    cache = tmp_path / "cache"
    linux = "dummydep-1.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    windows = "dummydep-1.0-py3-none-win_amd64.whl"
    _dummy_wheel(cache / "linux-x64" / linux)
    _dummy_wheel(cache / "windows-x64" / windows)

    proc, zips = _build(tmp_path / "out", "--platforms", "linux-x64,windows-x64",
                        "--requirement", "dummydep==1.0", "--cache", str(cache))
    assert proc.returncode == 0, proc.stderr
    v = _version()
    assert [z.name for z in zips] == [f"photo3d-{v}-linux_x64.zip", f"photo3d-{v}-windows_x64.zip"]

    for z, own, other, platform in ((zips[0], linux, windows, "linux-x64"),
                                    (zips[1], windows, linux, "windows-x64")):
        with zipfile.ZipFile(z) as zf:
            names = zf.namelist()
            manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        assert f"wheels/{own}" in names
        assert f"wheels/{other}" not in names
        assert manifest["build"]["generated"]["platforms"] == [platform]
        assert manifest["build"]["generated"]["wheels"] == [f"./wheels/{own}"]
        assert not any(n.startswith(("tests/", "tools/")) for n in names)


@pytest.mark.parametrize("extra, message", [
    (["--platforms", "linux-x64,amiga-m68k"], "unknown platform amiga-m68k"),
    (["--platforms", "linux-x64", "--requirement", "numpy==1.26.4"], "must not be bundled"),
    (["--no-wheels", "--platforms", "linux-x64"], "--platforms needs wheels"),
])
def test_errors_are_one_line(tmp_path, blender_ext, extra, message):
    proc, zips = _build(tmp_path / "out", "--cache", str(tmp_path / "cache"), *extra)
    assert proc.returncode != 0
    assert zips == []
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("build_extension: error:") and message in lines[-1], proc.stderr
