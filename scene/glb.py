"""The 3D photo as glTF binary (``photo.glb``) through Blender's glTF exporter.

The projection shader (materials.py) cannot be exported, so each mesh gets what it
computes baked into UVs: every vertex's UV is its projection into the source camera (the
meshes are built in that camera's frame), with a plain unlit image-texture material that
the exporter writes as KHR_materials_unlit, the photo or background image embedded. Only
the triangles that show the photo's soft alpha edge blend (``BLEND``); the rest of a layer
is ``OPAQUE``: web viewers (three.js among them) draw blended primitives without writing
depth, so a wholly blended layer would not hide its own far parts behind its near ones. The
camera is baked to one key per frame (the look-at constraint and the parent resolved), so
any glTF viewer plays the move. All of it is built in a temporary scene that is deleted
afterwards: the user's scene and data stay as they were.
"""
from __future__ import annotations

import contextlib
import io
import math

import bpy
import numpy as np

from .lookup import find_collection, find_role

MESH_ROLES = ("background", "foreground")   # back to front, as a viewer sorts them anyway


def projection_uvs(positions: np.ndarray, hfov_deg: float, width: int, height: int) -> np.ndarray:
    """UVs (N, 2) of points in the source camera's frame (x right, y up, looking down -Z):
    where the camera sees them in a ``width`` x ``height`` image, as materials.py projects."""
    kx = 0.5 / math.tan(math.radians(hfov_deg) / 2)
    ky = kx * width / height
    z = np.maximum(-positions[:, 2], 1e-6)
    return np.stack([positions[:, 0] / z * kx + 0.5, positions[:, 1] / z * ky + 0.5], -1).astype(np.float32)


def soft_faces(uv: np.ndarray, loop_start: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Which faces sample a texel with alpha below 1: (F,) bool. ``uv`` (L, 2) per corner,
    ``loop_start`` (F,) each face's first corner, ``alpha`` (H, W) with row 0 at v = 0 (as
    Blender stores pixels). A face's UV bounding box widened to the bilinear footprint is
    tested, so a large face is counted soft when its box is (conservative)."""
    h, w = alpha.shape
    soft = np.zeros((h + 1, w + 1), np.int64)
    soft[1:, 1:] = (alpha < 1.0 - 1e-3).cumsum(0).cumsum(1)     # summed-area table
    texel = uv * (w, h) - 0.5                                     # texel centres at integers
    lo = np.minimum.reduceat(texel, loop_start, axis=0)
    hi = np.maximum.reduceat(texel, loop_start, axis=0)
    x0, y0 = (np.clip(np.floor(lo[:, i]).astype(np.int64), 0, n - 1) for i, n in ((0, w), (1, h)))
    x1, y1 = (np.clip(np.floor(hi[:, i]).astype(np.int64) + 1, 0, n - 1) for i, n in ((0, w), (1, h)))
    count = soft[y1 + 1, x1 + 1] - soft[y0, x1 + 1] - soft[y1 + 1, x0] + soft[y0, x0]
    return count > 0


def _alpha_of(image: bpy.types.Image) -> np.ndarray:
    w, h = (max(1, int(v)) for v in image.size)
    px = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(px)
    return px[3::4].reshape(h, w)


def _image_of(material: bpy.types.Material | None) -> bpy.types.Image | None:
    if material is None or material.node_tree is None:
        return None
    for n in material.node_tree.nodes:
        if n.type == "TEX_IMAGE" and n.image is not None:
            return n.image
    return None


def unlit_material(name: str, image: bpy.types.Image, use_alpha: bool) -> bpy.types.Material:
    """Image texture (UV) -> emission seen by camera rays only, optionally mixed with
    transparency by the image's alpha: the node layout Blender's glTF importer builds for
    KHR_materials_unlit, which its exporter recognises."""
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Linear"
    tex.extension = "EXTEND"
    emit = nodes.new("ShaderNodeEmission")
    links.new(emit.inputs["Color"], tex.outputs["Color"])
    path = nodes.new("ShaderNodeLightPath")
    clear = nodes.new("ShaderNodeBsdfTransparent")
    camera_only = nodes.new("ShaderNodeMixShader")
    links.new(camera_only.inputs["Fac"], path.outputs["Is Camera Ray"])
    links.new(camera_only.inputs[1], clear.outputs[0])
    links.new(camera_only.inputs[2], emit.outputs[0])
    surface = camera_only
    if use_alpha:
        surface = nodes.new("ShaderNodeMixShader")
        links.new(surface.inputs["Fac"], tex.outputs["Alpha"])
        links.new(surface.inputs[1], clear.outputs[0])
        links.new(surface.inputs[2], camera_only.outputs[0])
        if hasattr(mat, "surface_render_method"):
            mat.surface_render_method = "BLENDED"
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(out.inputs["Surface"], surface.outputs[0])
    return mat


def _baked_mesh(ob: bpy.types.Object, name: str, hfov_deg: float) -> bpy.types.Mesh | None:
    image = _image_of(ob.active_material)
    if image is None or ob.type != "MESH" or not len(ob.data.vertices):
        return None
    me = ob.data.copy()
    me.name = name
    for key in list(me.keys()):
        del me[key]          # not a photo3d datablock: nothing would ever find it as one
    n = len(me.vertices)
    pos = np.empty(3 * n, np.float32)
    me.attributes["position"].data.foreach_get("vector", pos)
    corner = np.empty(len(me.loops), np.int32)
    me.attributes[".corner_vert"].data.foreach_get("value", corner)
    w, h = (max(1, int(v)) for v in image.size)
    uv = projection_uvs(pos.reshape(-1, 3), hfov_deg, w, h)
    layer = me.uv_layers.new(name="UVMap")
    layer.data.foreach_set("uv", uv[corner].ravel())
    me.materials.clear()
    me.materials.append(unlit_material(name, image, use_alpha=False))
    # Blender reports 4 channels for most images: the photo's own material says whether it blends.
    if len(me.polygons) and any(n.type == "BSDF_TRANSPARENT" for n in ob.active_material.node_tree.nodes):
        loop_start = np.empty(len(me.polygons), np.int32)
        me.polygons.foreach_get("loop_start", loop_start)
        soft = soft_faces(uv[corner], loop_start, _alpha_of(image))
        if soft.any():
            me.materials.append(unlit_material(f"{name} edge", image, use_alpha=True))
            me.polygons.foreach_set("material_index", soft.astype(np.int32))
    return me


def _bake_camera(scene: bpy.types.Scene, cam: bpy.types.Object, into: bpy.types.Scene) -> bpy.types.Object:
    """A camera in ``into`` with one key per frame of ``cam``'s world pose (constraint and
    parent resolved). Its focal length stays the first frame's: glTF animates a camera's
    field of view only through KHR_animation_pointer, which few viewers read, so a dolly
    zoom plays as a dolly."""
    data = cam.data.copy()
    data.animation_data_clear()
    data.name = "photo3d camera"
    baked = bpy.data.objects.new(data.name, data)
    into.collection.objects.link(baked)
    baked.rotation_mode = "QUATERNION"
    frames = range(scene.frame_start, scene.frame_end + 1)
    here = scene.frame_current
    poses = []
    try:
        scene.frame_set(frames[0])
        data.lens = cam.data.lens
        for f in frames:
            scene.frame_set(f)
            poses.append(cam.matrix_world.copy())
    finally:
        scene.frame_set(here)
    prev = None
    for f, m in zip(frames, poses):
        loc, rot, _scale = m.decompose()
        if prev is not None:
            rot.make_compatible(prev)      # no sign flips between keys: interpolation takes the short way
        prev = rot
        baked.location, baked.rotation_quaternion = loc, rot
        baked.keyframe_insert("location", frame=f)
        baked.keyframe_insert("rotation_quaternion", frame=f)
    return baked


# Set once Blender's glTF exporter has run in this process (the bpy 4.2 module crashes at
# interpreter exit after it: see __main__.py).
exporter_ran = False


def export_glb(scene: bpy.types.Scene, path: str, hfov_deg: float | None = None) -> str:
    """Write the 3D Photo of ``scene`` to ``path`` (.glb): its meshes with source-camera
    UVs and unlit embedded textures, and the camera with its animation. ``hfov_deg``: the
    source camera's field of view (default: the one the build stored). Returns ``path``."""
    global exporter_ran
    if find_collection(scene) is None:
        raise ValueError("the scene has no 3D Photo to export")
    exporter_ran = True
    if hfov_deg is None:
        hfov_deg = scene.photo3d.hfov
    tmp = bpy.data.scenes.new("photo3d glTF export")
    made: list = []
    try:
        for attr in ("frame_start", "frame_end"):
            setattr(tmp, attr, getattr(scene, attr))
        tmp.render.fps, tmp.render.fps_base = scene.render.fps, scene.render.fps_base
        tmp.render.resolution_x, tmp.render.resolution_y = scene.render.resolution_x, scene.render.resolution_y
        for role in MESH_ROLES:
            ob = find_role(scene, role)
            # Names of their own (the originals keep theirs): what a glTF viewer lists.
            me = _baked_mesh(ob, f"photo3d {role}", hfov_deg) if ob is not None else None
            if me is None:
                continue
            made += [me, *me.materials]
            copy = bpy.data.objects.new(me.name, me)
            copy.matrix_world = ob.matrix_world.copy()
            tmp.collection.objects.link(copy)
            made.append(copy)
        cam = find_role(scene, "camera") or scene.camera
        if cam is not None:
            baked = _bake_camera(scene, cam, tmp)
            made += [baked, baked.data]
            tmp.camera = baked
        # Its INFO lines go to the stdout of the moment (they would fill the CLI's output); errors to stderr.
        with bpy.context.temp_override(scene=tmp), contextlib.redirect_stdout(io.StringIO()):
            bpy.ops.export_scene.gltf(
                filepath=path, export_format="GLB", use_active_scene=True, use_selection=False,
                export_cameras=True, export_lights=False, export_materials="EXPORT", export_image_format="AUTO",
                export_texcoords=True, export_normals=False, export_animations=True, export_frame_range=True,
                export_force_sampling=True, export_optimize_animation_size=False, export_extras=False,
                export_apply=False)
    finally:
        for d in made:
            if isinstance(d, (bpy.types.Object, bpy.types.Camera)) and d.animation_data is not None:
                action = d.animation_data.action
                d.animation_data_clear()
                if action is not None and action.users == 0:
                    bpy.data.actions.remove(action)
        for d in made:
            if isinstance(d, bpy.types.Object):
                bpy.data.objects.remove(d)
        bpy.data.scenes.remove(tmp)
        for d in made:
            store = {bpy.types.Mesh: bpy.data.meshes, bpy.types.Material: bpy.data.materials,
                     bpy.types.Camera: bpy.data.cameras}
            for kind, coll in store.items():
                if isinstance(d, kind) and d.users == 0:
                    coll.remove(d)
    return path
