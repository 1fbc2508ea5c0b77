"""One extension zip per platform, as users on Windows, macOS and Linux install it: each
passes Blender's own validator (``blender_ext.py validate``), names in its manifest exactly
the wheels it carries, those wheels are built for that platform and Blender's Python, and
no zip carries NumPy (Blender ships it).

The fast test builds from stand-in wheels named like real ones (offline); the slow one runs
the real build with the real wheels from PyPI, cached in ``<repo>/wheels/`` as ``make
extension`` does (about 430 MB the first time), and prints each zip's size.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "build_extension.py"
PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")

# A wheel's platform tag (one of its dot-separated tags) -> is it for this Blender platform?
PLATFORM_TAG = {
    "linux-x64": re.compile(r"(manylinux_\d+_\d+|manylinux1|manylinux2010|manylinux2014|linux)_x86_64"),
    "windows-x64": re.compile(r"win_amd64"),
    "macos-arm64": re.compile(r"macosx_\d+_\d+_(arm64|universal2)"),
    "macos-x64": re.compile(r"macosx_\d+_\d+_(x86_64|intel|universal2)"),
}
LEGACY_GLIBC = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
BLENDER_GLIBC = (2, 28)          # Blender 4.2+ on Linux
BLENDER_PYTHON = (3, 11)         # Blender 4.2 - 5.0


def _dist(wheel: str) -> str:
    return re.sub(r"[-_.]+", "_", wheel.split("-")[0]).lower()


def _glibc(tag: str) -> tuple[int, int] | None:
    m = re.match(r"manylinux_(\d+)_(\d+)_", tag)
    if m:
        return int(m.group(1)), int(m.group(2))
    return LEGACY_GLIBC.get(tag.split("_", 1)[0])


def wheel_problem(wheel: str, platform: str) -> str | None:
    """Why ``wheel`` (a file name) cannot run in Blender on ``platform``, or None."""
    parts = wheel[: -len(".whl")].split("-")
    python, abi, plat = parts[-3], parts[-2], parts[-1]
    tags = plat.split(".")
    if plat != "any" and not any(PLATFORM_TAG[platform].fullmatch(t) for t in tags):
        return f"platform tag {plat} is not for {platform}"
    if platform.startswith("linux") and plat != "any":
        needs = min(g for t in tags if (g := _glibc(t)) is not None)
        if needs > BLENDER_GLIBC:
            return f"needs glibc {needs}, newer than Blender's {BLENDER_GLIBC}"
    cp = f"cp{BLENDER_PYTHON[0]}{BLENDER_PYTHON[1]}"
    ok = any(t in (cp, "py3", f"py{BLENDER_PYTHON[0]}{BLENDER_PYTHON[1]}") for t in python.split("."))
    if not ok and abi == "abi3":
        ok = any(re.fullmatch(r"cp3(\d+)", t) and int(t[3:]) <= BLENDER_PYTHON[1] for t in python.split("."))
    if not ok:
        return f"python tag {python}-{abi} does not run on CPython {BLENDER_PYTHON[0]}.{BLENDER_PYTHON[1]}"
    return None


def check_platform_zip(path: Path, platform: str, blender_ext: Path, tool, expect: set[str]) -> list[str]:
    """Every rule a zip for ``platform`` must follow; returns its wheels' file names."""
    tags = tool.find_valid_tags(blender_ext)
    cmd = [sys.executable, str(blender_ext), "validate", *([f"--valid-tags={tags}"] if tags else []), str(path)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{path.name}: {proc.stdout}{proc.stderr}"

    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
        assert zf.testzip() is None, f"{path.name}: corrupt member"
    # What Blender installs: the split build's generated lists replace the top-level ones.
    generated = manifest.get("build", {}).get("generated", {})
    assert generated.get("platforms", manifest.get("platforms")) == [platform], path.name
    listed = generated.get("wheels", manifest.get("wheels", []))
    carried = sorted(n for n in names if n.endswith(".whl"))
    assert sorted(w.removeprefix("./") for w in listed) == carried, f"{path.name}: manifest and zip disagree"
    wheels = [n.rsplit("/", 1)[-1] for n in carried]
    for w in wheels:
        assert wheel_problem(w, platform) is None, f"{path.name}: {w}: {wheel_problem(w, platform)}"
    assert sorted(_dist(w) for w in wheels) == sorted(expect), f"{path.name}: {wheels}"
    assert not any(_dist(w) == "numpy" for w in wheels), f"{path.name} bundles NumPy"
    assert not any(n.split("/", 1)[0] == "numpy" for n in names), f"{path.name} carries NumPy"
    tops = {n.split("/", 1)[0] for n in names}
    assert not any(t.startswith(".") for t in tops), f"{path.name}: hidden files {sorted(tops)}"
    assert not tops & {"tests", "tools", "docs", "build", "out"}, f"{path.name}: {sorted(tops)}"
    return wheels


def _build(tool, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict[str, Path]]:
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(out), *extra], check=False,
                          capture_output=True, text=True, timeout=900)
    zips = [Path(line) for line in proc.stdout.splitlines() if line.endswith(".zip")]
    by_platform = {}
    for z in zips:
        m = re.fullmatch(r"photo3d-[\d.]+-(\w+)\.zip", z.name)
        assert m, z.name
        by_platform[m.group(1).replace("_", "-")] = z
    return proc, by_platform


def test_the_wheel_rules_themselves():
    assert wheel_problem("scipy-1.15.3-cp311-cp311-win_amd64.whl", "windows-x64") is None
    assert wheel_problem("scipy-1.15.3-cp311-cp311-win_amd64.whl", "macos-x64")
    assert wheel_problem("x-1-cp37-abi3-macosx_10_9_universal2.whl", "macos-arm64") is None
    assert wheel_problem("x-1-cp37-abi3-macosx_10_9_universal2.whl", "macos-x64") is None
    assert wheel_problem("x-1-cp311-cp311-macosx_11_0_arm64.whl", "macos-x64")
    assert wheel_problem("x-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "linux-x64") is None
    assert "glibc" in wheel_problem("x-1-cp311-cp311-manylinux_2_34_x86_64.whl", "linux-x64")
    assert "python" in wheel_problem("x-1-cp312-cp312-win_amd64.whl", "windows-x64")
    assert wheel_problem("x-1-py3-none-any.whl", "macos-arm64") is None


def _dists(tool, platform) -> set[str]:
    return {tool.norm_name(tool.parse_pin(r)[0]) for r in tool.requirements(platform)}


def test_the_build_makes_the_platforms_the_manifest_needs(tool):
    assert tuple(tool.DEFAULT_PLATFORMS) == PLATFORMS
    common = {tool.norm_name(tool.parse_pin(r)[0]) for r in tool.REQUIREMENTS}
    assert {"opencv_python_headless", "scipy", "pillow", "huggingface_hub"} <= common
    # The model downloads work in Blender without the PyTorch runtime: huggingface_hub and
    # everything it imports are in every zip (hf-xet is optional; plain HTTPS without it).
    assert {"filelock", "fsspec", "packaging", "pyyaml", "requests", "tqdm", "typing_extensions", "certifi",
            "idna", "urllib3", "charset_normalizer"} <= common and "hf_xet" not in common
    # ONNX Runtime in the build each platform's GPUs need: DirectML on Windows, CoreML inside
    # the macOS wheel; CUDA comes on demand (runtime/builds.py), never in a zip.
    assert {p: _dists(tool, p) - common for p in PLATFORMS} == {
        "linux-x64": {"onnxruntime"}, "windows-x64": {"onnxruntime_directml"},
        "macos-arm64": {"onnxruntime"}, "macos-x64": {"onnxruntime"}}
    for p in tool.PLATFORM_TAGS:
        reqs = tool.requirements(p)
        assert all(tool.parse_pin(r)[1] for r in reqs), p                 # pinned: the cache can answer
        assert not _dists(tool, p) & {"numpy", "onnxruntime_gpu", "flatbuffers", "protobuf", "sympy"}, p


def _stand_in(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("standin/__init__.py", "")


def test_one_valid_zip_per_platform_from_stand_in_wheels(tmp_path, tool, blender_ext):
    """Offline: the wheel tags each platform really gets, a universal2 wheel in both macOS zips."""
    cache = tmp_path / "cache"
    names = {
        "linux-x64": ["cvlike-1.0-cp37-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                      "sclike-1.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"],
        "windows-x64": ["cvlike-1.0-cp37-abi3-win_amd64.whl", "sclike-1.0-cp311-cp311-win_amd64.whl"],
        "macos-arm64": ["cvlike-1.0-cp37-abi3-macosx_13_0_arm64.whl",
                        "sclike-1.0-cp311-cp311-macosx_10_9_universal2.whl"],
        "macos-x64": ["cvlike-1.0-cp37-abi3-macosx_13_0_x86_64.whl",
                      "sclike-1.0-cp311-cp311-macosx_10_9_universal2.whl"],
    }
    for platform, wheels in names.items():
        for w in wheels:
            _stand_in(cache / platform / w)
    proc, zips = _build(tool, tmp_path / "out", "--cache", str(cache),
                        "--requirement", "cvlike==1.0", "--requirement", "sclike==1.0")
    assert proc.returncode == 0, proc.stderr
    assert sorted(zips) == sorted(PLATFORMS)
    for platform, path in zips.items():
        got = check_platform_zip(path, platform, blender_ext, tool, {"cvlike", "sclike"})
        assert sorted(got) == sorted(names[platform])


def _index_reachable() -> bool:
    import os
    import urllib.request
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    try:
        with urllib.request.urlopen(f"{index}/pillow/", timeout=15):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_one_valid_zip_per_platform_with_the_real_wheels(tmp_path, tool, blender_ext):
    proc, zips = _build(tool, tmp_path / "out")          # the default wheel cache, <repo>/wheels/
    if proc.returncode != 0 and "pip download" in proc.stderr and not _index_reachable():
        pytest.skip(f"the package index is not reachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    assert sorted(zips) == sorted(PLATFORMS)
    for platform, path in zips.items():
        wheels = check_platform_zip(path, platform, blender_ext, tool, _dists(tool, platform))
        print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB: {', '.join(sorted(wheels))}")
