"""Real renders at tiny sizes: the source view reproduces the photo, and the camera path
gives parallax. Slow on a CPU (Eevee compiles its shaders on the first frame)."""
import math
import os

import cv2
import numpy as np
import pytest

from photo3d.inference import pipeline
from photo3d.scene import build, render
from photo3d.settings import Options

pytestmark = [pytest.mark.blender, pytest.mark.slow]


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def _render(bpy, sc, path):
    sc.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return cv2.imread(path)


def test_source_view_reproduces_the_photo(empty_scene, small_portrait, blender, tmp_path):
    """Rendered from the source pose with the source FOV (Cycles sampling pixel centres,
    as ../shared/eval/render_views.py does), the scene gives back the photo: >= 35 dB."""
    bpy = blender
    sc = empty_scene
    r = pipeline.run(small_portrait, pipeline.Settings(hfov_deg=55))
    build.build_scene(sc, r, Options(engine="cycles", size=r.size, samples=8))
    cam = sc.camera
    cam.animation_data_clear()
    cam.data.animation_data_clear()
    cam.matrix_world = cam.matrix_world.Identity(4)
    cam.data.angle = math.radians(55)
    sc.cycles.filter_width = 0.01
    render.set_png_output(sc, "")
    sc.render.use_file_extension = False
    img = _render(bpy, sc, str(tmp_path / "src.png"))
    photo = cv2.imread(small_portrait)
    b = 4
    assert _psnr(img[b:-b, b:-b], photo[b:-b, b:-b]) >= 35.0


def test_eevee_animation_has_parallax(empty_scene, small_portrait, blender, tmp_path):
    bpy = blender
    sc = empty_scene
    r = pipeline.run(small_portrait, pipeline.Settings(mesh_long_side=96))
    build.build_scene(sc, r, Options(path="swing", frames=8, size=(48, 48), samples=1))
    assert sc.render.engine == render.eevee_id()
    render.set_png_output(sc, "")
    sc.render.use_file_extension = False
    frames = []
    for f in (1, 3):
        sc.frame_set(f)
        frames.append(_render(bpy, sc, str(tmp_path / f"f{f}.png")))
    a, b = (x.astype(np.float64) for x in frames)
    photo = cv2.resize(cv2.imread(small_portrait), (48, 48), interpolation=cv2.INTER_AREA)
    assert abs(a.mean() - photo.mean()) < 25          # it is the photo, not a blank frame
    assert np.abs(a - b).mean() > 1.0                 # the camera moved: parallax
    assert os.path.getsize(tmp_path / "f3.png") > 1000


def _flat_emission(bpy, name, value):
    from photo3d.scene.materials import empty_material
    mat = empty_material(name)
    nt = mat.node_tree
    em = nt.nodes.new("ShaderNodeEmission")
    em.inputs["Color"].default_value = (value, value, value, 1.0)
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(em.outputs[0], out.inputs[0])
    return mat


def test_reveal_estimate_matches_a_render(empty_scene, box_result, blender, tmp_path):
    """The automatic path's estimate of what the camera reveals behind the box agrees with
    what a render shows: the photo layer white, the inpainted background layer black."""
    bpy = blender
    sc = empty_scene
    build.build_scene(sc, box_result, Options(path="auto", frames=24, max_reveal=3.0,
                                                         engine="cycles", size=(160, 120), samples=1))
    s = sc.photo3d
    from photo3d.scene import camera
    plan = camera.plan_path(s, sc.render, camera.edge_samples_of(build.find_collection(sc)))
    assert plan.reveal > 0.005                                    # the path does look behind the box
    for role, value in (("foreground", 1.0), ("background", 0.0)):
        build.find_role(sc, role).data.materials[0] = _flat_emission(bpy, role, value)
    sc.cycles.filter_width = 0.01
    render.set_png_output(sc, "")
    sc.render.use_file_extension = False
    sc.frame_set(sc.frame_start + plan.reveal_frame)
    img = _render(bpy, sc, str(tmp_path / "reveal.png"))
    measured = float((img[..., 1] < 128).mean())
    print(f"reveal measured {measured:.4f} estimated {plan.reveal:.4f}")
    assert abs(measured - plan.reveal) < 0.01, (measured, plan.reveal)
