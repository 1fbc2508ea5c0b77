"""The depth network photo3d ships (models/photo3d_depth.onnx): it is the default, it
loads and runs offline, and it gets the order of things right on a scene with known
geometry rendered here with Cycles: a ball standing on a floor in front of a wall."""
from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest

from photo3d.inference import depth as depth_models
from photo3d.inference.depth import net as depth_net

WEIGHTS = depth_models.NET_WEIGHTS


def test_the_bundled_network_is_small_and_the_default():
    assert os.path.isfile(WEIGHTS), "models/photo3d_depth.onnx is missing"
    assert os.path.getsize(WEIGHTS) <= 8 * 2**20
    assert depth_models.DEFAULT_MODEL == "photo3d-net"
    m = depth_models.MODELS["photo3d-net"]
    assert m.cached() and not m.metric


def test_onnx_runtime_gives_the_depth_cv2_dnn_gave():
    """The network moved from OpenCV's DNN module to ONNX Runtime (and its file's size became
    symbolic): on a real photo, the depth and subject are those cv2.dnn computed before the
    move (tests/data/cat_depth_cv2dnn.npz: every 4th pixel, float16; measured difference
    8e-5 m at most)."""
    from photo3d.inference.photo import load_photo
    ref = np.load(os.path.join(os.path.dirname(__file__), "data", "cat_depth_cv2dnn.npz"))
    photo = load_photo(os.path.join(os.path.dirname(__file__), "data", "cat.jpg"))
    depth, subject, normals = depth_net.run(photo.rgb, WEIGHTS, device="cpu")
    assert depth.shape == tuple(ref["shape"])
    np.testing.assert_allclose(depth[::4, ::4], ref["depth"].astype(np.float32), rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(subject[::4, ::4], ref["subject"].astype(np.float32), atol=2e-3)


def _textured(bpy, name, scale, c1, c2):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*c1, 1)
    ramp.color_ramp.elements[1].color = (*c2, 1)
    nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def render_ball_scene(bpy, path, size=(192, 144)):
    """Render the scene to ``path``; returns (ball centre (x, y) and radius in pixels,
    the wall's top band as a row range)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 10, 0))
    bpy.context.object.data.materials.append(_textured(bpy, "floor", 6, (0.35, 0.25, 0.15), (0.6, 0.45, 0.3)))
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 9, 0), rotation=(math.pi / 2, 0, 0))
    bpy.context.object.data.materials.append(_textured(bpy, "wall", 3, (0.7, 0.7, 0.65), (0.85, 0.85, 0.8)))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(0.3, 3.0, 0.8), segments=48, ring_count=24)
    bpy.ops.object.shade_smooth()
    ball = bpy.context.object
    ball.data.materials.append(_textured(bpy, "ball", 8, (0.1, 0.3, 0.7), (0.2, 0.5, 0.9)))
    bpy.ops.object.light_add(type="SUN", rotation=(0.7, 0.2, 0.4))
    bpy.context.object.data.energy = 3.0
    world = bpy.data.worlds.new("w")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.4, 0.4, 0.45, 1)
    sc.world = world
    bpy.ops.object.camera_add(location=(0, -2.5, 1.4), rotation=(math.radians(82), 0, 0))
    cam = bpy.context.object
    cam.data.angle = math.radians(60)
    sc.camera = cam
    sc.render.engine = "CYCLES"
    sc.cycles.samples = 16
    sc.cycles.device = "CPU"
    sc.render.resolution_x, sc.render.resolution_y = size
    sc.render.resolution_percentage = 100
    sc.render.filepath = path
    sc.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)

    w, h = size
    c = world_to_camera_view(sc, cam, ball.location)
    edge = world_to_camera_view(sc, cam, ball.location + Vector((0.8, 0, 0)))
    centre = (c.x * w, (1 - c.y) * h)
    radius = abs(edge.x - c.x) * w
    return centre, radius


@pytest.mark.blender
@pytest.mark.slow
def test_ball_in_front_of_wall_on_a_receding_floor(blender, tmp_path):
    path = str(tmp_path / "ball.png")
    (cx, cy), r = render_ball_scene(blender, path)
    rgb = cv2.imread(path)[..., ::-1].astype(np.float32) / 255.0
    depth, subject, normals = depth_net.run(rgb, WEIGHTS)
    h, w = depth.shape
    assert depth.shape == rgb.shape[:2] and depth.dtype == np.float32
    assert np.isfinite(depth).all() and depth.min() >= depth_net.NEAR - 1e-4 and depth.max() <= depth_net.FAR + 1e-3
    assert normals is not None and normals.shape == (h, w, 3)
    assert np.allclose(np.linalg.norm(normals, axis=2), 1, atol=0.05)
    assert subject is not None and 0 <= subject.min() and subject.max() <= 1

    yy, xx = np.mgrid[0:h, 0:w]
    ball = (xx - cx) ** 2 + (yy - cy) ** 2 < (0.6 * r) ** 2
    wall = yy < h * 0.15                                   # the wall fills the top of the frame
    floor_near = yy > h * 0.9
    ball_z, wall_z, floor_z = (float(np.median(depth[m])) for m in (ball, wall, floor_near))
    assert ball_z < 0.7 * wall_z, (ball_z, wall_z)        # the ball stands well in front of the wall
    assert floor_z < 0.7 * wall_z, (floor_z, wall_z)      # the floor recedes towards the wall
    ring = ((xx - cx) ** 2 + (yy - cy) ** 2 > (1.4 * r) ** 2) & ((xx - cx) ** 2 + (yy - cy) ** 2 < (2.0 * r) ** 2)
    ring &= yy < cy                                        # wall beside and above the ball
    assert ball_z < float(np.median(depth[ring])), "the ball does not stand out from what is behind it"
    assert subject[ball].mean() > subject[wall].mean() + 0.2


def test_portrait_pipeline_with_the_default_model(small_portrait):
    from photo3d.inference import pipeline
    r = pipeline.run(small_portrait)
    assert r.depth_model == "photo3d-net"
    assert 0.1 < r.mask.mean() < 0.8 and r.mask[52:62, 108:118].all()     # the astronaut, face included
    assert np.median(r.depth[r.mask]) < 0.8 * np.median(r.depth[~r.mask])  # in front of her background
    assert r.foreground_mesh.n_vertices < 256 * 256
