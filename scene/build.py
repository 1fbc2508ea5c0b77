"""Building (and replacing) the 3D Photo collection from the pipeline's arrays. Main thread only."""
from __future__ import annotations

import bpy

from ..inference.pipeline import Result
from ..settings import ASPECT_SIZES, SETTINGS, Options
from . import camera as camera_mod, effects as effects_mod, render
from .lookup import COLLECTION, MARK, ROLE, find_collection, find_role, mark  # noqa: F401 (operators, ui use them here)
from .materials import projection_material
from .objects import image_from_array, mesh_from_arrays


def default_render_size(photo_size: tuple[int, int], long_side: int = 1080) -> tuple[int, int]:
    w, h = photo_size
    s = min(1.0, long_side / max(w, h))
    # even sizes: H.264 requires them
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


def render_size(aspect: str, photo_size: tuple[float, float]) -> tuple[int, int]:
    """The render size for an aspect setting: a social format's, else the photo's own."""
    return ASPECT_SIZES.get(aspect) or default_render_size(photo_size)


def remove_photo(scene: bpy.types.Scene) -> bool:
    """Delete what photo3d created in ``scene`` (its collection and the data only it used)."""
    coll = find_collection(scene)
    if coll is None:
        return False
    effects_mod.remove_effects(scene)      # with their node groups, which the table below does not know
    data = set()
    for ob in list(coll.all_objects):
        if not ob.get(MARK):
            continue  # something the user put in our collection: leave it alone, just unlink it below
        if ob.data is not None:
            data.add(ob.data)
        if ob.type == "MESH":
            for slot in ob.material_slots:
                if slot.material is not None:
                    data.add(slot.material)
        if scene.camera == ob:
            scene.camera = None
        bpy.data.objects.remove(ob)
    for ob in list(coll.all_objects):   # user objects: keep them, in the scene's own collection
        if ob.name not in scene.collection.objects:
            scene.collection.objects.link(ob)
    for child in list(coll.children_recursive):
        if child.get(MARK):
            bpy.data.collections.remove(child)
    bpy.data.collections.remove(coll)
    if scene.world is not None and scene.world.get(MARK):
        data.add(scene.world)
        scene.world = None
    # Materials first: their images are freed with them.
    images = set()
    for d in list(data):
        if isinstance(d, bpy.types.Material) and d.node_tree:
            for n in d.node_tree.nodes:
                if n.type == "TEX_IMAGE" and n.image is not None:
                    images.add(n.image)
    # Users first (meshes, cameras, worlds), then what they used (materials, then images).
    for kind, store in (("Mesh", "meshes"), ("Camera", "cameras"), ("World", "worlds"),
                        ("Material", "materials"), ("Image", "images")):
        for d in list(data) + list(images):
            if isinstance(d, getattr(bpy.types, kind)) and d.get(MARK) and d.users == 0:
                getattr(bpy.data, store).remove(d)
    return True


def _object(name, data, coll, parent, role):
    ob = mark(bpy.data.objects.new(name, data))
    ob[ROLE] = role
    coll.objects.link(ob)
    if parent is not None:
        ob.parent = parent
    return ob


def build_scene(scene: bpy.types.Scene, result: Result, opts: Options | None = None,
                configure_render: bool = True) -> bpy.types.Collection:
    """Replace the scene's 3D Photo with one built from ``result`` and the settings ``opts``
    (``settings.Options``: the CLI's, or those of ``scene.photo3d``); returns the collection.
    ``configure_render``: also set the render engine, size, frame rate and samples."""
    opts = opts or Options()
    remove_photo(scene)
    coll = mark(bpy.data.collections.new(COLLECTION))
    scene.collection.children.link(coll)

    root = _object(COLLECTION, None, coll, None, "root")
    root.empty_display_type = "PLAIN_AXES"
    root.empty_display_size = 0.1 * result.extent.subject_depth

    th, tw = result.texture.shape[:2]
    photo_img = image_from_array("3D Photo Image", result.texture, result.alpha)
    bg_img = image_from_array("3D Photo Background Image", result.background)
    fg_mat = projection_material("3D Photo Foreground", photo_img, result.hfov_deg, tw, th,
                                 use_alpha=result.alpha is not None)
    bg_mat = projection_material("3D Photo Background", bg_img, result.hfov_deg, tw, th)

    for name, arrays, mat, role in (("3D Photo Foreground", result.foreground_mesh, fg_mat, "foreground"),
                                    ("3D Photo Background", result.background_mesh, bg_mat, "background")):
        me = mesh_from_arrays(name, arrays.positions, arrays.triangles)
        me.materials.append(mat)
        _object(name, me, coll, root, role)

    cam_data = mark(bpy.data.cameras.new("3D Photo Camera"))
    camera_mod.setup_camera_data(cam_data, result.hfov_deg, result.extent)
    cam = _object("3D Photo Camera", cam_data, coll, root, "camera")
    scene.camera = cam
    # What the camera looks at: move it to re-aim every frame of the path.
    target = _object("3D Photo Target", None, coll, root, "target")
    target.empty_display_type = "SPHERE"
    target.empty_display_size = 0.03 * result.extent.subject_depth
    camera_mod.add_track_to(cam, target)
    if result.edges is not None:
        camera_mod.store_edge_samples(coll, result.edges)

    if scene.world is None:
        world = mark(bpy.data.worlds.new("3D Photo World"))
        world.color = (0.0, 0.0, 0.0)
        scene.world = world

    size = opts.size or render_size(opts.aspect, result.size)
    if configure_render:
        render.configure(scene, opts.engine, size, opts.fps, opts.samples, opts.quality,
                         render.needs_blur_samples(opts))
    scene.frame_start = 1
    scene.frame_end = opts.frames

    # What re-animating needs besides the settings.
    state = dict(hfov=result.hfov_deg, photo_aspect=result.size[0] / result.size[1],
                 subject_depth=result.extent.subject_depth, near_depth=result.extent.near_depth,
                 far_depth=result.extent.far_depth)
    settings = getattr(scene, "photo3d", None)
    if settings is not None:
        # Registered (Blender, the CLI): store the settings and that state, then animate
        # through the same path users take when they change a setting.
        settings.is_updating = True
        try:
            for spec in SETTINGS:
                if spec.on_panel:
                    value = getattr(opts, spec.name)
                    setattr(settings, spec.name, set(value) if spec.type == "flags" else value)
            for key, value in state.items():
                setattr(settings, key, value)
        finally:
            settings.is_updating = False
        camera_mod.reanimate(scene)
        settings.is_updating = True
        try:
            # What the pipeline read from the photo's light (off the main thread).
            if result.far_colour is not None:
                settings.fog_color = result.far_colour
            settings.has_light_source = result.light_source is not None
            if result.light_source is not None:
                settings.light_source = result.light_source
        finally:
            settings.is_updating = False
        effects_mod.apply_effects(scene)
        scene.render.use_motion_blur = bool(opts.motion_blur)
    else:  # not registered (the benchmark): the same path from plain values
        path_values = {k: getattr(opts, k) for k in ("path", "frames", "amplitude", "easing", "loop", "direction",
                                                     "crop_to_photo", "max_reveal")}
        plan = camera_mod.plan_path(camera_mod.PathSettings(**path_values, **state), scene.render, result.edges)
        camera_mod.animate(cam, plan.path, scene.frame_start)
    scene.frame_set(scene.frame_start)
    return coll


def objects_around_camera(scene: bpy.types.Scene) -> list[str]:
    """The user's visible meshes whose bounds hold the 3D Photo's camera (Blender's default
    cube does: the photo is built round the world origin). From inside, their faces hide the
    photo in every render; photo3d never changes the user's objects, so it says so instead."""
    cam = find_role(scene, "camera")
    if cam is None:
        return []
    p = cam.matrix_world.translation
    names = []
    for ob in scene.objects:
        if ob.type != "MESH" or ob.get(MARK) or ob.hide_render or not ob.visible_get():
            continue
        local = ob.matrix_world.inverted_safe() @ p
        lo, hi = ob.bound_box[0], ob.bound_box[6]      # Blender's box: the least corner first, the most 7th
        if all(lo[i] <= local[i] <= hi[i] for i in range(3)):
            names.append(ob.name)
    return names
