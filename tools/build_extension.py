#!/usr/bin/env python3
"""Build the photo3d Blender extension: one zip per platform, with its wheels.

    python tools/build_extension.py --out build
    python tools/build_extension.py --out build --platforms linux-x64,windows-x64
    python tools/build_extension.py --out build --no-wheels     # one zip, offline

The repository root is the extension package. This script copies it into a staging
directory (leaving out what the manifest's ``[build] paths_exclude_pattern`` leaves
out), downloads the run-time wheels of each platform into ``wheels/`` there (cached in
``<repo>/wheels/<platform>/`` between runs), writes ``wheels = [...]`` and
``platforms = [...]`` into the staged manifest, then runs Blender's own extension tool
(``blender_ext.py validate`` and ``build --split-platforms``, found inside the ``bpy``
package; the same code as ``blender --command extension ...``) and checks every zip.

The zip paths are printed on stdout, one a line; progress goes to stderr.

NumPy is never bundled: Blender ships it, and wheels of every extension land in one
shared site-packages, so a second NumPy would break Blender and other add-ons.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11 (Blender's Python and the venv are 3.11).
    sys.exit("build_extension: error: needs Python 3.11+ (use .venv/bin/python)")

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "blender_manifest.toml"

# Run-time dependencies bundled as wheels. Pinned (``==``) so the cache can be used
# without asking the index again. All support NumPy 1.26, which Blender 4.2-4.5 ship.
REQUIREMENTS = (
    "opencv-python-headless==4.11.0.86",
    "scipy==1.15.3",
    "pillow==11.3.0",
    # Model downloads (the ONNX depth and inpainting models) through huggingface_hub, and what
    # it imports. hf-xet is left out: without it the hub downloads over plain HTTPS.
    "huggingface_hub==0.36.2",
    "filelock==4.3.2",
    "fsspec==2026.9.0",
    "packaging==26.4",
    "pyyaml==6.0.4",
    "requests==2.34.2",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "idna==3.21",
    "urllib3==2.8.0",
    "tqdm==4.70.1",
    "typing_extensions==4.16.0",
)
# ONNX Runtime, the engine of every network, in the build each platform's GPUs need:
# Windows gets onnxruntime-directml (DirectML: any DirectX 12 GPU, NVIDIA, AMD, Intel; the
# same Python API), macOS's wheel has CoreML. CUDA is too big for a zip (onnxruntime-gpu is
# 250 MB plus NVIDIA's libraries): Linux users install it on demand (runtime/builds.py).
# ONNX Runtime needs only NumPy to import and run a session (flatbuffers, protobuf, sympy,
# packaging and coloredlogs serve its tools), so it is bundled without its dependencies.
# macOS: 1.24 has no Intel wheel, and its arm64 wheel needs macOS 14; 1.23.2 runs on
# macOS 13 on both, the floor OpenCV's wheels set already.
ONNXRUNTIME = {
    "linux-x64": "onnxruntime==1.24.4",
    "linux-arm64": "onnxruntime==1.24.4",
    "windows-x64": "onnxruntime-directml==1.24.4",
    "windows-arm64": "onnxruntime==1.24.4",          # no DirectML wheel for Windows on Arm
    "macos-arm64": "onnxruntime==1.23.2",
    "macos-x64": "onnxruntime==1.23.2",
}


def requirements(platform: str) -> list[str]:
    """The wheels a platform's zip carries."""
    return [*REQUIREMENTS, ONNXRUNTIME[platform]]

# Blender 4.2 - 5.0 embed CPython 3.11.
PYTHON_VERSION = "3.11"
NEVER_BUNDLE = {"numpy"}

# Blender platform -> pip ``--platform`` tags, most preferred first. pip does not widen
# PEP 600 ``manylinux_2_X`` tags by itself, so they are listed. Blender 4.2+ needs
# glibc 2.28 on Linux. opencv-python-headless 4.11 has macOS wheels only for 13.0+.
PLATFORM_TAGS = {
    "linux-x64": [f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)] + ["manylinux2014_x86_64"],
    "linux-arm64": [f"manylinux_2_{m}_aarch64" for m in range(28, 16, -1)] + ["manylinux2014_aarch64"],
    "windows-x64": ["win_amd64"],
    "windows-arm64": ["win_arm64"],
    "macos-arm64": ["macosx_13_0_arm64"],
    "macos-x64": ["macosx_13_0_x86_64"],
}
DEFAULT_PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")

# Never copied into the staging directory, whatever the manifest says; nor is any hidden
# top-level entry (.git, .gitattributes, tool caches such as .ruff_cache).
ALWAYS_SKIP_TOP = {"wheels"}


class BuildError(Exception):
    """A failure reported as one line."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Blender's extension tool

def find_blender_ext(explicit: str | None = None) -> Path:
    """``blender_ext.py`` from the installed ``bpy`` package (without importing bpy)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise BuildError(f"--blender-ext {explicit}: no such file")
        return path
    if env := os.environ.get("PHOTO3D_BLENDER_EXT"):
        return find_blender_ext(env)

    roots: list[str] = []
    try:
        spec = importlib.util.find_spec("bpy")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        roots.extend(spec.submodule_search_locations)
    # Run with another interpreter than the venv's: look in the repository's venvs too.
    roots.extend(glob.glob(str(ROOT / ".venv*" / "lib" / "python3*" / "site-packages" / "bpy")))

    for root in roots:
        found = glob.glob(os.path.join(root, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py"))
        if found:
            # Highest Blender version first ("4.5" > "4.2"; compare numerically).
            def key(p: str) -> tuple[int, ...]:
                ver = Path(p).parents[4].name
                return tuple(int(x) for x in re.findall(r"\d+", ver))
            return Path(max(found, key=key))
    raise BuildError(
        "blender_ext.py not found: install bpy (pip install bpy==4.5.4, `make venv`) "
        "or pass --blender-ext PATH"
    )


def find_valid_tags(blender_ext: Path) -> Path | None:
    """The tags list Blender itself validates against (``blender --command extension``)."""
    # <ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py -> <ver>/scripts/modules/...
    scripts = blender_ext.parents[3]
    tags = scripts / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    return tags if tags.is_file() else None


def load_blender_ext(path: Path):
    """Import blender_ext.py as a module (standard library only, no side effects)."""
    spec = importlib.util.spec_from_file_location("_photo3d_blender_ext", path)
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_blender_ext(blender_ext: Path, args: list[str], what: str,
                    rename: tuple[str, str] | None = None) -> str:
    """Run blender_ext.py; on failure raise its messages joined into one line.

    ``rename`` replaces the (temporary) staging path in messages by the source path.
    """
    cmd = [sys.executable, str(blender_ext), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()] or ["no output"]
        detail = " | ".join(lines)
        if rename:
            detail = detail.replace(*rename)
        if len(detail) > 600:
            detail = detail[:600] + "..."
        raise BuildError(f"{what} failed: {detail}")
    return out


# --------------------------------------------------------------------------------------
# Staging

def read_manifest(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BuildError(f"{path}: not found") from None
    except tomllib.TOMLDecodeError as ex:
        raise BuildError(f"{path}: invalid TOML: {ex}") from None


def stage_package(ext_mod, src: Path, dst: Path, exclude: list[str], skip: set[Path]) -> int:
    """Copy ``src`` to ``dst`` leaving out what the manifest's patterns leave out."""
    matcher = ext_mod.PathPatternMatch(exclude) if exclude else None
    skip = {p.resolve() for p in skip}

    def keep(rel: str, is_dir: bool) -> bool:
        rel = rel.replace(os.sep, "/")
        top = rel.split("/", 1)[0]
        if top in ALWAYS_SKIP_TOP or top.startswith(".") or (src / rel).resolve() in skip:
            return False
        if matcher is None:
            return not os.path.basename(rel).startswith(".")
        return not matcher.test_path(rel + "/" if is_dir else rel)

    n = 0
    for abs_path, rel in ext_mod.scandir_recursive(str(src), filter_fn=keep):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(abs_path, target)
        n += 1
    return n


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_staged_manifest(path: Path, wheels: list[str], platforms: list[str]) -> None:
    """Set top-level ``wheels`` / ``platforms`` in the staged manifest."""
    text = path.read_text(encoding="utf-8")
    # Drop any uncommented top-level assignment (single or multi-line arrays).
    text = re.sub(r"(?ms)^(wheels|platforms)\s*=\s*\[.*?\]\s*$\n?", "", text)

    lines = []
    if wheels:
        lines.append("wheels = [")
        lines.extend(f"  {toml_str(w)}," for w in wheels)
        lines.append("]")
    if platforms:
        lines.append("platforms = [" + ", ".join(toml_str(p) for p in platforms) + "]")
    block = "# Written by tools/build_extension.py.\n" + "\n".join(lines) + "\n\n" if lines else ""

    # Top-level keys must come before the first [table].
    m = re.search(r"(?m)^\s*\[", text)
    text = text[: m.start()] + block + text[m.start():] if m else text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")

    data = read_manifest(path)
    if data.get("wheels", []) != wheels or data.get("platforms", []) != platforms:
        raise BuildError(f"could not write wheels/platforms into the staged {MANIFEST}")


# --------------------------------------------------------------------------------------
# Wheels

def norm_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_pin(req: str) -> tuple[str, str | None]:
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^\s;,]+))?\s*", req)
    if not m:
        raise BuildError(f"requirement {req!r}: use NAME or NAME==VERSION")
    return m.group(1), m.group(2)


def wheel_name_version(filename: str) -> tuple[str, str]:
    parts = filename[: -len(".whl")].split("-")
    return norm_name(parts[0]), parts[1]


def fetch_wheel(req: str, platform: str, cache: Path, ext_mod) -> Path:
    """The wheel of ``req`` for a Blender ``platform``: from the cache or pip."""
    name, version = parse_pin(req)
    if norm_name(name) in NEVER_BUNDLE:
        raise BuildError(f"{name} must not be bundled: Blender ships it")
    cache.mkdir(parents=True, exist_ok=True)

    def compatible(p: Path) -> bool:
        return ext_mod.blender_platform_compatible_with_wheel_platform_from_filepath(platform, p.name)

    if version is not None:
        hits = sorted(
            p for p in cache.glob("*.whl")
            if wheel_name_version(p.name) == (norm_name(name), version) and compatible(p)
        )
        if hits:
            return hits[-1]

    with tempfile.TemporaryDirectory(prefix="photo3d-whl-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
            "--only-binary=:all:", "--no-deps",
            "--python-version", PYTHON_VERSION, "--implementation", "cp",
            "-d", tmp,
        ]
        for tag in PLATFORM_TAGS[platform]:
            cmd += ["--platform", tag]
        cmd.append(req)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            msg = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")] or \
                proc.stderr.strip().splitlines() or ["pip failed"]
            raise BuildError(f"pip download {req} for {platform}: {msg[-1]}")
        got = list(Path(tmp).glob("*.whl"))
        if len(got) != 1:
            raise BuildError(f"pip download {req} for {platform}: expected one wheel, got {len(got)}")
        if not compatible(got[0]):
            raise BuildError(f"{got[0].name} is not usable on {platform} according to blender_ext.py")
        dest = cache / got[0].name
        shutil.move(str(got[0]), dest)
        return dest


# --------------------------------------------------------------------------------------

def check_zip(path: Path, expect_wheels: list[str]) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    for required in (MANIFEST, "__init__.py"):
        if required not in names:
            raise BuildError(f"{path.name}: {required} missing from the zip")
    bad = [n for n in names if n.split("/", 1)[0] in {"tests", "tools"} or n.startswith(".")]
    if bad:
        raise BuildError(f"{path.name}: should not contain {bad[0]}")
    wheels = sorted(n for n in names if n.endswith(".whl"))
    if any(norm_name(os.path.basename(w).split("-")[0]) in NEVER_BUNDLE for w in wheels):
        raise BuildError(f"{path.name}: contains a NumPy wheel")
    missing = sorted({os.path.basename(w) for w in expect_wheels} - {os.path.basename(w) for w in wheels})
    if missing:
        raise BuildError(f"{path.name}: wheel {missing[0]} missing")
    return wheels


def stage_portrait_models(staging: Path) -> None:
    """Copy MediaPipe's person-segmentation and face-mesh networks (Apache-2.0) out of the
    installed MediaPipe wheel into ``models/mediapipe/``, with their licence: the extension
    then refines portraits offline without MediaPipe or its dependencies."""
    from importlib import metadata

    from photo3d.inference.portrait import MODEL_FILES
    try:
        dist = metadata.distribution("mediapipe")
    except metadata.PackageNotFoundError:
        log("warning: MediaPipe is not installed (make venv installs it): no portrait models in the zip")
        return
    dst = staging / "models" / "mediapipe"
    dst.mkdir(parents=True, exist_ok=True)
    for rel in MODEL_FILES.values():
        shutil.copy2(dist.locate_file(rel), dst / os.path.basename(rel))
    lic = next((f for f in dist.files or [] if f.name.upper().startswith("LICENSE")), None)
    text = f"From MediaPipe {dist.version} (https://github.com/google-ai-edge/mediapipe), Apache-2.0.\n\n"
    (dst / "LICENSE.txt").write_text(text + (lic.read_text() if lic is not None else ""))
    log(f"portrait models: {', '.join(os.path.basename(r) for r in MODEL_FILES.values())}")


def build(args: argparse.Namespace) -> list[Path]:
    src = Path(args.source).resolve()
    out = Path(args.out).resolve()
    cache = Path(args.cache).resolve()

    manifest = read_manifest(src / MANIFEST)
    ext_id, version = manifest.get("id"), manifest.get("version")
    if not ext_id or not version:
        raise BuildError(f"{src / MANIFEST}: needs id and version")

    if args.no_wheels:
        if args.platforms:
            raise BuildError("--platforms needs wheels; leave out --no-wheels")
        platforms: list[str] = []
    else:
        platforms = [p.strip() for p in (args.platforms or ",".join(DEFAULT_PLATFORMS)).split(",") if p.strip()]
        unknown = [p for p in platforms if p not in PLATFORM_TAGS]
        if unknown or not platforms:
            raise BuildError(f"unknown platform {unknown[0] if unknown else '(none)'}; "
                             f"choose from {', '.join(PLATFORM_TAGS)}")
        platforms = list(dict.fromkeys(platforms))

    blender_ext = find_blender_ext(args.blender_ext)
    ext_mod = load_blender_ext(blender_ext)
    tags = find_valid_tags(blender_ext)
    tag_args = [f"--valid-tags={tags}"] if tags else []
    log(f"blender_ext: {blender_ext}")

    exclude = (manifest.get("build") or {}).get("paths_exclude_pattern") or []
    if (manifest.get("build") or {}).get("paths"):
        raise BuildError("[build] paths is not supported by this script; use paths_exclude_pattern")

    out.mkdir(parents=True, exist_ok=True)
    staging_parent = tempfile.mkdtemp(prefix="photo3d-ext-")
    staging = Path(staging_parent) / ext_id
    staging.mkdir()
    try:
        n = stage_package(ext_mod, src, staging, exclude, skip={out, cache})
        log(f"staged {n} files in {staging}")
        stage_portrait_models(staging)

        wheels_rel: list[str] = []
        per_platform: dict[str, list[str]] = {}
        if platforms:
            (staging / "wheels").mkdir()
            for platform in platforms:
                per_platform[platform] = []
                for req in args.requirement or requirements(platform):
                    whl = fetch_wheel(req, platform, cache / platform, ext_mod)
                    rel = f"./wheels/{whl.name}"
                    per_platform[platform].append(rel)
                    if rel not in wheels_rel:
                        shutil.copy2(whl, staging / "wheels" / whl.name)
                        wheels_rel.append(rel)
                    log(f"  {platform}: {whl.name} ({whl.stat().st_size / 2**20:.1f} MiB)")
        write_staged_manifest(staging / MANIFEST, wheels_rel, platforms)

        rename = (str(staging), str(src))
        run_blender_ext(blender_ext, ["validate", *tag_args, str(staging)], "blender_ext validate", rename)
        build_args = ["build", "--source-dir", str(staging), "--output-dir", str(out), *tag_args]
        if platforms:
            build_args.append("--split-platforms")
        run_blender_ext(blender_ext, build_args, "blender_ext build", rename)

        if platforms:
            zips = {p: out / f"{ext_id}-{version}-{p.replace('-', '_')}.zip" for p in platforms}
        else:
            zips = {"": out / f"{ext_id}-{version}.zip"}
        results = []
        for platform, path in zips.items():
            if not path.is_file():
                raise BuildError(f"blender_ext build did not write {path}")
            run_blender_ext(blender_ext, ["validate", *tag_args, str(path)], f"blender_ext validate {path.name}")
            wheels = check_zip(path, per_platform.get(platform, []))
            log(f"built {path.name}: {path.stat().st_size / 2**20:.1f} MiB, "
                f"{len(wheels)} wheels{': ' + ', '.join(os.path.basename(w) for w in wheels) if wheels else ''}")
            results.append(path)
        return results
    finally:
        if args.keep_staging:
            log(f"staging kept: {staging}")
        else:
            shutil.rmtree(staging_parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build", help="output directory for the zips (default: build)")
    parser.add_argument("--platforms", default=None,
                        help=f"comma-separated Blender platforms (default: {','.join(DEFAULT_PLATFORMS)})")
    parser.add_argument("--no-wheels", action="store_true",
                        help="one zip for all platforms without wheels (offline; for tests)")
    parser.add_argument("--requirement", action="append", metavar="NAME==VERSION",
                        help="bundle this instead of the default wheels (repeatable)")
    parser.add_argument("--cache", default=str(ROOT / "wheels"), help="wheel cache (default: <repo>/wheels)")
    parser.add_argument("--source", default=str(ROOT), help="the extension package (default: the repo root)")
    parser.add_argument("--blender-ext", default=None, help="path to blender_ext.py (default: from bpy)")
    parser.add_argument("--keep-staging", action="store_true", help="keep the staging directory")
    args = parser.parse_args(argv)
    try:
        zips = build(args)
    except BuildError as ex:
        print(f"build_extension: error: {ex}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build_extension: interrupted", file=sys.stderr)
        return 130
    for z in zips:
        print(z)
    return 0


if __name__ == "__main__":
    sys.exit(main())
