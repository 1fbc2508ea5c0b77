"""Atmosphere inside the reconstructed scene: fog, rain, drifting particles, depth of field.

Each effect is its own object in the 3D Photo collection (role ``effect``, name in
``photo3d_effect``), placed at the scene's real depths, so rain falls in front of and
behind the subject. Every motion is periodic over the clip (a whole number of cycles in
the frame range), so effects loop seamlessly with the camera path. The scene is
emission-only (the photo carries its light): fog absorbs and emits its own colour, rain
and particles glow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np

from ..inference import ground
from .lookup import ROLE, find_collection, find_role, mark, options_of
from .materials import empty_material
from .nodes import Group, Tree
from .shafts import add_shafts, remove_shafts

EFFECT_KEY = "photo3d_effect"


@dataclass
class Frame:
    """Where effects live: the source camera's frustum between two depths."""
    tan_x: float          # tan(hfov / 2)
    aspect: float         # width / height of the photo
    near: float
    subject: float
    far: float
    frames: int           # clip length: every motion repeats a whole number of times

    @property
    def tan_y(self) -> float:
        return self.tan_x / self.aspect


def frame_of(scene: bpy.types.Scene, opts=None) -> Frame:
    """The frame of the scene's 3D Photo, from what the build stored in ``opts`` (None: ``scene.photo3d``)."""
    s = options_of(scene, opts)
    return Frame(math.tan(math.radians(s.hfov) / 2), max(s.photo_aspect, 1e-3), s.near_depth, s.subject_depth,
                 s.far_depth, max(2, scene.frame_end - scene.frame_start + 1))


# ----------------------------------------------------------------------------- helpers

def _emission_material(name: str, colour, strength: float, alpha: float = 1.0) -> bpy.types.Material:
    mat = empty_material(name)
    t = Tree(mat.node_tree)
    surface = t.node("ShaderNodeEmission", {"Color": (*colour[:3], 1.0), "Strength": strength})
    if alpha < 1.0:
        clear = t.node("ShaderNodeBsdfTransparent")
        surface = t.node("ShaderNodeMixShader", {"Fac": alpha, 1: clear, 2: surface})
        if hasattr(mat, "surface_render_method"):
            mat.surface_render_method = "BLENDED"
    t.node("ShaderNodeOutputMaterial", {"Surface": surface})
    return mat


def _geometry_group(name: str) -> Group:
    """A new geometry-nodes group: geometry in, geometry out."""
    geometry = [("Geometry", "NodeSocketGeometry")]
    return Group(name, "GeometryNodeTree", inputs=geometry, outputs=geometry)


def _effect_object(name: str, kind: str, coll, parent) -> bpy.types.Object:
    me = mark(bpy.data.meshes.new(name))
    ob = mark(bpy.data.objects.new(name, me))
    ob[ROLE] = "effect"
    ob[EFFECT_KEY] = kind
    ob.visible_shadow = False        # glowing haze and drops: nothing to shadow (and slow in shadow maps)
    coll.objects.link(ob)
    ob.parent = parent
    return ob


# ----------------------------------------------------------------------------- fog

def add_fog(coll, parent, fr: Frame, density: float, colour, height_falloff: float = 0.0) -> bpy.types.Object:
    """A box over the frustum filled with a medium that absorbs and emits the fog colour:
    a point seen through optical depth tau keeps exp(-tau) of its colour and takes the fog
    colour for the rest. Density grows with distance (none in front of the subject's
    nearest parts), and optionally thins with height. (Light shafts are a compositor
    pass: ``shafts.py``.)"""
    ob = _effect_object("3D Photo Fog", "fog", coll, parent)
    z0, z1 = 0.5 * fr.near, 1.05 * fr.far
    xs, ys = 1.3 * fr.tan_x * z1, 1.3 * fr.tan_y * z1
    verts = [(x, y, -z) for z in (z0, z1) for y in (-ys, ys) for x in (-xs, xs)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    ob.data.from_pydata(verts, [], faces)
    mat = empty_material("3D Photo Fog")
    g = Tree(mat.node_tree)
    m = g.math
    sep = g.node("ShaderNodeSeparateXYZ", {0: g.node("ShaderNodeTexCoord").outputs["Object"]})

    # Density per unit length: `density` at the far depth; zero up to the subject's near side.
    t = m("DIVIDE", m("SUBTRACT", m("MULTIPLY", sep.outputs["Z"], -1.0), fr.near), max(fr.far - fr.near, 1e-6))
    t = m("MINIMUM", m("MAXIMUM", t, 0.0), 1.0)
    sigma = m("MULTIPLY", t, density / max(fr.far, 1e-6))
    if height_falloff > 0:
        # Thinner higher up: exp(-(y + ys_floor) / H), H a fraction of the frame's height at the subject.
        h = height_falloff * fr.tan_y * fr.subject
        up = m("DIVIDE", m("ADD", sep.outputs["Y"], fr.tan_y * fr.subject), h)
        sigma = m("MULTIPLY", sigma, m("EXPONENT", m("MULTIPLY", m("MAXIMUM", up, 0.0), -1.0)))
    absorb = g.node("ShaderNodeVolumeAbsorption", {"Color": (0.0, 0.0, 0.0, 1.0), "Density": sigma})
    emit = g.node("ShaderNodeEmission", {"Color": (*colour[:3], 1.0), "Strength": sigma})
    add = g.node("ShaderNodeAddShader", {0: absorb, 1: emit})
    g.node("ShaderNodeOutputMaterial", {"Volume": add})
    ob.data.materials.append(mat)
    ob.display_type = "BOUNDS"
    return ob


# ----------------------------------------------------------------------------- rain & particles

@dataclass
class Drift:
    """How a population of points moves and looks."""
    count: int
    falls: int            # times each point crosses the frame top to bottom per clip (0: hovers)
    sway: float           # sideways wobble, as a fraction of the frame's half-width at its depth
    wind_deg: float       # slant of the fall (rain)
    shape: str            # "streak" or "dot"
    size: float           # streak length or dot radius, as a fraction of the depth
    colour: tuple
    strength: float
    alpha: float
    seed: int
    span: tuple = (0.35, None)   # depth range: (fraction of the near depth, of the far depth; None: far)


PRESETS = {
    "dust": Drift(400, 0, 0.05, 0.0, "dot", 0.0025, (1.0, 0.85, 0.65), 1.2, 0.8, 11),
    "snow": Drift(700, 1, 0.06, 0.0, "dot", 0.004, (1.0, 1.0, 1.0), 1.5, 0.9, 12),
    "fireflies": Drift(150, 0, 0.10, 0.0, "dot", 0.005, (0.75, 1.0, 0.35), 8.0, 1.0, 13),
    "rain": Drift(1200, 6, 0.0, 10.0, "streak", 0.05, (0.8, 0.85, 0.95), 0.7, 0.3, 14),
    # Big soft discs between the camera and the subject: out of focus with depth of field on.
    "bokeh": Drift(40, 0, 0.04, 0.0, "dot", 0.045, (1.0, 0.8, 0.55), 2.0, 0.35, 15, span=(0.3, 0.0)),
}


def add_points(coll, parent, fr: Frame, kind: str, drift: Drift) -> bpy.types.Object:
    """Points spread through the frustum from in front of the subject to the far depth,
    each moving periodically over the clip (geometry nodes driven by the scene frame)."""
    ob = _effect_object(f"3D Photo {kind.title()}", kind, coll, parent)
    g = _geometry_group(f"3D Photo {kind.title()}")
    z_lo = drift.span[0] * fr.near
    z_hi = fr.far if drift.span[1] is None else max(0.85 * fr.near, z_lo * 1.5)
    # Per point: across (u), phase (p), depth (w), all from the point's index.
    u = g.random(-1.15, 1.15, drift.seed)
    p = g.random(0.0, 1.0, drift.seed + 1)
    w = g.random(0.0, 1.0, drift.seed + 2)
    # Uniform in disparity: as many points near the camera as far from it, per image area.
    inv = g.math("ADD", 1.0 / z_hi, g.math("MULTIPLY", w, 1.0 / z_lo - 1.0 / z_hi))
    z = g.math("DIVIDE", 1.0, inv)
    frame = g.node("GeometryNodeInputSceneTime").outputs["Frame"]
    phase = g.math("ADD", p, g.math("MULTIPLY", frame, 1.0 / fr.frames))     # one cycle per clip
    half_h = g.math("MULTIPLY", z, 1.15 * fr.tan_y)
    if drift.falls:
        fall = g.math("FRACT", g.math("ADD", p, g.math("MULTIPLY", frame, drift.falls / fr.frames)))
        y = g.math("MULTIPLY", half_h, g.math("SUBTRACT", 1.0, g.math("MULTIPLY", fall, 2.0)))
    else:
        y = g.math("MULTIPLY", half_h, g.math("SUBTRACT", g.math("MULTIPLY", p, 2.0), 1.0))
    x = g.math("MULTIPLY", u, g.math("MULTIPLY", z, fr.tan_x))
    if drift.sway:
        s = g.math("SINE", g.math("MULTIPLY", phase, 2 * math.pi))
        c = g.math("COSINE", g.math("MULTIPLY", g.math("ADD", phase, p), 4 * math.pi))
        x = g.math("ADD", x, g.math("MULTIPLY", s, g.math("MULTIPLY", z, drift.sway * fr.tan_x)))
        y = g.math("ADD", y, g.math("MULTIPLY", c, g.math("MULTIPLY", z, 0.5 * drift.sway * fr.tan_y)))
    if drift.wind_deg:
        x = g.math("ADD", x, g.math("MULTIPLY", y, math.tan(math.radians(drift.wind_deg))))
    pos = g.xyz(x, y, g.math("MULTIPLY", z, -1.0))
    pts = g.node("GeometryNodePoints", {"Count": int(drift.count), "Position": pos})
    if drift.shape == "streak":
        inst = g.node("GeometryNodeMeshCylinder", {"Vertices": 4, "Radius": 0.025 * drift.size, "Depth": drift.size})
        rot = (math.pi / 2, 0.0, -math.radians(drift.wind_deg))    # cylinder axis Z -> along the fall
    else:
        inst = g.node("GeometryNodeMeshIcoSphere", {"Radius": drift.size, "Subdivisions": 2})
        rot = (0.0, 0.0, 0.0)
    mat = _emission_material(f"3D Photo {kind.title()}", drift.colour, drift.strength, drift.alpha)
    setmat = g.node("GeometryNodeSetMaterial", {"Geometry": inst.outputs["Mesh"], "Material": mat})
    # Streaks and dots keep their size relative to their depth (scale = z).
    iop = g.node("GeometryNodeInstanceOnPoints", {"Points": pts, "Instance": setmat, "Rotation": rot, "Scale": z})
    g.link(iop, g.out.inputs[0])
    mod = ob.modifiers.new("3D Photo " + kind, "NODES")
    mod.node_group = g.tree
    ob.data.materials.append(mat)
    return ob


# ----------------------------------------------------------------------------- rain splashes

SPLASH_COUNT = 1500        # splashes per clip at rain density 1 (each point splashes once per clip)
SPLASH_LIFE = 5            # frames a splash lasts
SPLASH_SIZE = 0.01         # crown radius at its widest, as a fraction of its depth (like the streaks)


def ground_points(scene: bpy.types.Scene, count: int, seed: int = 21) -> np.ndarray:
    """``count`` points on the ground of the 3D Photo's foreground mesh as it is now (the
    user may have edited it), in the 3D Photo's frame: see ``ground.sample_ground``."""
    fg = find_role(scene, "foreground")
    if fg is None or fg.type != "MESH" or count <= 0 or not len(fg.data.polygons):
        return np.zeros((0, 3), np.float32)
    me = fg.data
    n = len(me.polygons)
    normal, centre, area = np.empty(3 * n, np.float32), np.empty(3 * n, np.float32), np.empty(n, np.float32)
    me.polygons.foreach_get("normal", normal)
    me.polygons.foreach_get("center", centre)
    me.polygons.foreach_get("area", area)
    total = np.empty(n, np.int32)
    me.polygons.foreach_get("loop_total", total)
    positions = triangles = None
    if (total == 3).all():                                       # triangles: points anywhere inside them
        triangles = np.empty(3 * n, np.int32)
        me.attributes[".corner_vert"].data.foreach_get("value", triangles)
        positions = np.empty(3 * len(me.vertices), np.float32)
        me.attributes["position"].data.foreach_get("vector", positions)
        positions, triangles = positions.reshape(-1, 3), triangles.reshape(n, 3)
    return ground.sample_ground(normal.reshape(n, 3), centre.reshape(n, 3), area, count, seed, positions, triangles)


def add_splashes(coll, parent, fr: Frame, points: np.ndarray, colour, strength: float, alpha: float,
                 seed: int = 22) -> bpy.types.Object:
    """Rain splashes on the ground: at each point a crown (an open ring standing on the
    ground) that widens and sinks over SPLASH_LIFE frames, once per clip at a random time,
    so the clip loops seamlessly. The points are the object's vertices (move or delete
    them in Edit Mode); geometry nodes animate them."""
    ob = _effect_object("3D Photo Splashes", "splashes", coll, parent)
    if len(points):
        ob.data.vertices.add(len(points))
        ob.data.vertices.foreach_set("co", np.ascontiguousarray(points, np.float32).ravel())
        ob.data.update()
    g = _geometry_group("3D Photo Splashes")
    pts = g.node("GeometryNodeMeshToPoints", {"Mesh": g.inp.outputs[0]})
    frame = g.node("GeometryNodeInputSceneTime").outputs["Frame"]
    p = g.random(0.0, 1.0, seed)
    # Age in frames since this point's splash began; it shows while younger than its life.
    age = g.math("MULTIPLY", g.math("FRACT", g.math("ADD", p, g.math("MULTIPLY", frame, 1.0 / fr.frames))), fr.frames)
    life = float(min(SPLASH_LIFE, max(1, fr.frames // 2)))
    t = g.math("DIVIDE", age, life)
    alive = g.math("LESS_THAN", age, life)
    z = g.node("ShaderNodeSeparateXYZ", {0: g.node("GeometryNodeInputPosition")})
    zdepth = g.math("MULTIPLY", z.outputs["Z"], -1.0)
    size = g.math("MULTIPLY", zdepth, SPLASH_SIZE)
    widen = g.math("MULTIPLY", size, g.math("ADD", 0.4, g.math("MULTIPLY", t, 0.6)))       # radius grows...
    sink = g.math("MULTIPLY", size, g.math("MULTIPLY", 0.3, g.math("SUBTRACT", 1.0, t)))    # ...height falls
    crown = g.node("GeometryNodeMeshCylinder", {"Vertices": 12, "Radius": 1.0, "Depth": 1.0}, fill_type="NONE")
    # stand it on the ground: its base at the point, its axis up (+Y)
    lift = g.node("GeometryNodeTransform", {"Geometry": crown.outputs["Mesh"], "Translation": (0.0, 0.0, 0.5)})
    mat = _emission_material("3D Photo Splashes", colour, strength, alpha)
    setmat = g.node("GeometryNodeSetMaterial", {"Geometry": lift, "Material": mat})
    iop = g.node("GeometryNodeInstanceOnPoints", {"Points": pts, "Selection": alive, "Instance": setmat,
                                                  "Rotation": (-math.pi / 2, 0.0, 0.0),     # local Z -> world +Y
                                                  "Scale": g.xyz(widen, widen, sink)})
    g.link(iop, g.out.inputs[0])
    mod = ob.modifiers.new("3D Photo splashes", "NODES")
    mod.node_group = g.tree
    ob.data.materials.append(mat)
    return ob


# ----------------------------------------------------------------------------- all effects

# Older versions lit the shafts with a lamp and overrode Eevee settings (shadows, volume
# cells) and the photo meshes' shadows: scenes saved then still get them back on removal.
_SAVED = "photo3d_eevee_saved"
_SHADOW_OFF = "photo3d_shadow_off"


def _restore(scene: bpy.types.Scene):
    """Give back the settings that effects of older versions overrode (shadows, volume cells)."""
    coll = find_collection(scene)
    for ob in (coll.all_objects if coll is not None else []):
        if ob.get(_SHADOW_OFF):
            ob.visible_shadow = True
            del ob[_SHADOW_OFF]
    saved = scene.get(_SAVED)
    if saved is not None:
        for attr, value in saved.items():
            setattr(scene.eevee, attr, value)
        del scene[_SAVED]


def remove_effects(scene: bpy.types.Scene):
    """Delete the effect objects (and their meshes, node groups, materials) of the 3D Photo
    and the light shafts in the compositor, and give back the settings they changed."""
    remove_shafts(scene)
    _restore(scene)
    coll = find_collection(scene)
    if coll is None:
        return
    for ob in [o for o in coll.all_objects if o.get(EFFECT_KEY)]:
        if ob.type == "LIGHT":
            light = ob.data
            bpy.data.objects.remove(ob)
            if light.users == 0:
                bpy.data.lights.remove(light)
            continue
        me = ob.data
        groups = [m.node_group for m in ob.modifiers if m.type == "NODES" and m.node_group is not None]
        mats = [m for m in me.materials if m is not None] if me is not None else []
        bpy.data.objects.remove(ob)
        for ng in groups:
            for n in ng.nodes:
                if n.type == "SET_MATERIAL" and n.inputs["Material"].default_value is not None:
                    mats.append(n.inputs["Material"].default_value)
            if ng.users == 0:
                bpy.data.node_groups.remove(ng)
        if me is not None and me.users == 0:
            bpy.data.meshes.remove(me)
        for m in set(mats):
            if m.users == 0:
                bpy.data.materials.remove(m)


def light_in_world(scene: bpy.types.Scene, opts=None):
    """The photo's light source (``light_source`` of ``opts``, else of ``scene.photo3d``: in the
    3D Photo's frame) in world space: where the root object has moved the photo."""
    from mathutils import Vector
    p = Vector(options_of(scene, opts).light_source)
    root = find_role(scene, "root")
    return root.matrix_world @ p if root is not None else p


def apply_effects(scene: bpy.types.Scene, opts=None) -> list[str]:
    """(Re)build the effects that ``opts`` switches on (the attributes of ``scene.photo3d``;
    None: the scene's own settings); returns their names."""
    remove_effects(scene)
    coll = find_collection(scene)
    s = options_of(scene, opts)
    cam = find_role(scene, "camera")
    if coll is None or s.subject_depth <= 0:
        return []
    root = find_role(scene, "root")
    fr = frame_of(scene, s)
    made = []
    if s.fog:
        add_fog(coll, root, fr, s.fog_density, tuple(s.fog_color), s.fog_height)
        eevee = scene.eevee
        if hasattr(eevee, "use_volume_custom_range"):   # else the range is the camera's clipping range
            eevee.use_volume_custom_range = True
        eevee.volumetric_start = max(1e-3, 0.3 * fr.near)
        eevee.volumetric_end = 1.1 * fr.far
        made.append("fog")
        # Before the effects below: placing the shafts steps through the clip's frames.
        if s.fog_shafts and s.has_light_source and add_shafts(scene, light_in_world(scene, s), s.fog_shafts_strength):
            made.append("shafts")
    if s.rain:
        d = PRESETS["rain"]
        falls = max(1, int(round(d.falls * s.rain_speed)))
        add_points(coll, root, fr, "rain", Drift(int(d.count * s.rain_density), falls, d.sway,
                                                    math.degrees(s.rain_wind), d.shape, d.size * s.rain_length,
                                                    d.colour, d.strength, d.alpha, d.seed))
        made.append("rain")
        if s.rain_splashes:
            count = int(SPLASH_COUNT * s.rain_density)
            add_splashes(coll, root, fr, ground_points(scene, count), d.colour, 1.2, 0.6)
            made.append("splashes")
    if s.particles != "none":
        d = PRESETS[s.particles]
        add_points(coll, root, fr, s.particles, Drift(int(d.count * s.particle_density), d.falls, d.sway,
                                                         d.wind_deg, d.shape, d.size, d.colour, d.strength,
                                                         d.alpha, d.seed, d.span))
        made.append(s.particles)
    if cam is not None:
        dof = cam.data.dof
        dof.use_dof = bool(s.dof)
        if s.dof:
            dof.focus_object = find_role(scene, "target")
            dof.aperture_fstop = s.dof_fstop
            made.append("dof")
    return made
