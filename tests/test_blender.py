"""photo3d inside Blender (the real bpy module): registration, the scene contract, re-runs,
the operator headless, the background job stepped like the modal timer does, cancelling."""
import math
import types

import numpy as np
import pytest

from helpers import FakeLayout as _Layout
from photo3d.operators import make_photo
from photo3d.operators.job import CANCELLED, DONE, PipelineJob
from photo3d.scene import build, camera, render
from photo3d.settings import Options

pytestmark = pytest.mark.blender


def _fcurve_keys(id_data):
    from photo3d.scene.keys import fcurves
    return {(fc.data_path, fc.array_index): len(fc.keyframe_points) for fc in fcurves(id_data)}


def _snapshot(bpy):
    """Everything a user could see change: objects with transforms, datablock names."""
    objs = {o.name: tuple(round(v, 6) for v in o.matrix_world.col[3]) for o in bpy.data.objects}
    data = {k: sorted(x.name for x in getattr(bpy.data, k))
            for k in ("meshes", "materials", "images", "cameras", "collections", "worlds")}
    sc = bpy.context.scene
    return objs, data, sc.camera.name if sc.camera else None, sc.frame_end, sc.render.engine


def test_registration_adds_ui(blender):
    bpy = blender
    assert hasattr(bpy.types, "PHOTO3D_OT_make_photo") and hasattr(bpy.types, "PHOTO3D_PT_main")
    assert hasattr(bpy.types.Scene, "photo3d")
    assert make_photo.PHOTO3D_OT_make_photo.bl_options >= {"REGISTER", "UNDO"}


def test_unregister_leaves_nothing_behind(blender):
    import photo3d
    bpy = blender
    handlers = {k: len(getattr(bpy.app.handlers, k)) for k in dir(bpy.app.handlers)
                if isinstance(getattr(bpy.app.handlers, k), list)}
    menu_draws = len(bpy.types.VIEW3D_MT_add._dyn_ui_initialize())
    photo3d.unregister()
    try:
        assert not hasattr(bpy.types, "PHOTO3D_OT_make_photo")
        assert not hasattr(bpy.types, "PHOTO3D_PT_main")
        assert not hasattr(bpy.types.Scene, "photo3d")
        assert len(bpy.types.VIEW3D_MT_add._dyn_ui_initialize()) == menu_draws - 1
    finally:
        photo3d.register()
    assert handlers == {k: len(getattr(bpy.app.handlers, k)) for k in handlers}


def test_scene_contract(empty_scene, box_result, blender):
    sc = empty_scene
    coll = build.build_scene(sc, box_result, Options(frames=24, size=(80, 60)))
    assert coll.name == "3D Photo" and coll.name in sc.collection.children
    roles = {o.get(build.ROLE): o for o in coll.all_objects}
    assert set(roles) == {"root", "foreground", "background", "camera", "target"}
    root, fg, bg, cam = roles["root"], roles["foreground"], roles["background"], roles["camera"]
    assert root.matrix_world == root.matrix_world.Identity(4)
    assert all(o.parent == root for o in coll.all_objects if o != root)
    assert sc.camera == cam
    # meshes are exactly the pipeline's arrays
    for ob, arrays in ((fg, box_result.foreground_mesh), (bg, box_result.background_mesh)):
        me = ob.data
        assert len(me.vertices) == arrays.n_vertices and len(me.polygons) == len(arrays.triangles)
        co = np.empty(3 * len(me.vertices), np.float32)
        me.vertices.foreach_get("co", co)
        assert np.allclose(co.reshape(-1, 3), arrays.positions)
        # emission material projecting the photo
        nodes = {n.type for n in me.materials[0].node_tree.nodes}
        assert {"EMISSION", "TEX_IMAGE", "TEX_COORD"} <= nodes
        img = next(n.image for n in me.materials[0].node_tree.nodes if n.type == "TEX_IMAGE")
        assert img.packed_file is not None and tuple(img.size) == (80, 60)
    # animated camera over the whole frame range, Eevee settings
    assert (sc.frame_start, sc.frame_end) == (1, 24)
    keys = _fcurve_keys(cam)
    assert keys[("location", 0)] == 24 and ("rotation_euler", 2) not in keys   # aimed by its look-at target
    # The look-at constraint gives exactly the path's poses.
    path = camera.plan_path(sc.photo3d, sc.render, camera.edge_samples_of(coll)).path
    for i in (0, 5, 17):
        sc.frame_set(1 + i)
        assert np.allclose(np.array(cam.matrix_world), path.matrices[i], atol=1e-5)
    assert sc.render.engine == render.eevee_id()
    assert sc.view_settings.view_transform == "Standard"
    assert sc.photo3d.hfov == pytest.approx(50)
    assert 40 < np.degrees(cam.data.angle_x) <= 50 + 1e-3       # narrowed just enough to stay inside the photo


def test_rerun_replaces_only_what_photo3d_made(empty_scene, box_result, blender):
    bpy = blender
    sc = empty_scene
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.location = (5, 0, 0)
    user_mat = bpy.data.materials.new("UserMaterial")
    cube.data.materials.append(user_mat)
    build.build_scene(sc, box_result)
    coll = build.find_collection(sc)
    # a user object dropped into our collection survives a re-run
    guest = bpy.data.objects.new("Guest", None)
    coll.objects.link(guest)
    first = _snapshot(bpy)
    build.build_scene(sc, box_result)
    again = _snapshot(bpy)
    assert first[1] == again[1]                        # same datablocks: nothing orphaned, nothing doubled
    assert cube.name in bpy.data.objects and cube.location.x == 5 and cube.data.materials[0] == user_mat
    assert "Guest" in bpy.data.objects and "Guest" in sc.collection.objects
    assert len([c for c in bpy.data.collections if c.name.startswith("3D Photo")]) == 1
    assert build.remove_photo(sc)
    left = {k: v for k, v in _snapshot(bpy)[1].items()}
    assert not any(n.startswith("3D Photo") for names in left.values() for n in names)
    assert "UserMaterial" in left["materials"] and cube.name in bpy.data.objects


def test_changing_path_settings_reanimates(empty_scene, box_result, blender):
    sc = empty_scene
    build.build_scene(sc, box_result, Options(path="swing", frames=40))
    cam = sc.camera

    def pose_at(frame):
        sc.frame_set(frame)
        return np.array(cam.matrix_world)

    a = pose_at(11)
    sc.photo3d.amplitude = 2.0
    b = pose_at(11)
    assert not np.allclose(a, b)
    assert np.linalg.norm(b[:3, 3]) == pytest.approx(2 * np.linalg.norm(a[:3, 3]), rel=1e-3)
    sc.photo3d.frames = 30
    assert sc.frame_end == 30 and _fcurve_keys(cam)[("location", 0)] == 30
    sc.photo3d.path = "dolly-zoom"
    assert cam.data.animation_data is not None            # the lens is keyed now
    lens_start = (sc.frame_set(1), cam.data.lens)[1]
    lens_end = (sc.frame_set(30), cam.data.lens)[1]
    assert lens_end > lens_start                          # zooming in while dollying back


def test_operator_headless_end_to_end(empty_scene, small_portrait, blender):
    bpy = blender
    assert bpy.ops.photo3d.make_photo(filepath=small_portrait) == {"FINISHED"}
    sc = bpy.context.scene
    assert build.find_collection(sc) is not None and sc.camera is not None
    assert sc.photo3d.source_photo == small_portrait
    # What the user set in the panel before making it is honoured: a path, an effect,
    # no portrait refinement.
    sc.photo3d.path = "auto"
    sc.photo3d.rain = True
    sc.photo3d.portrait = False
    assert bpy.ops.photo3d.make_photo(filepath=small_portrait) == {"FINISHED"}
    coll = build.find_collection(sc)
    assert [o.get("photo3d_effect") for o in coll.all_objects if o.get("photo3d_effect")] == ["rain"]
    assert sc.photo3d.path == "auto" and sc.photo3d.reveal >= 0
    fg = build.find_role(sc, "foreground")
    assert not any(n.type == "MIX_SHADER" for n in fg.data.materials[0].node_tree.nodes)   # no alpha matte


def test_operator_bad_file_leaves_scene_alone(empty_scene, tmp_path, blender):
    bpy = blender
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    before = _snapshot(bpy)
    with pytest.raises(RuntimeError, match="not an image|corrupt|truncated"):
        bpy.ops.photo3d.make_photo(filepath=str(bad))
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.photo3d.make_photo(filepath=str(tmp_path / "missing.png"))
    assert _snapshot(bpy) == before


def _fake_operator(job):
    reports = []
    return types.SimpleNamespace(_job=job, _timer=None, report=lambda kind, msg: reports.append((kind, msg))), reports


def test_background_job_stepped_by_the_modal_timer(empty_scene, small_portrait, blender):
    """What Blender's modal TIMER events do, done by hand: the job runs in a thread, the
    main thread steps it, and the scene is built only at the end."""
    bpy = blender
    job = PipelineJob(small_portrait).start()
    op, reports = _fake_operator(job)
    timer = types.SimpleNamespace(type="TIMER", value="NOTHING")
    states = []
    for _ in range(3000):
        ret = make_photo.PHOTO3D_OT_make_photo.modal(op, bpy.context, timer)
        states.append(ret)
        if ret != {"RUNNING_MODAL"}:
            break
        assert build.find_collection(bpy.context.scene) is None      # nothing built while running
        job._thread.join(0.01)
    assert states[-1] == {"FINISHED"} and job.state == DONE
    assert build.find_collection(bpy.context.scene) is not None
    assert bpy.context.window_manager.photo3d_job.running is False
    assert any(kind == {"INFO"} for kind, _ in reports)


def test_cancel_leaves_the_scene_exactly_as_it_was(empty_scene, small_portrait, box_result, blender):
    bpy = blender
    build.build_scene(bpy.context.scene, box_result)      # an earlier 3D photo must survive too
    before = _snapshot(bpy)
    job = PipelineJob(small_portrait).start()
    op, reports = _fake_operator(job)
    bpy.context.window_manager.photo3d_job.cancel_requested = True    # the panel's Cancel button
    ret = make_photo._tick(op, bpy.context)
    assert ret == {"CANCELLED"} and job.cancel_requested
    job.wait(60)
    assert job.state in (CANCELLED, DONE)
    for _ in range(3):                                                # late messages change nothing
        make_photo._tick(op, bpy.context) if job.state != DONE else None
    assert _snapshot(bpy) == before
    assert reports and reports[-1][0] == {"WARNING"}
    assert bpy.context.window_manager.photo3d_job.cancel_requested is False

    # Esc in the modal handler does the same.
    job = PipelineJob(small_portrait).start()
    op, reports = _fake_operator(job)
    esc = types.SimpleNamespace(type="ESC", value="PRESS")
    assert make_photo.PHOTO3D_OT_make_photo.modal(op, bpy.context, esc) == {"CANCELLED"}
    job.wait(60)
    assert _snapshot(bpy) == before


def test_failed_job_reports_and_changes_nothing(empty_scene, tmp_path, blender):
    bpy = blender
    p = tmp_path / "tiny.png"
    import cv2
    cv2.imwrite(str(p), np.zeros((4, 4, 3), np.uint8))
    before = _snapshot(bpy)
    job = PipelineJob(str(p)).start()
    job.wait(60)
    op, reports = _fake_operator(job)
    assert make_photo._tick(op, bpy.context) == {"CANCELLED"}
    assert reports[-1][0] == {"ERROR"} and "too small" in reports[-1][1]
    assert _snapshot(bpy) == before


def test_panels_draw(empty_scene, box_result, blender):
    from photo3d.ui import panel
    bpy = blender
    ctx = bpy.context
    main = types.SimpleNamespace(layout=_Layout(bpy))
    panel.PHOTO3D_PT_main.draw(main, ctx)
    assert {"photo3d.make_photo", "depth_model", "portrait", "segmenter"} <= set(main.layout.drawn)
    assert not panel.PHOTO3D_PT_camera.poll(ctx)
    build.build_scene(ctx.scene, box_result, Options(path="circle"))
    assert panel.PHOTO3D_PT_camera.poll(ctx)
    cam = types.SimpleNamespace(layout=_Layout(bpy))
    panel.PHOTO3D_PT_camera.draw(cam, ctx)
    assert {"path", "amplitude", "direction", "frames", "easing", "photo3d.reset_path",
            "photo3d.look_around"} <= set(cam.layout.drawn)
    assert any("Reveals up to" in t for t in cam.layout.labels)
    fx = types.SimpleNamespace(layout=_Layout(bpy))
    assert panel.PHOTO3D_PT_effects.poll(ctx)
    ctx.scene.photo3d.fog = True
    ctx.scene.photo3d.particles = "dust"
    panel.PHOTO3D_PT_effects.draw(fx, ctx)
    assert {"fog", "fog_density", "fog_color", "rain", "dof", "particles", "particle_density",
            "motion_blur"} <= set(fx.layout.drawn)
    ctx.scene.photo3d.path = "auto"
    auto = types.SimpleNamespace(layout=_Layout(bpy))
    panel.PHOTO3D_PT_camera.draw(auto, ctx)
    assert "max_reveal" in auto.layout.drawn and any("Chose" in t for t in auto.layout.labels)
    # while a job runs: the progress bar and Cancel instead
    ctx.window_manager.photo3d_job.running = True
    try:
        busy = types.SimpleNamespace(layout=_Layout(bpy))
        panel.PHOTO3D_PT_main.draw(busy, ctx)
        assert busy.layout.drawn == ["progress", "photo3d.cancel"]
    finally:
        ctx.window_manager.photo3d_job.running = False
    menu = types.SimpleNamespace(layout=_Layout(bpy))
    panel.add_menu_entry(menu, ctx)
    assert menu.layout.drawn == ["photo3d.make_photo"]


def test_reset_and_remove_operators(empty_scene, box_result, blender):
    bpy = blender
    sc = bpy.context.scene
    build.build_scene(sc, box_result, Options(path="circle", frames=20))
    cam = sc.camera
    sc.frame_set(5)
    before = np.array(cam.matrix_world)
    from photo3d.scene.keys import fcurves
    loc_x = next(fc for fc in fcurves(cam) if fc.data_path == "location" and fc.array_index == 0)
    loc_x.keyframe_points[4].co.y += 1.0                     # a hand edit in the Graph Editor
    loc_x.update()
    sc.frame_set(5)
    assert not np.allclose(np.array(cam.matrix_world), before)
    assert bpy.ops.photo3d.reset_path() == {"FINISHED"}
    sc.frame_set(5)
    assert np.allclose(np.array(cam.matrix_world), before, atol=1e-5)
    assert bpy.ops.photo3d.remove_photo() == {"FINISHED"}
    assert build.find_collection(sc) is None and sc.camera is None
    assert not bpy.ops.photo3d.remove_photo.poll()


def _aims_at(matrix, target) -> bool:
    """The camera with world matrix ``matrix`` looks straight at the object ``target``."""
    to_target = np.array(target.matrix_world.translation) - matrix[:3, 3]
    return np.allclose(np.cross(-matrix[:3, 2], to_target / np.linalg.norm(to_target)), 0, atol=1e-5)


def test_moving_the_target_re_aims_the_camera(empty_scene, box_result, blender):
    sc = empty_scene
    build.build_scene(sc, box_result, Options(path="circle", frames=20))
    cam, target = sc.camera, build.find_role(sc, "target")
    sc.frame_set(6)
    before = np.array(cam.matrix_world)
    target.location.x += 0.5
    sc.frame_set(6)
    after = np.array(cam.matrix_world)
    assert np.allclose(before[:3, 3], after[:3, 3])                 # same place on the path...
    assert not np.allclose(before[:3, :3], after[:3, :3])           # ...now aimed at the moved target
    assert _aims_at(after, target)
    assert blender.ops.photo3d.reset_path() == {"FINISHED"}
    sc.frame_set(6)
    assert np.allclose(np.array(cam.matrix_world), before, atol=1e-6)   # Reset restores the target


def test_automatic_path_reports_its_choice(empty_scene, box_result, blender):
    sc = empty_scene
    build.build_scene(sc, box_result, Options(path="auto", frames=24, max_reveal=1.0))
    s = sc.photo3d
    assert s.path == "auto" and 0 <= s.reveal <= 1.0 + 1e-6
    amp_loose = s.auto_amplitude
    s.max_reveal = 0.3                      # a tighter threshold: a smaller move, re-keyed at once
    assert s.reveal <= 0.3 + 1e-6 and s.auto_amplitude < amp_loose
    # The box's long edges are vertical: the loop's long axis runs up-down, not sideways.
    assert abs(abs(math.degrees(s.auto_direction)) - 90) <= 30


def test_look_around_tilts_keys_and_restores(empty_scene, box_result, blender):
    from photo3d.operators.look_around import LookAround
    sc = empty_scene
    build.build_scene(sc, box_result, Options(path="swing", frames=20))
    cam, target = sc.camera, build.find_role(sc, "target")
    sc.frame_set(1)
    start = np.array(cam.matrix_world)
    look = LookAround(sc)
    look.move(1.0, 0.0)
    blender.context.view_layer.update()
    tilted = np.array(cam.matrix_world)
    assert tilted[0, 3] > start[0, 3] + 1e-3                         # moved right...
    assert _aims_at(tilted, target)                                   # ...still aimed at the target
    sc.frame_set(5)
    look.move(0.0, 1.0)
    look.key()
    sc.frame_set(1)
    sc.frame_set(5)
    assert cam.location.y > 1e-3 and abs(cam.location.x) < 1e-6       # the keyed pose is part of the path
    look2 = LookAround(sc)
    look2.move(-1.0, -1.0)
    look2.restore()
    assert cam.location.y > 1e-3                                    # restore gives back the animated pose
    assert blender.ops.photo3d.look_around.poll() is False            # needs a 3D viewport (none headless)


@pytest.mark.parametrize("preset", camera.camera_path.PRESETS)
def test_every_preset_animates_the_camera(empty_scene, box_result, blender, preset):
    sc = empty_scene
    build.build_scene(sc, box_result, Options(path=preset, frames=16, loop="loop"))
    cam = sc.camera
    poses = []
    for f in range(sc.frame_start, sc.frame_end + 1):
        sc.frame_set(f)
        poses.append(np.concatenate([np.array(cam.matrix_world).ravel(), [cam.data.angle_x]]))
    poses = np.array(poses)
    assert (sc.frame_start, sc.frame_end) == (1, 16)
    assert np.ptp(poses, axis=0).max() > 1e-3                        # it moves (or zooms)
    assert 0 <= sc.photo3d.reveal < 20


def test_a_user_object_round_the_camera_is_named_not_touched(empty_scene, box_files, box_result, capfd):
    """Blender's default cube sits round the world origin, where the photo's camera is: from
    inside, its faces hide the photo. photo3d says so and leaves the cube alone."""
    import bpy
    sc = empty_scene
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    cube = bpy.context.active_object
    build.build_scene(sc, box_result, Options(frames=8))
    assert build.objects_around_camera(sc) == [cube.name]
    from photo3d.ui.panel import PHOTO3D_PT_main
    main = types.SimpleNamespace(layout=_Layout(bpy))
    PHOTO3D_PT_main.draw(main, bpy.context)
    assert any("surrounds the camera" in t for t in main.layout.labels)
    assert bpy.ops.photo3d.make_photo(filepath=box_files[0]) == {"FINISHED"}
    out = capfd.readouterr()
    assert f"'{cube.name}' surrounds the camera" in out.out + out.err
    assert cube.name in bpy.data.objects and tuple(cube.location) == (0.0, 0.0, 0.0)      # untouched
    cube.location.x = 5.0
    bpy.context.view_layer.update()
    assert build.objects_around_camera(sc) == []
    main = types.SimpleNamespace(layout=_Layout(bpy))
    PHOTO3D_PT_main.draw(main, bpy.context)                # the panel remembers until the scene changes
    assert not any("surrounds the camera" in t for t in main.layout.labels)
    cube.hide_render = True
    cube.location.x = 0.0
    bpy.context.view_layer.update()
    assert build.objects_around_camera(sc) == []
