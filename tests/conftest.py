"""Shared fixtures: real photos, small test images, and one registered photo3d per session."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from helpers import box_scene

DATA = os.path.join(os.path.dirname(__file__), "data")
PORTRAIT = os.path.join(DATA, "portrait.jpg")


@pytest.fixture(scope="session")
def portrait_path() -> str:
    return PORTRAIT


@pytest.fixture(scope="session")
def small_portrait(tmp_path_factory) -> str:
    """The portrait at 256x256: the whole pipeline in about a second."""
    img = cv2.imread(PORTRAIT)
    path = str(tmp_path_factory.mktemp("photos") / "portrait_small.png")
    cv2.imwrite(path, cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA))
    return path


@pytest.fixture(scope="session")
def box_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("box")
    depth, rgb = box_scene()
    cv2.imwrite(str(d / "box.png"), rgb)
    np.save(str(d / "box.npy"), depth)
    return str(d / "box.png"), str(d / "box.npy")


@pytest.fixture(scope="session")
def box_result(box_files):
    """The pipeline's arrays for the box scene, with its true depth (no bpy needed)."""
    from photo3d.inference import pipeline
    photo, depth = box_files
    return pipeline.run(photo, pipeline.Settings(depth_file=depth, hfov_deg=50))


@pytest.fixture(scope="session")
def tool():
    """tools/build_extension.py as a module (it is a script, not part of the package)."""
    import importlib.util
    path = os.path.join(os.path.dirname(DATA), os.pardir, "tools", "build_extension.py")
    spec = importlib.util.spec_from_file_location("_photo3d_build_extension", os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def blender_ext(tool):
    """Blender's extension tool (validate, build) from the bpy wheel; skipped without it."""
    try:
        return tool.find_blender_ext()
    except tool.BuildError as ex:
        pytest.skip(str(ex))


@pytest.fixture(scope="session")
def blender():
    """bpy with photo3d registered once for the whole session (bpy 4.5 hangs at exit
    while an operator class is still registered, so unregistering here is required)."""
    bpy = pytest.importorskip("bpy")
    import photo3d
    photo3d.register()
    yield bpy
    photo3d.unregister()


@pytest.fixture
def empty_scene(blender):
    blender.ops.wm.read_factory_settings(use_empty=True)
    return blender.context.scene


def pytest_sessionfinish(session, exitstatus):
    session.config.photo3d_exitstatus = int(exitstatus)


def pytest_unconfigure(config):
    """The bpy 4.2 module crashes at interpreter exit once its glTF exporter has run (the CLI
    leaves the same way, see __main__.py): report the tests' own status instead."""
    import sys
    bpy = sys.modules.get("bpy")
    glb = sys.modules.get("photo3d.scene.glb")
    if bpy is not None and bpy.app.version < (4, 3, 0) and getattr(glb, "exporter_ran", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(getattr(config, "photo3d_exitstatus", 0))
