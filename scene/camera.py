"""The animated camera: keyframes from the camera-path math, rewritten when settings change."""
from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix

from ..inference import camera_path

SENSOR_WIDTH = 36.0


def lens_for_hfov(hfov_deg):
    return SENSOR_WIDTH / 2 / np.tan(np.radians(hfov_deg) / 2)


def setup_camera_data(cam: bpy.types.Camera, hfov_deg: float, extent: camera_path.SceneExtent):
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = SENSOR_WIDTH
    cam.lens = float(lens_for_hfov(hfov_deg))
    cam.clip_start = max(1e-3, 0.02 * extent.near_depth)
    cam.clip_end = max(100.0, 20.0 * extent.far_depth)
    cam.dof.use_dof = False


def _fcurves(id_data):
    """F-curves of an ID's action in 4.2 to 5.0 (5.0 moved them into channel bags)."""
    ad = id_data.animation_data
    act = ad.action
    try:
        from bpy_extras import anim_utils
        bag = anim_utils.action_get_channelbag_for_slot(act, ad.action_slot)
        if bag is not None:
            return bag.fcurves
    except (ImportError, AttributeError):
        pass
    return act.fcurves


def _key_channels(id_data, data_path: str, frames: np.ndarray, values: np.ndarray):
    """Keys every frame of ``values`` (F, C) on ``data_path``, linear, in one array write."""
    values = np.atleast_2d(values.T).T if values.ndim == 1 else values
    n_ch = values.shape[1]
    for c in range(n_ch):
        if n_ch == 1:
            id_data.keyframe_insert(data_path, frame=float(frames[0]))
        else:
            id_data.keyframe_insert(data_path, index=c, frame=float(frames[0]))
    curves = {(fc.data_path, fc.array_index): fc for fc in _fcurves(id_data)}
    for c in range(n_ch):
        fc = curves[(data_path, c)]
        kp = fc.keyframe_points
        kp.clear()
        kp.add(len(frames))
        co = np.stack([frames, values[:, c]], -1).astype(np.float32)
        kp.foreach_set("co", co.ravel())
        kp.foreach_set("interpolation", np.full(len(frames), 1, np.int32))  # LINEAR: the path is sampled per frame
        fc.update()


def animate(cam_obj: bpy.types.Object, path: camera_path.CameraPath, frame_start: int = 1):
    """Replace the camera's animation with ``path`` (one key per frame)."""
    n = len(path.matrices)
    frames = np.arange(frame_start, frame_start + n, dtype=np.float64)
    locs = path.matrices[:, :3, 3]
    eulers = np.zeros((n, 3))
    prev = None
    for i, m in enumerate(path.matrices):
        e = Matrix(m.tolist()).to_euler("XYZ", prev) if prev is not None else Matrix(m.tolist()).to_euler("XYZ")
        eulers[i] = e[:]
        prev = e
    cam_obj.animation_data_clear()
    cam_obj.data.animation_data_clear()
    cam_obj.rotation_mode = "XYZ"
    _key_channels(cam_obj, "location", frames, locs)
    _key_channels(cam_obj, "rotation_euler", frames, eulers)
    lens = lens_for_hfov(path.hfov_deg)
    if np.ptp(lens) > 1e-4:
        _key_channels(cam_obj.data, "lens", frames, lens[:, None])
    else:
        cam_obj.data.lens = float(lens[0])
    # Leave the camera at the first frame's pose too (what users see before playing).
    cam_obj.location = locs[0]
    cam_obj.rotation_euler = eulers[0]


def path_from_settings(settings, render) -> camera_path.CameraPath:
    """Camera path for the scene's photo3d settings (see properties.py)."""
    extent = camera_path.SceneExtent(settings.subject_depth, settings.near_depth, settings.far_depth)
    aspect = render.resolution_x / max(1, render.resolution_y)
    params = camera_path.PathParams(preset=settings.path, frames=settings.frames,
                                    amplitude=settings.amplitude, easing=settings.easing,
                                    hfov_deg=settings.hfov, aspect=aspect, photo_aspect=settings.photo_aspect,
                                    crop_to_photo=settings.crop_to_photo, loop=settings.loop)
    return camera_path.make_path(params, extent)


def reanimate(scene: bpy.types.Scene) -> bool:
    """Re-key the 3D Photo camera of ``scene`` from its settings; False if there is none."""
    from .build import find_role
    cam = find_role(scene, "camera")
    if cam is None or scene.photo3d.subject_depth <= 0:
        return False
    path = path_from_settings(scene.photo3d, scene.render)
    animate(cam, path, scene.frame_start)
    scene.frame_end = scene.frame_start + len(path.matrices) - 1
    return True


def hfov_of(cam: bpy.types.Camera) -> float:
    return math.degrees(cam.angle_x)
