"""The animated camera: keyframes from the camera-path math, rewritten when settings change."""
from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix

from ..inference import camera_path, disocclusion
from .keys import key_channels
from .lookup import find_collection, find_role, options_of

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


def add_track_to(cam_obj: bpy.types.Object, target: bpy.types.Object):
    """Aim the camera at ``target``: -Z at it, +Y towards the target's own Z (the photo's up)."""
    con = cam_obj.constraints.new("TRACK_TO")
    con.name = "3D Photo Look At"
    con.target = target
    con.track_axis = "TRACK_NEGATIVE_Z"
    con.up_axis = "UP_Y"
    con.use_target_z = True
    # The target's Z is the photo's +Y: the same up vector as camera_path.look_at.
    target.rotation_mode = "XYZ"
    target.rotation_euler = (-math.pi / 2, 0.0, 0.0)
    return con


def _look_at_constraint(cam_obj):
    for con in cam_obj.constraints:
        if con.type == "TRACK_TO" and con.target is not None:
            return con
    return None


def _eulers(matrices: np.ndarray) -> np.ndarray:
    eulers = np.zeros((len(matrices), 3))
    prev = None
    for i, m in enumerate(matrices):
        e = Matrix(m.tolist()).to_euler("XYZ", prev) if prev is not None else Matrix(m.tolist()).to_euler("XYZ")
        eulers[i] = e[:]
        prev = e
    return eulers


def animate(cam_obj: bpy.types.Object, path: camera_path.CameraPath, frame_start: int = 1):
    """Replace the camera's animation with ``path`` (one key per frame).

    With a look-at target (``add_track_to``) the camera's location is keyed and the target
    holds the subject (keyed too when it moves with the camera): users edit the path in the
    Graph Editor and move the target in the viewport. Without one, rotation is keyed.
    """
    n = len(path.matrices)
    frames = np.arange(frame_start, frame_start + n, dtype=np.float64)
    locs = path.matrices[:, :3, 3]
    cam_obj.animation_data_clear()
    cam_obj.data.animation_data_clear()
    cam_obj.rotation_mode = "XYZ"
    key_channels(cam_obj, "location", frames, locs)
    con = _look_at_constraint(cam_obj)
    if con is not None:
        target = con.target
        target.animation_data_clear()
        if path.target_is_fixed:
            target.location = path.targets[0]
        else:
            key_channels(target, "location", frames, path.targets)
            target.location = path.targets[0]
        cam_obj.rotation_euler = (0.0, 0.0, 0.0)
    else:
        eulers = _eulers(path.matrices)
        key_channels(cam_obj, "rotation_euler", frames, eulers)
        cam_obj.rotation_euler = eulers[0]
    lens = lens_for_hfov(path.hfov_deg)
    if np.ptp(lens) > 1e-4:
        key_channels(cam_obj.data, "lens", frames, lens[:, None])
    else:
        cam_obj.data.lens = float(lens[0])
    # Leave the camera at the first frame's pose too (what users see before playing).
    cam_obj.location = locs[0]


@dataclass
class PathSettings:
    """The path settings of an unregistered scene (the benchmark); mirrors ``scene.photo3d``."""
    path: str = "auto"
    frames: int = 96
    amplitude: float = 1.0
    easing: str = "ease-in-out"
    loop: str = "once"
    direction: float = 0.0          # radians, as Blender's angle properties
    crop_to_photo: bool = True
    max_reveal: float = 2.0         # percent of the frame (the automatic path)
    hfov: float = 65.0
    photo_aspect: float = 1.0
    subject_depth: float = 1.0
    near_depth: float = 0.5
    far_depth: float = 2.0


@dataclass
class PathPlan:
    path: camera_path.CameraPath
    reveal: float | None                       # estimated largest revealed fraction of the frame
    reveal_frame: int | None                   # where (0-based)
    auto: disocclusion.AutoChoice | None       # what the automatic path chose


def plan_path(settings, render, samples: disocclusion.EdgeSamples | None = None) -> PathPlan:
    """The camera path for photo3d settings (``scene.photo3d`` or ``PathSettings``)."""
    extent = camera_path.SceneExtent(settings.subject_depth, settings.near_depth, settings.far_depth)
    aspect = render.resolution_x / max(1, render.resolution_y)
    params = camera_path.PathParams(preset=settings.path, frames=settings.frames,
                                    amplitude=settings.amplitude, easing=settings.easing,
                                    hfov_deg=settings.hfov, aspect=aspect, photo_aspect=settings.photo_aspect,
                                    crop_to_photo=settings.crop_to_photo, loop=settings.loop,
                                    direction_deg=math.degrees(settings.direction))
    auto = None
    if params.preset == "auto" and samples is not None and len(samples):
        auto = disocclusion.choose_auto(samples, extent, params, settings.max_reveal / 100.0)
        params.direction_deg, params.amplitude = auto.direction_deg, auto.amplitude
    path = camera_path.make_path(params, extent)
    reveal = frame = None
    if samples is not None:
        reveal, frame = disocclusion.estimate(samples, path, aspect)
    return PathPlan(path, reveal, frame, auto)


EDGES_KEY = "photo3d_edges"
# The edges' depth confidence, beside the samples rather than in their list: scenes saved
# before it load as all sure, and older versions of the extension read newer scenes.
EDGE_CONFIDENCE_KEY = "photo3d_edges_confidence"


def store_edge_samples(coll: bpy.types.Collection, samples: disocclusion.EdgeSamples):
    coll[EDGES_KEY] = samples.to_list()
    conf = samples.confidence_list()
    if conf is not None and len(conf):
        coll[EDGE_CONFIDENCE_KEY] = conf
    elif EDGE_CONFIDENCE_KEY in coll:
        del coll[EDGE_CONFIDENCE_KEY]


def edge_samples_of(coll: bpy.types.Collection | None) -> disocclusion.EdgeSamples | None:
    values = coll.get(EDGES_KEY) if coll is not None else None
    if values is None or not len(values):
        return None
    conf = coll.get(EDGE_CONFIDENCE_KEY)
    return disocclusion.EdgeSamples.from_list(list(values), None if conf is None else list(conf))


def reanimate(scene: bpy.types.Scene, opts=None) -> PathPlan | None:
    """Re-key the 3D Photo camera of ``scene`` from ``opts`` (the attributes of
    ``scene.photo3d``; None: the scene's own settings); the plan, or None if there is no
    3D Photo to animate. A registered scene's settings get what the panel reports."""
    cam = find_role(scene, "camera")
    settings = options_of(scene, opts)
    if cam is None or settings.subject_depth <= 0:
        return None
    plan = plan_path(settings, scene.render, edge_samples_of(find_collection(scene)))
    animate(cam, plan.path, scene.frame_start)
    scene.frame_end = scene.frame_start + len(plan.path.matrices) - 1
    report = getattr(scene, "photo3d", None)
    if report is not None:         # no update callbacks on these
        report.reveal = -1.0 if plan.reveal is None else plan.reveal * 100.0
        if plan.auto is not None:
            report.auto_direction = math.radians(plan.auto.direction_deg)
            report.auto_amplitude = plan.auto.amplitude
    return plan


def hfov_of(cam: bpy.types.Camera) -> float:
    return math.degrees(cam.angle_x)
