"""Fog, rain, particles and depth of field: objects inside the 3D Photo, placed at the
scene's depths, periodic over the clip, and visible in renders (tiny, Cycles)."""
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from photo3d.scene import build, camera, effects, render
from photo3d.settings import Options

pytestmark = pytest.mark.blender


def _instances(bpy, sc, ob):
    """World positions of the instances a geometry-nodes effect makes (evaluated for real)."""
    dg = bpy.context.evaluated_depsgraph_get()
    return np.array([tuple(i.matrix_world.translation) for i in dg.object_instances
                     if i.is_instance and i.parent is not None and i.parent.original == ob])


def _effect(sc, kind):
    coll = build.find_collection(sc)
    return next((o for o in coll.all_objects if o.get(effects.EFFECT_KEY) == kind), None)


def test_effects_are_objects_of_the_3d_photo_and_go_away_cleanly(empty_scene, box_result, blender):
    bpy = blender
    sc = empty_scene
    before = {k: set(getattr(bpy.data, k).keys()) for k in ("objects", "meshes", "materials", "node_groups")}
    build.build_scene(sc, box_result, Options(frames=12, effects=("fog", "rain", "snow", "dof")))
    s = sc.photo3d
    assert s.fog and s.rain and s.particles == "snow" and s.dof
    for kind in ("fog", "rain", "snow"):
        ob = _effect(sc, kind)
        assert ob is not None and ob.parent == build.find_role(sc, "root") and ob.get(build.ROLE) == "effect"
    assert sc.camera.data.dof.use_dof and sc.camera.data.dof.focus_object == build.find_role(sc, "target")
    # the fog's default colour is the photo's far region (the wall: sRGB 200, 90, 40), in linear
    assert tuple(s.fog_color) == pytest.approx((0.578, 0.102, 0.021), abs=0.01)
    s.rain = False
    assert _effect(sc, "rain") is None and _effect(sc, "fog") is not None
    s.fog = False
    s.dof = False
    assert not sc.camera.data.dof.use_dof
    s.fog = True                                  # removing the photo takes effects that are on along
    build.remove_photo(sc)
    after = {k: set(getattr(bpy.data, k).keys()) for k in before}
    assert after == before                                              # nothing left behind


def test_builders_take_a_plain_options_object_instead_of_the_scene_settings(empty_scene, box_result, blender):
    sc = empty_scene
    build.build_scene(sc, box_result, Options(frames=12))
    s = sc.photo3d
    opts = SimpleNamespace(**{k: getattr(s, k) for k in s.bl_rna.properties.keys() if k != "rna_type"})
    opts.fog, opts.rain, opts.frames, opts.path = True, True, 20, "zoom-in"
    assert camera.reanimate(sc, opts) is not None
    assert effects.apply_effects(sc, opts) == ["fog", "rain"]
    assert _effect(sc, "fog") is not None and _effect(sc, "rain") is not None
    assert sc.frame_end == sc.frame_start + 19 and effects.frame_of(sc, opts).frames == 20
    assert not s.fog and not s.rain and s.frames == 12 and s.path != "zoom-in"     # the scene's own: untouched
    assert effects.apply_effects(sc) == [] and _effect(sc, "fog") is None       # and still what None reads
    # settings.Options carries the settings only: the state the build stored comes from the scene.
    assert camera.reanimate(sc, Options(path="swing", frames=10)) is not None and sc.frame_end == sc.frame_start + 9
    assert effects.apply_effects(sc, Options(frames=10, effects=("fog",))) == ["fog"]


@pytest.mark.parametrize("kind", ["rain", "dust", "snow", "fireflies", "bokeh"])
def test_points_fill_the_scene_in_front_of_and_behind_the_subject_and_loop(empty_scene, box_result, blender, kind):
    bpy = blender
    sc = empty_scene
    build.build_scene(sc, box_result, Options(frames=16, effects=(kind,)))
    ob = _effect(sc, kind)
    sc.frame_set(sc.frame_start)
    a = _instances(bpy, sc, ob)
    assert len(a) == effects.PRESETS[kind].count
    depth = -a[:, 2]
    subject = sc.photo3d.subject_depth
    if kind == "bokeh":                                                  # between camera and subject
        assert (depth < sc.photo3d.near_depth).all()
    else:
        assert (depth < subject).mean() > 0.2 and (depth > subject).mean() > 0.2   # in front and behind
    # inside the view: most points project into the photo's frame
    fr = effects.frame_of(sc)
    u, v = a[:, 0] / depth / fr.tan_x, a[:, 1] / depth / fr.tan_y
    assert ((np.abs(u) < 1) & (np.abs(v) < 1)).mean() > 0.6
    # moving, and the clip loops: frame_start + length is frame_start again
    sc.frame_set(sc.frame_start + 3)
    b = _instances(bpy, sc, ob)
    assert np.abs(a - b).max() > 1e-3
    sc.frame_set(sc.frame_start + fr.frames)
    c = _instances(bpy, sc, ob)
    assert np.allclose(a, c, atol=1e-4)
    # density scales the count
    if kind == "rain":
        sc.photo3d.rain_density = 0.5
    else:
        sc.photo3d.particle_density = 0.5
    sc.frame_set(sc.frame_start)
    assert len(_instances(bpy, sc, _effect(sc, kind))) == effects.PRESETS[kind].count // 2


def _render(bpy, sc, path):
    render.set_png_output(sc, "")
    sc.render.use_file_extension = False
    sc.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return cv2.imread(str(path)).astype(np.float64)


@pytest.mark.slow
def test_renders_fog_far_more_than_near_rain_bright_and_off_is_exact(empty_scene, box_result, blender, tmp_path):
    bpy = blender
    sc = empty_scene
    build.build_scene(sc, box_result, Options(frames=8, engine="cycles", size=(80, 60), samples=4))
    sc.cycles.filter_width = 0.01
    plain = _render(bpy, sc, tmp_path / "plain.png")
    near = cv2.resize(box_result.mask.astype(np.uint8), (80, 60), interpolation=cv2.INTER_NEAREST) > 0
    near = cv2.erode(near.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    far = cv2.erode((~near).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    s = sc.photo3d
    s.fog_color = (1.0, 1.0, 1.0)
    s.fog_density = 3.0
    s.fog = True
    fog = _render(bpy, sc, tmp_path / "fog.png")
    lift = fog.mean(2) - plain.mean(2)
    assert lift[far].mean() > 20 and lift[far].mean() > 2 * max(lift[near].mean(), 1.0)
    s.fog = False
    s.rain = True
    rain = _render(bpy, sc, tmp_path / "rain.png")
    streaks = (rain.mean(2) - plain.mean(2)) > 25
    assert streaks[near].mean() > 0.005 and streaks[far].mean() > 0.005   # over the box and over the wall
    _effect(sc, "rain").hide_render = True                                  # hidden: the plain frame, exactly
    assert np.array_equal(_render(bpy, sc, tmp_path / "hidden.png"), plain)
    s.rain = False
    assert np.array_equal(_render(bpy, sc, tmp_path / "off.png"), plain)


def _sun_result(tmp_path, clump=True):
    """A sun on a bright sky (far, at 6) over a near strip (3), with a dark clump beside
    the sun; the pipeline's arrays, with that depth."""
    from photo3d.inference import pipeline
    h, w = 60, 80
    depth = np.full((h, w), 6.0, np.float32)
    depth[48:, :] = 3.0                                               # a near strip at the bottom
    rgb = np.full((h, w, 3), 205, np.uint8)                           # bright sky
    cv2.circle(rgb, tuple(int(c) for c in SUN), 7, (255, 255, 255), -1)
    if clump:
        cv2.circle(rgb, tuple(int(c) for c in CLUMP), 5, (40, 40, 40), -1)
    rgb[48:] = 90
    cv2.imwrite(str(tmp_path / "sun.png"), rgb)
    np.save(str(tmp_path / "sun.npy"), depth)
    return pipeline.run(str(tmp_path / "sun.png"), pipeline.Settings(depth_file=str(tmp_path / "sun.npy"), hfov_deg=60))


SUN, CLUMP = np.array([52.0, 14.0]), np.array([40.0, 26.0])       # pixels (x, y) in the 80x60 photo


def _compositor_tree(bpy, sc):
    return sc.compositing_node_group if bpy.app.version >= (5, 0, 0) else sc.node_tree


def _compositor_state(bpy, sc):
    """Everything about the scene's compositor that the shafts could disturb."""
    tree = _compositor_tree(bpy, sc)
    state = {"use_compositing": sc.render.use_compositing}
    if bpy.app.version < (5, 0, 0):
        state["use_nodes"] = sc.use_nodes
    if tree is None:
        return state
    state["tree"] = tree.name
    state["nodes"] = sorted((n.name, n.bl_idname, tuple(n.location), n.mute,
                             tuple(round(float(v), 6) if isinstance(v, float) else v
                                   for v in (getattr(s, "default_value", None) for s in n.inputs)
                                   if isinstance(v, (float, int, str)))) for n in tree.nodes)
    state["links"] = sorted((ln.from_node.name, ln.from_socket.identifier, ln.to_node.name, ln.to_socket.identifier)
                            for ln in tree.links)
    state["active"] = tree.nodes.active.name if tree.nodes.active is not None else None
    return state


def _without_tree(bpy, state):
    """A scene that had no compositor tree gets none back in 5.0; in 4.x ``scene.node_tree``
    cannot be deleted, so it keeps the default tree Blender makes for Use Nodes, switched
    off again."""
    return {k: v for k, v in state.items() if k in ("use_compositing", "use_nodes")}


def test_a_light_in_the_photo_puts_shafts_in_the_compositor_that_follow_the_camera(empty_scene, blender, tmp_path):
    """A bright source on the far wall is found, and the shafts' source is its projection
    into the animated camera on every frame; without one, or with shafts off, the scene
    has no compositor again."""
    from bpy_extras.object_utils import world_to_camera_view

    from photo3d.scene import shafts
    bpy = blender
    r = _sun_result(tmp_path)
    x, y, z = r.light_source                                            # found by the pipeline
    assert z == pytest.approx(-6.0) and x > 0 and y > 0                   # upper right, on the wall
    sc = empty_scene
    groups_before = set(bpy.data.node_groups.keys())
    plain = _compositor_state(bpy, sc)
    build.build_scene(sc, r, Options(frames=8, path="swing", size=(80, 60), effects=("fog",)))
    assert shafts.has_shafts(sc) and sc.render.use_compositing
    tree = _compositor_tree(bpy, sc)
    node = tree.nodes[shafts.GROUP]
    beams = node.node_tree.nodes["Sun Beams"]
    source = beams.inputs.get("Sun Position") or beams.inputs.get("Source")
    light = effects.light_in_world(sc)
    seen = []
    for f in (sc.frame_start, sc.frame_start + 2, sc.frame_start + 5):
        sc.frame_set(f)
        want = world_to_camera_view(sc, sc.camera, light)
        got = tuple(source.default_value) if source is not None else tuple(beams.source)
        assert got == pytest.approx(tuple(want[:2]), abs=1e-4)
        seen.append(got)
    assert np.ptp(np.array(seen)[:, 0]) > 0.01                           # the swing moves the light across
    sc.photo3d.fog_shafts = False
    assert not shafts.has_shafts(sc) and _effect(sc, "fog") is not None
    after = _compositor_state(bpy, sc)                                    # no compositor again
    assert after == plain if bpy.app.version >= (5, 0, 0) else _without_tree(bpy, after) == plain
    sc.photo3d.fog_shafts = True
    assert shafts.has_shafts(sc)
    gain = _compositor_tree(bpy, sc).nodes[shafts.GROUP].node_tree.nodes["Strength"].inputs[1]
    sc.frame_set(sc.frame_start + 1)
    assert gain.default_value == pytest.approx(shafts.STRENGTH)
    sc.photo3d.light_source = (0.0, 0.0, 2.0)                             # behind the camera: no beams
    effects.apply_effects(sc)
    gain = _compositor_tree(bpy, sc).nodes[shafts.GROUP].node_tree.nodes["Strength"].inputs[1]
    sc.frame_set(sc.frame_start + 1)
    assert gain.default_value == 0.0
    build.remove_photo(sc)
    after = _compositor_state(bpy, sc)
    assert after == plain if bpy.app.version >= (5, 0, 0) else _without_tree(bpy, after) == plain
    assert set(bpy.data.node_groups.keys()) == groups_before


def test_a_users_compositor_setup_survives_shafts_on_and_off(empty_scene, blender, tmp_path):
    """With the user's own compositor nodes, the shafts go in as one group just before the
    output, and taking them out gives back the same nodes, links and settings."""
    from photo3d.scene import shafts
    bpy = blender
    r = _sun_result(tmp_path)
    sc = empty_scene
    build.build_scene(sc, r, Options(frames=8, path="swing", size=(80, 60)))
    if bpy.app.version >= (5, 0, 0):
        tree = bpy.data.node_groups.new("My Compositing", "CompositorNodeTree")
        tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        sc.compositing_node_group = tree
        rl, out = tree.nodes.new("CompositorNodeRLayers"), tree.nodes.new("NodeGroupOutput")
    else:
        sc.use_nodes = True
        tree = sc.node_tree
        rl = next(n for n in tree.nodes if n.type == "R_LAYERS")
        out = next(n for n in tree.nodes if n.type == "COMPOSITE")
    grade = tree.nodes.new("CompositorNodeBrightContrast")
    grade.name = "My Grade"
    grade.location = (100.0, 50.0)
    grade.inputs["Bright"].default_value = 7.0
    tree.links.new(rl.outputs["Image"], grade.inputs["Image"])
    tree.links.new(grade.outputs[0], out.inputs[0])
    viewer = tree.nodes.new("CompositorNodeViewer")
    tree.links.new(rl.outputs["Image"], viewer.inputs[0])
    tree.nodes.active = grade
    sc.render.use_compositing = False                                    # theirs: given back too
    before = _compositor_state(bpy, sc)
    groups_before = set(bpy.data.node_groups.keys())
    sc.photo3d.fog = True
    assert shafts.has_shafts(sc) and sc.render.use_compositing
    node = tree.nodes[shafts.GROUP]
    assert node.inputs[0].links[0].from_node == grade                    # between their grade and the output
    assert [ln.to_node for ln in node.outputs[0].links] == [out]
    assert tree.nodes["My Grade"].inputs["Bright"].default_value == 7.0
    sc.photo3d.fog_shafts = False
    assert _compositor_state(bpy, sc) == before
    sc.photo3d.fog_shafts = True
    sc.photo3d.fog_shafts_strength = 2.0                                 # rebuilt: still one group
    assert sum(n.type == "GROUP" for n in tree.nodes) == 1
    build.remove_photo(sc)
    assert _compositor_state(bpy, sc) == before
    assert set(bpy.data.node_groups.keys()) == groups_before


@pytest.mark.slow
def test_light_shafts_render_dark_rays_behind_an_occluder_and_off_is_exact(empty_scene, blender, tmp_path):
    """A sun on a bright sky with a dark clump beside it (Eevee, tiny): along rays from the
    sun, the shafts lift the sky less in the clump's wedge than 40 degrees to either side,
    and switching shafts and fog off gives back the plain frame."""
    from photo3d.scene import shafts
    bpy = blender
    h, w = 60, 80
    r = _sun_result(tmp_path)
    sc = empty_scene
    build.build_scene(sc, r, Options(frames=8, path="zoom-in", amplitude=0.0, size=(w, h), samples=2))
    assert sc.photo3d.has_light_source
    plain = _render(bpy, sc, tmp_path / "plain.png")
    s = sc.photo3d
    s.fog_density = 0.0                                               # the shafts alone
    s.fog = True
    assert shafts.has_shafts(sc)
    lit = _render(bpy, sc, tmp_path / "shafts.png")
    lift = lit.mean(2) - plain.mean(2)
    # Sample along rays from the sun: through the clump (the wedge) and 40 degrees either side.
    yy, xx = np.mgrid[0:h, 0:w]
    ang = np.degrees(np.arctan2(yy - SUN[1], xx - SUN[0]))
    rad = np.hypot(yy - SUN[1], xx - SUN[0])
    ray = np.degrees(np.arctan2(*(CLUMP - SUN)[::-1]))
    band = (rad > 24) & (rad < 34) & (yy < 46)                        # beyond the clump, above the strip
    wedge = band & (np.abs(ang - ray) < 8)
    beside = band & (np.abs(np.abs(ang - ray) - 40) < 8)
    assert wedge.sum() > 10 and beside.sum() > 10
    assert lift[beside].mean() > 5                                    # the rays lift the sky...
    assert lift[wedge].mean() < 0.7 * lift[beside].mean()             # ...except in the clump's shadow
    s.fog_shafts = False
    assert not shafts.has_shafts(sc)
    s.fog = False
    assert np.array_equal(_render(bpy, sc, tmp_path / "off.png"), plain)


def _ground_result(tmp_path, h=60, w=80, hfov=60.0):
    """A photo of a flat ground one unit below the camera under a far sky."""
    from photo3d.inference import pipeline
    f = 0.5 * w / math.tan(math.radians(hfov) / 2)
    below = (np.arange(h) + 0.5 - h / 2) / f                           # -y / z of each row's ray
    depth = np.where(below > 0, 1.0 / np.maximum(below, 1e-6), 20.0).clip(None, 20.0)
    depth = np.repeat(depth[:, None], w, 1).astype(np.float32)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = (150, 110, 90)                                            # sky
    rgb[depth < 20] = (40, 70, 60)                                     # ground
    cv2.imwrite(str(tmp_path / "ground.png"), rgb)
    np.save(str(tmp_path / "ground.npy"), depth)
    return pipeline.run(str(tmp_path / "ground.png"),
                        pipeline.Settings(depth_file=str(tmp_path / "ground.npy"), hfov_deg=hfov)), depth


def test_splashes_sit_on_the_ground_and_loop(empty_scene, box_result, blender, tmp_path):
    bpy = blender
    r, _ = _ground_result(tmp_path)
    sc = empty_scene
    build.build_scene(sc, r, Options(frames=24, effects=("splashes",)))
    s = sc.photo3d
    assert s.rain and s.rain_splashes
    ob = _effect(sc, "splashes")
    pts = np.array([v.co[:] for v in ob.data.vertices])
    assert len(pts) == effects.SPLASH_COUNT
    near = -pts[:, 2] < 15                                              # (the test's ground ends at 20)
    assert near.mean() > 0.9 and np.allclose(pts[near, 1], -1.0, atol=0.05)   # on the ground plane, y = -1
    sc.frame_set(sc.frame_start)
    a = _instances(bpy, sc, ob)
    assert 0 < len(a) < len(pts)                                       # a few splash at any moment
    sc.frame_set(sc.frame_start + 2)
    assert len(_instances(bpy, sc, ob)) > 0
    sc.frame_set(sc.frame_start + effects.frame_of(sc).frames)         # one clip later: the same splashes
    assert np.allclose(a, _instances(bpy, sc, ob), atol=1e-4)
    s.rain_density = 0.5
    assert len(_effect(sc, "splashes").data.vertices) == effects.SPLASH_COUNT // 2
    s.rain_splashes = False
    assert _effect(sc, "splashes") is None and _effect(sc, "rain") is not None
    # no ground in the photo (a box before a wall): no splashes
    assert len(effects.ground_points(sc, 100)) > 0
    build.build_scene(sc, box_result, Options(frames=8))
    assert len(effects.ground_points(sc, 100)) == 0


@pytest.mark.slow
def test_splashes_render_bright_dots_on_the_ground_not_in_the_sky(empty_scene, blender, tmp_path):
    bpy = blender
    r, depth = _ground_result(tmp_path)
    sc = empty_scene
    w, h = 160, 120
    build.build_scene(sc, r, Options(frames=8, engine="cycles", size=(w, h), samples=4,
                                                path="zoom-in", amplitude=0.0))
    sc.cycles.filter_width = 0.01
    s = sc.photo3d
    s.rain = True
    s.rain_density = 0.0                                                 # no streaks: splashes alone
    rain = _render(bpy, sc, tmp_path / "rain.png")
    s.rain_splashes = True
    s.rain_density = 1.0
    _effect(sc, "rain").hide_render = True
    splash = _render(bpy, sc, tmp_path / "splash.png")
    dots = (splash.mean(2) - rain.mean(2)) > 25
    ground = cv2.resize((depth < 20).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    sky = cv2.erode((~ground).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert dots[ground].mean() > 0.01 and dots[sky].sum() == 0
