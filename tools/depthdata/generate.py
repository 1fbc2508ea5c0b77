#!/usr/bin/env python
"""Synthetic training data for a small monocular depth network (photo3d).

Renders procedural scenes with Cycles (CPU) and writes one compressed ``.npz``
per image.  See ``tools/depthdata/README.md`` for the file format.

    .venv/bin/python tools/depthdata/generate.py --out DIR --count N --seed S \
        [--start 0] [--size 192x144] [--samples 12] [--max-depth 100]

Every image is a pure function of (seed, index): its scene is drawn from
``numpy.random.default_rng([seed, index])`` and Cycles' own seed is derived from
the same pair.  Indices whose ``.npz`` already exists are skipped, so a killed
run can simply be restarted with the same arguments.
"""
from __future__ import annotations

import argparse
import colorsys
import glob
import math
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

import bpy  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

# isort: split
# bmesh and mathutils are importable only once bpy is.
import bmesh  # noqa: E402
from mathutils import Matrix, Quaternion, Vector  # noqa: E402

SUBJECT_INDEX = 1          # pass_index of every part of the designated subject
STRUCT_INDEX = 2           # floor, walls, terrain, buildings (never salient)
FIRST_THING_INDEX = 10     # clutter "things" get 10, 11, ... (one per thing)
RICH_STREAM = 7919         # the --rich extras' own RNG stream: [seed, index, attempt, RICH_STREAM]

SCENE_KINDS = ("room", "studio", "nature", "street")
SCENE_PROBS = (0.30, 0.15, 0.30, 0.25)

PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass",
               "gravel", "moon", "page", "text", "coins", "hubble_deep_field",
               "immunohistochemistry", "retina", "cat", "clock")

WORDS = ("PHOTO", "DEPTH", "CAFE", "EXIT", "OPEN", "3D", "HELLO", "BOOKS", "SALE",
         "NORTH", "ZONE", "42", "BLENDER", "STOP", "A", "XY", "HOTEL", "PARK")

SKIN_SRGB = ((0.96, 0.80, 0.69), (0.90, 0.72, 0.60), (0.78, 0.57, 0.44),
             (0.55, 0.38, 0.26), (0.36, 0.22, 0.15))


# --------------------------------------------------------------------------- assets

def bpy_datafiles() -> str:
    root = os.path.dirname(bpy.__file__)
    hits = glob.glob(os.path.join(root, "*", "datafiles"))
    return hits[0] if hits else ""


def hdri_paths() -> dict:
    paths = sorted(glob.glob(os.path.join(bpy_datafiles(), "studiolights", "world", "*.exr")))
    return {os.path.splitext(os.path.basename(p))[0]: p for p in paths}


def export_photos(dirname: str) -> list:
    """Save the photographs that ship with scikit-image as PNG textures."""
    import skimage.data as skd
    out = []
    for name in PHOTO_NAMES:
        path = os.path.join(dirname, name + ".png")
        if not os.path.exists(path):
            try:
                img = np.asarray(getattr(skd, name)())
            except Exception:  # not bundled / needs a download: skip it
                continue
            if img.dtype != np.uint8:
                img = img.astype(np.float64)
                img = (255 * (img - img.min()) / max(1e-9, np.ptp(img))).astype(np.uint8)
            if img.ndim == 2:
                img = np.stack([img] * 3, -1)
            img = img[..., :3]
            cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        out.append(path)
    return out


# --------------------------------------------------------------------------- helpers

def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def rand_color(rng, sat=(0.0, 0.7), val=(0.15, 0.9)):
    h = rng.random()
    s = rng.uniform(*sat) if rng.random() < 0.8 else rng.uniform(0.6, 1.0)
    v = rng.uniform(*val)
    return tuple(srgb_to_linear(colorsys.hsv_to_rgb(h, s, v))) + (1.0,)


def mesh_from_polys(name, verts, polys, smooth=False):
    """verts (N,3); polys: list of index sequences (any size)."""
    me = bpy.data.meshes.new(name)
    verts = np.asarray(verts, np.float32).reshape(-1, 3)
    sizes = np.fromiter((len(p) for p in polys), np.int32, len(polys))
    loops = np.concatenate([np.asarray(p, np.int32) for p in polys])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    me.vertices.add(len(verts))
    me.vertices.foreach_set("co", verts.ravel())
    me.loops.add(len(loops))
    me.loops.foreach_set("vertex_index", loops)
    me.polygons.add(len(polys))
    me.polygons.foreach_set("loop_start", starts)
    me.update(calc_edges=True)
    if smooth:
        me.shade_smooth()
    return me


def grid_polys(nu, nv, wrap_u, wrap_v):
    """Quad indices for a (nu, nv) vertex grid, index = i * nv + j."""
    iu = np.arange(nu if wrap_u else nu - 1)
    iv = np.arange(nv if wrap_v else nv - 1)
    ii, jj = np.meshgrid(iu, iv, indexing="ij")
    ii2, jj2 = (ii + 1) % nu, (jj + 1) % nv
    q = np.stack([ii * nv + jj, ii2 * nv + jj, ii2 * nv + jj2, ii * nv + jj2], -1).reshape(-1, 4)
    return list(q)


def lathe_mesh(name, radii, zs, seg=24, caps=True):
    """Surface of revolution around z; radii/zs describe the profile bottom-up."""
    t = np.linspace(0, 2 * np.pi, seg, endpoint=False)
    radii, zs = np.asarray(radii, float), np.asarray(zs, float)
    P = np.stack([np.outer(radii, np.cos(t)), np.outer(radii, np.sin(t)),
                  np.repeat(zs[:, None], seg, 1)], -1)  # (nprof, seg, 3)
    polys = grid_polys(len(radii), seg, False, True)
    n = len(radii) * seg
    verts = P.reshape(-1, 3)
    if caps:
        polys.append(list(range(seg - 1, -1, -1)))
        polys.append(list(range(n - seg, n)))
    return mesh_from_polys(name, verts, polys, smooth=True)


def capsule_verts(r, length, rings=5):
    """Profile of a capsule along +z from 0 to length (caps included)."""
    a = np.linspace(-np.pi / 2, 0, rings)
    rad = np.concatenate([r * np.cos(a), r * np.cos(a[::-1])])
    z = np.concatenate([r + r * np.sin(a), length - r + r * np.sin(-a[::-1])])
    if length < 2 * r:
        z = np.clip(z, 0, length)
    rad[0] = rad[-1] = 1e-4
    return rad, z


def segment_matrix(p0, p1):
    p0, p1 = Vector(p0), Vector(p1)
    d = p1 - p0
    q = Vector((0, 0, 1)).rotation_difference(d.normalized()) if d.length > 1e-9 else Quaternion()
    return Matrix.Translation(p0) @ q.to_matrix().to_4x4()


def blob_mesh(name, rng, radius, amp=0.25, subdiv=3, scale=(1, 1, 1)):
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=subdiv, radius=1.0)
    me = bpy.data.meshes.new(name)
    bm.to_mesh(me)
    bm.free()
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    disp = np.zeros(len(co))
    for _k in range(int(rng.integers(3, 7))):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        f = rng.uniform(1.0, 4.0)
        disp += rng.uniform(0.3, 1.0) / f * np.sin(f * co @ d + rng.uniform(0, 6.3))
    disp = 1 + amp * disp / max(1e-6, np.abs(disp).max())
    co = co * disp[:, None] * radius * np.asarray(scale)
    me.vertices.foreach_set("co", co.astype(np.float32).ravel())
    me.update()
    me.shade_smooth()
    return me


def box_mesh(name, sx, sy, sz, z0=0.0):
    """Axis-aligned box centred on x/y, from z0 to z0+sz."""
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.0)
    bmesh.ops.scale(bm, vec=(sx, sy, sz), verts=bm.verts)
    bmesh.ops.translate(bm, vec=(0, 0, z0 + sz / 2), verts=bm.verts)
    me = bpy.data.meshes.new(name)
    bm.to_mesh(me)
    bm.free()
    return me


def cyl_mesh(name, r, h, seg=16, r2=None):
    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, segments=seg, radius1=r,
                          radius2=r if r2 is None else r2, depth=h)
    bmesh.ops.translate(bm, vec=(0, 0, h / 2), verts=bm.verts)
    me = bpy.data.meshes.new(name)
    bm.to_mesh(me)
    bm.free()
    for p in me.polygons:
        p.use_smooth = len(p.vertices) == 4
    return me


def torus_mesh(name, R, r, nu=32, nv=12):
    u = np.linspace(0, 2 * np.pi, nu, endpoint=False)[:, None]
    v = np.linspace(0, 2 * np.pi, nv, endpoint=False)[None, :]
    P = np.stack([(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u),
                  r * np.sin(v) + 0 * u], -1)
    return mesh_from_polys(name, P.reshape(-1, 3), grid_polys(nu, nv, True, True), smooth=True)


# --------------------------------------------------------------------------- scene builder

class SceneBuilder:
    def __init__(self, rng, photos, hdris):
        self.rng = rng
        self.photos = photos
        self.hdris = hdris
        self.scene = bpy.context.scene
        self.next_index = FIRST_THING_INDEX
        self.salient = []          # pass indices of clutter things
        self.footprints = []       # (x, y, radius) of placed things
        self.materials = []
        self.cam_xy = (0.0, 0.0)
        self.keepout = []          # (x0, y0, x1, y1, width): corridor segments

    # ---------------------------------------------------------------- materials
    def _ramp(self, nt, fac_socket, n=None):
        rng = self.rng
        ramp = nt.nodes.new("ShaderNodeValToRGB")
        nt.links.new(fac_socket, ramp.inputs["Fac"])
        els = ramp.color_ramp.elements
        els[0].position = rng.uniform(0.0, 0.4)
        els[1].position = rng.uniform(0.6, 1.0)
        base = rand_color(rng)
        els[0].color = base
        els[1].color = tuple(np.clip(np.array(base) * rng.uniform(0.3, 2.5, 4), 0, 1)[:3]) + (1,) \
            if rng.random() < 0.5 else rand_color(rng)
        if rng.random() < 0.4:
            e = els.new(rng.uniform(els[0].position, els[1].position))
            e.color = rand_color(rng)
        return ramp.outputs["Color"]

    def make_material(self, kind=None, color=None, scale=None):
        rng = self.rng
        mat = bpy.data.materials.new("mat")
        mat.use_nodes = True
        nt = mat.node_tree
        bsdf = nt.nodes["Principled BSDF"]
        kinds = ("flat", "noise", "musgrave", "voronoi", "wave", "brick", "checker",
                 "magic", "image", "image")
        kind = kind or kinds[int(rng.integers(len(kinds)))]
        if kind == "image" and not self.photos:
            kind = "noise"
        tc = nt.nodes.new("ShaderNodeTexCoord")
        mp = nt.nodes.new("ShaderNodeMapping")
        nt.links.new(tc.outputs["Object"], mp.inputs["Vector"])
        s = scale if scale is not None else math.exp(rng.uniform(math.log(0.3), math.log(4.0)))
        mp.inputs["Scale"].default_value = (s, s, s)
        mp.inputs["Rotation"].default_value = tuple(rng.uniform(0, 6.3, 3))
        mp.inputs["Location"].default_value = tuple(rng.uniform(-5, 5, 3))
        vec = mp.outputs["Vector"]
        col = None
        if kind == "flat":
            bsdf.inputs["Base Color"].default_value = color or rand_color(rng)
        elif kind in ("noise", "musgrave"):
            tx = nt.nodes.new("ShaderNodeTexNoise")
            if kind == "musgrave":
                tx.noise_type = str(rng.choice(["MULTIFRACTAL", "RIDGED_MULTIFRACTAL",
                                                "HYBRID_MULTIFRACTAL", "HETERO_TERRAIN"]))
            tx.inputs["Scale"].default_value = rng.uniform(1, 12)
            tx.inputs["Detail"].default_value = rng.uniform(0, 8)
            tx.inputs["Roughness"].default_value = rng.uniform(0.3, 0.7)
            tx.inputs["Distortion"].default_value = rng.uniform(0, 1.5) if rng.random() < 0.3 else 0
            nt.links.new(vec, tx.inputs["Vector"])
            fac = tx.outputs["Fac"]
            if kind == "musgrave":  # unnormalised output: squash into 0..1
                m = nt.nodes.new("ShaderNodeMath")
                m.operation = "FRACT" if rng.random() < 0.2 else "SMOOTH_MIN"
                if m.operation == "SMOOTH_MIN":
                    m.inputs[1].default_value = 1.0
                    m.inputs[2].default_value = 0.3
                nt.links.new(fac, m.inputs[0])
                fac = m.outputs[0]
            col = self._ramp(nt, fac)
        elif kind == "voronoi":
            tx = nt.nodes.new("ShaderNodeTexVoronoi")
            tx.feature = str(rng.choice(["F1", "F2", "SMOOTH_F1", "DISTANCE_TO_EDGE"]))
            tx.inputs["Scale"].default_value = rng.uniform(2, 15)
            nt.links.new(vec, tx.inputs["Vector"])
            use_color = tx.feature != "DISTANCE_TO_EDGE" and rng.random() < 0.3
            col = tx.outputs["Color"] if use_color else self._ramp(nt, tx.outputs["Distance"])
        elif kind == "wave":
            tx = nt.nodes.new("ShaderNodeTexWave")
            tx.wave_type = str(rng.choice(["BANDS", "RINGS"]))
            tx.inputs["Scale"].default_value = rng.uniform(1, 8)
            tx.inputs["Distortion"].default_value = rng.uniform(0, 10)
            tx.inputs["Detail"].default_value = rng.uniform(0, 4)
            nt.links.new(vec, tx.inputs["Vector"])
            col = self._ramp(nt, tx.outputs["Fac"])
        elif kind == "brick":
            tx = nt.nodes.new("ShaderNodeTexBrick")
            tx.inputs["Color1"].default_value = rand_color(rng)
            tx.inputs["Color2"].default_value = rand_color(rng)
            tx.inputs["Mortar"].default_value = rand_color(rng, val=(0.3, 0.9))
            tx.inputs["Scale"].default_value = rng.uniform(2, 8)
            nt.links.new(vec, tx.inputs["Vector"])
            col = tx.outputs["Color"]
        elif kind == "checker":
            tx = nt.nodes.new("ShaderNodeTexChecker")
            tx.inputs["Color1"].default_value = rand_color(rng)
            tx.inputs["Color2"].default_value = rand_color(rng)
            tx.inputs["Scale"].default_value = rng.uniform(1, 10)
            nt.links.new(vec, tx.inputs["Vector"])
            col = tx.outputs["Color"]
        elif kind == "magic":
            tx = nt.nodes.new("ShaderNodeTexMagic")
            tx.turbulence_depth = int(rng.integers(1, 4))
            tx.inputs["Scale"].default_value = rng.uniform(1, 6)
            nt.links.new(vec, tx.inputs["Vector"])
            col = tx.outputs["Color"]
            if rng.random() < 0.7:  # desaturate: magic is garish
                hsv = nt.nodes.new("ShaderNodeHueSaturation")
                hsv.inputs["Saturation"].default_value = rng.uniform(0.1, 0.6)
                nt.links.new(col, hsv.inputs["Color"])
                col = hsv.outputs["Color"]
        elif kind == "image":
            tx = nt.nodes.new("ShaderNodeTexImage")
            path = self.photos[int(rng.integers(len(self.photos)))]
            tx.image = bpy.data.images.load(path, check_existing=True)
            tx.projection = "BOX"
            tx.projection_blend = 0.2
            mp.inputs["Scale"].default_value = (s * 0.5,) * 3
            nt.links.new(vec, tx.inputs["Vector"])
            col = tx.outputs["Color"]
        if col is not None and rng.random() < 0.25:  # grime / tint
            mix = nt.nodes.new("ShaderNodeMix")
            mix.data_type = "RGBA"
            mix.blend_type = "MULTIPLY"
            nz = nt.nodes.new("ShaderNodeTexNoise")
            nz.inputs["Scale"].default_value = rng.uniform(0.5, 4)
            nt.links.new(vec, nz.inputs["Vector"])
            nt.links.new(nz.outputs["Fac"], mix.inputs["Factor"])
            nt.links.new(col, mix.inputs["A"])
            mix.inputs["B"].default_value = rand_color(rng, val=(0.4, 1.0))
            col = mix.outputs["Result"]
        if col is not None:
            nt.links.new(col, bsdf.inputs["Base Color"])
        bsdf.inputs["Roughness"].default_value = rng.uniform(0.25, 1.0)
        if rng.random() < 0.08:
            bsdf.inputs["Metallic"].default_value = rng.uniform(0.6, 1.0)
            bsdf.inputs["Roughness"].default_value = rng.uniform(0.15, 0.5)
        return mat

    def pool_material(self):
        """Reuse a small pool of materials (fewer shaders to compile)."""
        if len(self.materials) < 10 or self.rng.random() < 0.25:
            self.materials.append(self.make_material())
        return self.materials[int(self.rng.integers(len(self.materials)))]

    # ---------------------------------------------------------------- objects
    def add(self, data, mat=None, matrix=None, parent=None, index=0, name="obj"):
        ob = bpy.data.objects.new(name, data)
        self.scene.collection.objects.link(ob)
        if mat is not None and hasattr(data, "materials"):
            data.materials.append(mat)
        if matrix is not None:
            ob.matrix_basis = matrix
        if parent is not None:
            ob.parent = parent
        ob.pass_index = index
        return ob

    def group(self, name="grp"):
        e = bpy.data.objects.new(name, None)
        self.scene.collection.objects.link(e)
        return e

    def place(self, grp, x, y, z, yaw, scale=1.0):
        grp.matrix_basis = (Matrix.Translation((x, y, z)) @ Matrix.Rotation(yaw, 4, "Z")
                            @ Matrix.Scale(scale, 4))

    def settle(self, grp, idx, x, y, z, yaw, fp, salient):
        """Keep a placed thing: its footprint, and whether it may be the mask's subject."""
        self.place(grp, x, y, z, yaw)
        self.footprints.append((x, y, fp))
        if salient:
            self.salient.append(idx)
        self.next_index += 1

    def discard(self, grp, idx):
        """Delete a thing that found no free spot."""
        for ob in [o for o in self.scene.objects if o.pass_index == idx]:
            bpy.data.objects.remove(ob)
        bpy.data.objects.remove(grp)

    def free_spot(self, x, y, r):
        cx, cy = self.cam_xy
        if math.hypot(x - cx, y - cy) < r + 0.6:
            return False
        for (fx, fy, fr) in self.footprints:
            if math.hypot(x - fx, y - fy) < r + fr:
                return False
        for (x0, y0, x1, y1, w) in self.keepout:
            d = np.array([x1 - x0, y1 - y0])
            t = np.clip(np.dot([x - x0, y - y0], d) / max(1e-9, d @ d), 0, 1)
            if math.hypot(x - (x0 + t * d[0]), y - (y0 + t * d[1])) < r + w:
                return False
        return True

    # ---------------------------------------------------------------- things
    # each returns (group_empty, footprint_radius); built at origin, z=0 is its base
    def thing(self, kind, index, outdoor=False):
        rng, g = self.rng, self.group(kind)
        m = self.pool_material
        if kind == "box":
            sx, sy, sz = rng.uniform(0.2, 1.5, 3) * [1, 1, 1.2]
            self.add(box_mesh("box", sx, sy, sz), m(), parent=g, index=index)
            return g, 0.5 * math.hypot(sx, sy)
        if kind == "stack":
            z, rmax = 0.0, 0.3
            for _k in range(int(rng.integers(2, 5))):
                sx, sy, sz = rng.uniform(0.25, 0.8, 3)
                mat = Matrix.Translation((*rng.uniform(-0.08, 0.08, 2), z)) @ \
                    Matrix.Rotation(rng.uniform(-0.4, 0.4), 4, "Z")
                self.add(box_mesh("sbox", sx, sy, sz), m(), mat, g, index)
                z += sz
                rmax = max(rmax, 0.5 * math.hypot(sx, sy))
            return g, rmax
        if kind == "pole":
            r, h = rng.uniform(0.015, 0.07), rng.uniform(1.0, 4.0)
            self.add(cyl_mesh("pole", r, h, 12), m(), parent=g, index=index)
            if rng.random() < 0.5:  # sign / lamp on top
                if rng.random() < 0.5:
                    self.add(box_mesh("sign", rng.uniform(0.3, 0.9), 0.03, rng.uniform(0.2, 0.6)),
                             m(), Matrix.Translation((0, 0, h * 0.8)), g, index)
                else:
                    self.add(cyl_mesh("shade", 0.2, 0.25, 16, 0.06), m(),
                             Matrix.Translation((0, 0, h)), g, index)
            return g, 0.25
        if kind == "blob":
            r = rng.uniform(0.15, 0.8)
            sc = (1, rng.uniform(0.6, 1.3), rng.uniform(0.5, 1.5))
            self.add(blob_mesh("blob", rng, r, rng.uniform(0.1, 0.4), scale=sc), m(),
                     Matrix.Translation((0, 0, r * sc[2] * 0.85)), g, index)
            return g, r * 1.2
        if kind == "rock":
            r = rng.uniform(0.2, 1.5)
            self.add(blob_mesh("rock", rng, r, 0.35, 2, (1, rng.uniform(0.6, 1.2), rng.uniform(0.3, 0.8))),
                     m(), Matrix.Translation((0, 0, r * 0.1)), g, index)
            return g, r
        if kind == "torus":
            R = rng.uniform(0.2, 0.6)
            r = R * rng.uniform(0.15, 0.45)
            upright = rng.random() < 0.6
            mat = Matrix.Translation((0, 0, R + r if upright else r)) @ \
                (Matrix.Rotation(math.pi / 2, 4, "X") if upright else Matrix())
            self.add(torus_mesh("torus", R, r), m(), mat, g, index)
            return g, R + r
        if kind == "text":
            cu = bpy.data.curves.new("txt", "FONT")
            cu.body = str(rng.choice(WORDS))
            cu.size = rng.uniform(0.2, 0.8)
            cu.extrude = rng.uniform(0.01, 0.08)
            cu.align_x = "CENTER"
            mat = Matrix.Translation((0, 0, cu.extrude + rng.uniform(0, 1.0))) @ \
                Matrix.Rotation(math.pi / 2, 4, "X")
            self.add(cu, m(), mat, g, index)
            return g, cu.size * len(cu.body) * 0.35
        if kind == "table":
            w, d, h = rng.uniform(0.6, 1.8), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.0)
            t = rng.uniform(0.02, 0.06)
            mt, ml = m(), m()
            self.add(box_mesh("top", w, d, t, h - t), mt, parent=g, index=index)
            lr = rng.uniform(0.015, 0.04)
            for sx in (-1, 1):
                for sy in (-1, 1):
                    self.add(cyl_mesh("leg", lr, h - t, 8), ml,
                             Matrix.Translation((sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), 0)), g, index)
            if rng.random() < 0.6:  # something on the table
                kind2 = str(rng.choice(["blob", "box", "torus"]))
                sub, _ = self.thing(kind2, index)
                sub.parent = g
                sub.matrix_basis = Matrix.Translation((*rng.uniform(-0.2, 0.2, 2), h)) @ \
                    Matrix.Scale(rng.uniform(0.3, 0.6), 4)
            return g, 0.5 * math.hypot(w, d)
        if kind == "chair":
            s = rng.uniform(0.4, 0.55)
            h = rng.uniform(0.4, 0.5)
            ms = m()
            self.add(box_mesh("seat", s, s, 0.05, h), ms, parent=g, index=index)
            self.add(box_mesh("back", s, 0.04, rng.uniform(0.3, 0.6), h + 0.05), ms,
                     Matrix.Translation((0, s / 2 - 0.02, 0)), g, index)
            for sx in (-1, 1):
                for sy in (-1, 1):
                    self.add(cyl_mesh("leg", 0.02, h, 8), ms,
                             Matrix.Translation((sx * (s / 2 - 0.03), sy * (s / 2 - 0.03), 0)), g, index)
            return g, s * 0.75
        if kind == "shelf":
            w, d, h = rng.uniform(0.6, 2.0), rng.uniform(0.25, 0.5), rng.uniform(0.8, 2.2)
            mat, t = m(), 0.03
            for sx in (-1, 1):
                self.add(box_mesh("side", t, d, h), mat, Matrix.Translation((sx * (w / 2 - t / 2), 0, 0)), g, index)
            if rng.random() < 0.7:
                self.add(box_mesh("backp", w, 0.01, h), mat, Matrix.Translation((0, d / 2, 0)), g, index)
            nb = int(rng.integers(3, 6))
            for k in range(nb):
                z = k * (h - t) / (nb - 1)
                self.add(box_mesh("board", w - 2 * t, d, t, z), mat, parent=g, index=index)
                if k < nb - 1:
                    x = -w / 2 + t + 0.02
                    while x < w / 2 - 0.1 and rng.random() < 0.85:  # books / objects
                        bw = rng.uniform(0.02, 0.12)
                        bh = min(rng.uniform(0.1, 0.35), (h - t) / (nb - 1) - t - 0.01)
                        self.add(box_mesh("book", bw, d * rng.uniform(0.5, 0.9), bh, z + t),
                                 m(), Matrix.Translation((x + bw / 2, 0, 0)), g, index)
                        x += bw + (rng.uniform(0.0, 0.3) if rng.random() < 0.2 else 0.002)
            return g, 0.5 * math.hypot(w, d)
        if kind == "plant":
            pr = rng.uniform(0.1, 0.3)
            ph = pr * rng.uniform(0.8, 1.8)
            self.add(lathe_mesh("pot", [pr * 0.7, pr, pr * 1.05, pr * 0.95], [0, ph * 0.9, ph, ph]),
                     m(), parent=g, index=index)
            leaf_mat = self.make_material("noise" if rng.random() < 0.5 else "flat",
                                          color=rand_color(rng, (0.4, 0.9), (0.1, 0.5)))
            leaf_mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = \
                tuple(srgb_to_linear(colorsys.hsv_to_rgb(rng.uniform(0.2, 0.4), rng.uniform(0.4, 0.9),
                                                         rng.uniform(0.15, 0.5)))) + (1,)
            stem_mat = m()
            hmax = 0.0
            for _k in range(int(rng.integers(3, 9))):
                ln = rng.uniform(0.2, 1.0) * pr * 4
                tilt, az = rng.uniform(0, 0.7), rng.uniform(0, 6.3)
                rot = Matrix.Rotation(az, 4, "Z") @ Matrix.Rotation(tilt, 4, "X")
                base = Matrix.Translation((0, 0, ph * 0.9)) @ rot
                self.add(cyl_mesh("stem", 0.008, ln, 6), stem_mat, base, g, index)
                leaf = blob_mesh("leaf", rng, 1.0, 0.05, 2,
                                 (rng.uniform(0.05, 0.12), rng.uniform(0.02, 0.05), 0.004))
                self.add(leaf, leaf_mat, base @ Matrix.Translation((0, 0, ln)) @
                         Matrix.Rotation(rng.uniform(-1, 1), 4, "Y") @ Matrix.Scale(pr * 3, 4), g, index)
                hmax = max(hmax, ln)
            return g, pr + 0.3 * hmax
        if kind == "vase":
            n = int(rng.integers(4, 8))
            h = rng.uniform(0.2, 1.0)
            zs = np.linspace(0, h, n)
            rs = np.abs(rng.uniform(0.3, 1.0, n)) * h * rng.uniform(0.2, 0.5)
            rs = np.convolve(np.pad(rs, 1, mode="edge"), [0.25, 0.5, 0.25], "valid")
            self.add(lathe_mesh("vase", rs, zs, 32), m(), parent=g, index=index)
            return g, rs.max()
        if kind == "tree":
            h = rng.uniform(2.5, 12.0)
            tr = h * rng.uniform(0.015, 0.04)
            self.add(cyl_mesh("trunk", tr, h * 0.7, 10, tr * 0.6), self.make_material("noise", scale=2),
                     parent=g, index=index)
            crown = self.make_material("musgrave" if rng.random() < 0.5 else "voronoi", scale=1.5)
            crown.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value = 0.9
            cr = h * rng.uniform(0.15, 0.3)
            conifer = rng.random() < 0.3
            for k in range(int(rng.integers(1, 4))):
                if conifer:
                    self.add(cyl_mesh("cone", cr * (1 - 0.25 * k), h * 0.4, 12, 0.02), crown,
                             Matrix.Translation((0, 0, h * (0.3 + 0.2 * k))), g, index)
                else:
                    off = rng.uniform(-0.4, 0.4, 3) * cr
                    self.add(blob_mesh("crown", rng, cr * rng.uniform(0.7, 1.1), 0.3, 2), crown,
                             Matrix.Translation((off[0], off[1], h * 0.7 + off[2])), g, index)
            return g, cr
        if kind == "car":
            L, W = rng.uniform(3.6, 4.8), rng.uniform(1.6, 1.9)
            body = m()
            self.add(box_mesh("body", W, L, 0.7, 0.3), body, parent=g, index=index)
            self.add(box_mesh("cabin", W * 0.9, L * 0.5, 0.5, 1.0), body,
                     Matrix.Translation((0, rng.uniform(-0.3, 0.3), 0)), g, index)
            tyre = self.make_material("flat", color=(0.02, 0.02, 0.02, 1))
            for sx in (-1, 1):
                for sy in (-1, 1):
                    self.add(cyl_mesh("wheel", 0.33, 0.22, 16), tyre,
                             Matrix.Translation((sx * (W / 2 - 0.1), sy * L * 0.32, 0.33)) @
                             Matrix.Rotation(math.pi / 2, 4, "Y") @ Matrix.Translation((0, 0, -0.11)), g, index)
            return g, L / 2
        raise ValueError(kind)

    # ---------------------------------------------------------------- subjects
    def human(self, g, index, metaball):
        rng = self.rng
        H = rng.uniform(1.0, 1.4) if rng.random() < 0.15 else rng.uniform(1.5, 1.95)
        segs = []  # (p0, p1, r, part)
        hip_z, sh_z = 0.53 * H, 0.81 * H
        lean = rng.uniform(-0.08, 0.08)
        segs.append(((0, 0, hip_z), (0, lean * H, sh_z), 0.095 * H, "torso"))
        segs.append(((0, lean * H, sh_z), (0, lean * H * 1.1, 0.88 * H), 0.03 * H, "skin"))
        walk = rng.uniform(0, 0.45) if rng.random() < 0.5 else 0.0
        for side in (-1, 1):
            hip = np.array((side * 0.055 * H, 0, hip_z))
            sw = side * walk
            spread = rng.uniform(0, 0.15)
            d1 = np.array((side * math.sin(spread), math.sin(sw), -math.cos(sw)))
            knee = hip + 0.245 * H * d1 / np.linalg.norm(d1)
            bend = rng.uniform(0, 0.3)
            d2 = np.array((d1[0], math.sin(sw - bend), -math.cos(sw - bend)))
            ankle = knee + 0.245 * H * d2 / np.linalg.norm(d2)
            segs.append((tuple(hip), tuple(knee), 0.055 * H, "legs"))
            segs.append((tuple(knee), tuple(ankle), 0.04 * H, "legs"))
            segs.append((tuple(ankle), tuple(ankle + (0, -0.12 * H, 0)), 0.028 * H, "shoes"))
            sh = np.array((side * 0.15 * H, lean * H * 0.9, sh_z - 0.02 * H))
            ab, fw = rng.uniform(0.05, 1.3), rng.uniform(-0.5, 1.4)
            d1 = np.array((side * math.sin(ab), -math.sin(fw) * math.cos(ab), -math.cos(fw) * math.cos(ab)))
            elbow = sh + 0.17 * H * d1 / np.linalg.norm(d1)
            eb = rng.uniform(0, 1.6)
            d2 = d1 * math.cos(eb) + np.array((0, -1, 0.3)) * math.sin(eb)
            wrist = elbow + 0.15 * H * d2 / np.linalg.norm(d2)
            sleeve = "torso" if rng.random() < 0.6 else "skin"
            segs.append((tuple(sh), tuple(elbow), 0.036 * H, sleeve))
            segs.append((tuple(elbow), tuple(wrist), 0.03 * H, sleeve if rng.random() < 0.5 else "skin"))
            segs.append((tuple(wrist), tuple(wrist + 0.06 * H * d2 / np.linalg.norm(d2)), 0.026 * H, "skin"))
        head_c = np.array((0, lean * H * 1.15, 0.935 * H))
        hr = 0.062 * H
        minz = min(min(p0[2], p1[2]) - r for p0, p1, r, _ in segs)
        lift = -minz
        skin = self.make_material("flat", color=tuple(srgb_to_linear(
            np.clip(np.array(SKIN_SRGB[int(rng.integers(len(SKIN_SRGB)))]) * rng.uniform(0.9, 1.1), 0, 1))) + (1,))
        skin.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value = 0.6
        mats = {"skin": skin, "torso": self.make_material(), "legs": self.make_material(),
                "shoes": self.make_material("flat", color=rand_color(self.rng, val=(0.02, 0.4)))}
        if metaball:
            mb = bpy.data.metaballs.new("figure")
            mb.resolution = mb.render_resolution = 0.012 * H
            mb.threshold = 0.6
            for p0, p1, r, _part in segs:
                p0, p1 = np.array(p0) + (0, 0, lift), np.array(p1) + (0, 0, lift)
                e = mb.elements.new(type="CAPSULE")
                e.co = tuple((p0 + p1) / 2)
                e.radius = r * 1.6
                e.size_x = np.linalg.norm(p1 - p0) / 2
                e.rotation = Vector((1, 0, 0)).rotation_difference(Vector(p1 - p0).normalized())
            e = mb.elements.new(type="ELLIPSOID")
            e.co = tuple(head_c + (0, 0, lift))
            e.radius = hr * 1.6
            e.size_x, e.size_y, e.size_z = 0.9, 1.0, 1.15
            self.add(mb, mats["torso"], parent=g, index=index, name="figure")
        else:
            for p0, p1, r, part in segs:
                p0, p1 = np.array(p0) + (0, 0, lift), np.array(p1) + (0, 0, lift)
                L = float(np.linalg.norm(p1 - p0))
                rad, z = capsule_verts(r, max(L, 2 * r))
                me = lathe_mesh(part, rad, z - (max(L, 2 * r) - L) / 2, 16, caps=False)
                mtx = segment_matrix(p0, p1)
                if part == "torso":  # flatten front-to-back
                    mtx = mtx @ Matrix.Diagonal((1.0, 0.6, 1.0, 1.0))
                self.add(me, mats[part], mtx, g, index)
            me = blob_mesh("head", rng, hr, 0.03, 3, (0.85, 0.95, 1.15))
            self.add(me, skin, Matrix.Translation(tuple(head_c + (0, 0, lift))), g, index)
            if rng.random() < 0.6:  # hair cap
                hair = self.make_material("noise", scale=8)
                hair.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value = 0.8
                me = blob_mesh("hair", rng, hr * 1.08, 0.06, 3, (0.9, 1.0, 1.05))
                self.add(me, hair, Matrix.Translation(tuple(head_c + (0, hr * 0.15, lift + hr * 0.2))),
                         g, index)
        return H, 0.3 * H

    def subject(self, index, outdoor):
        """Builds the subject at the origin; returns (group, height, footprint)."""
        rng = self.rng
        g = self.group("subject")
        r = rng.random()
        if r < 0.62:
            H, fp = self.human(g, index, metaball=rng.random() < 0.35)
            return g, H, fp, "human"
        kinds = ["chair", "vase", "plant", "blob", "stack", "torus", "table", "animal", "pole"]
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "animal":
            L = rng.uniform(0.4, 1.6)
            body = self.make_material()
            legh = L * rng.uniform(0.3, 0.6)
            self.add(blob_mesh("body", rng, L / 2, 0.08, 3, (0.45, 1.0, 0.45)), body,
                     Matrix.Translation((0, 0, legh + 0.2 * L)), g, index)
            for sx in (-1, 1):
                for sy in (-1, 1):
                    self.add(cyl_mesh("leg", 0.05 * L, legh + 0.2 * L, 8), body,
                             Matrix.Translation((sx * 0.12 * L, sy * 0.33 * L, 0)), g, index)
            hz = legh + 0.2 * L + rng.uniform(0.1, 0.4) * L
            self.add(blob_mesh("head", rng, 0.14 * L, 0.05, 2, (0.8, 1.2, 0.8)), body,
                     Matrix.Translation((0, -0.55 * L, hz)), g, index)
            self.add(cyl_mesh("tail", 0.02 * L, 0.3 * L, 6), body,
                     Matrix.Translation((0, 0.48 * L, legh + 0.25 * L)) @ Matrix.Rotation(2.2, 4, "X"), g, index)
            H, fp = hz + 0.15 * L, 0.5 * L
        else:
            sub, fp = self.thing(kind, index, outdoor)
            sub.parent = g
            s = 1.0
            if kind in ("vase", "blob", "torus"):
                s = rng.uniform(1.0, 2.0)
                sub.matrix_basis = Matrix.Scale(s, 4)
            H = 1.0 * s
            fp *= s
        return g, H, fp, kind


# --------------------------------------------------------------------------- scenes

def look_matrix(pos, yaw, pitch, roll):
    """Camera matrix: yaw about world z (0 looks along +y), pitch up, roll about view axis."""
    return (Matrix.Translation(pos) @ Matrix.Rotation(yaw, 4, "Z") @
            Matrix.Rotation(math.pi / 2 + pitch, 4, "X") @ Matrix.Rotation(roll, 4, "Z"))


def setup_render(scene, w, h, samples, seed):
    scene.render.engine = "CYCLES"
    cy = scene.cycles
    cy.device = "CPU"
    cy.samples = samples
    cy.use_adaptive_sampling = False
    cy.use_denoising = True
    cy.denoiser = "OPENIMAGEDENOISE"
    cy.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    cy.denoising_prefilter = "FAST"
    cy.max_bounces = 4
    cy.diffuse_bounces = 2
    cy.glossy_bounces = 1
    cy.transmission_bounces = 2
    cy.transparent_max_bounces = 4
    cy.volume_bounces = 0
    cy.caustics_reflective = cy.caustics_refractive = False
    cy.seed = seed
    cy.blur_glossy = 1.0
    scene.render.resolution_x, scene.render.resolution_y = w, h
    scene.render.resolution_percentage = 100
    scene.render.use_compositing = True
    scene.render.use_sequencer = False
    scene.render.film_transparent = False
    vl = scene.view_layers[0]
    vl.use_pass_z = True
    vl.use_pass_normal = True
    vl.use_pass_object_index = True
    vl.use_pass_combined = True


def setup_outputs(scene, outdir):
    """Compositor: Render Layers -> File Output, one 32-bit float RGB EXR per pass. Every pass
    but the image goes through Combine Color: 4.2 writes a lone float pass as a "V" channel,
    which OpenCV cannot read, and a vector as X/Y/Z. 5.0's compositor is a node group, its
    File Output has items and a file name, and a few nodes are the shader ones."""
    new_api = bpy.app.version >= (5, 0, 0)
    if new_api:
        nt = bpy.data.node_groups.new("depthdata passes", "CompositorNodeTree")
        scene.compositing_node_group = nt
    else:
        scene.use_nodes = True
        nt = scene.node_tree
        for n in list(nt.nodes):
            nt.nodes.remove(n)
    rl = nt.nodes.new("CompositorNodeRLayers")
    fo = nt.nodes.new("CompositorNodeOutputFile")
    if new_api:
        fo.format.media_type = "IMAGE"
        fo.directory, fo.file_name = outdir + os.sep, ""
        fo.file_output_items.clear()
    else:
        fo.base_path = outdir + os.sep
        fo.file_slots.clear()
    fo.format.file_format = "OPEN_EXR"
    fo.format.color_depth = "32"
    fo.format.color_mode = "RGB"
    fo.format.exr_codec = "ZIP"
    for name in ("Image", "Depth", "Normal", "IndexOB"):
        if new_api:
            fo.file_output_items.new("RGBA", name)
        else:
            fo.file_slots.new(name)
        src = rl.outputs["Object Index" if new_api and name == "IndexOB" else name]
        if name != "Image":
            comb = nt.nodes.new("CompositorNodeCombineColor")
            if name == "Normal":
                sep = nt.nodes.new("ShaderNodeSeparateXYZ" if new_api else "CompositorNodeSeparateXYZ")
                nt.links.new(src, sep.inputs[0])
                channels = sep.outputs[:3]
            else:
                channels = [src] * 3
            for i, channel in enumerate(channels):
                nt.links.new(channel, comb.inputs[i])
            src = comb.outputs[0]
        nt.links.new(src, fo.inputs[name])


def world_setup(b: SceneBuilder, kind):
    rng, scene = b.rng, b.scene
    w = bpy.data.worlds.new("world")
    scene.world = w
    w.use_nodes = True
    nt = w.node_tree
    bg = nt.nodes["Background"]
    names = {"room": ["interior", "studio", "courtyard"], "studio": ["studio", "interior", "city"],
             "nature": ["forest", "sunrise", "sunset", "courtyard", "city", "night"],
             "street": ["city", "courtyard", "sunset", "sunrise", "forest"]}[kind]
    names = [n for n in names if n in b.hdris]
    sun_dir = None
    if kind in ("nature", "street") and rng.random() < 0.35 or not names:
        sky = nt.nodes.new("ShaderNodeTexSky")
        # 5.0 renamed Nishita's model "MULTIPLE_SCATTERING" and its dust "aerosol"
        nishita = "NISHITA" in sky.bl_rna.properties["sky_type"].enum_items.keys()
        sky.sky_type = "NISHITA" if nishita else "MULTIPLE_SCATTERING"
        sky.sun_disc = False
        sky.sun_elevation = rng.uniform(0.05, 1.2)
        sky.sun_rotation = rng.uniform(0, 6.3)
        sky.air_density = rng.uniform(0.5, 3)
        setattr(sky, "dust_density" if nishita else "aerosol_density", rng.uniform(0, 5))
        nt.links.new(sky.outputs["Color"], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = rng.uniform(0.2, 0.5)
        sun_dir = (sky.sun_elevation, sky.sun_rotation)
        label = "nishita"
    else:
        label = names[int(rng.integers(len(names)))]
        env = nt.nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(b.hdris[label], check_existing=True)
        tc = nt.nodes.new("ShaderNodeTexCoord")
        mp = nt.nodes.new("ShaderNodeMapping")
        mp.inputs["Rotation"].default_value = (0, 0, rng.uniform(0, 6.3))
        nt.links.new(tc.outputs["Generated"], mp.inputs["Vector"])
        nt.links.new(mp.outputs["Vector"], env.inputs["Vector"])
        nt.links.new(env.outputs["Color"], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = rng.uniform(0.6, 1.6)
    # a small importance map: the default 1024 one costs ~1.5 s of CPU per render
    w.cycles.sampling_method = "MANUAL"
    w.cycles.sample_map_resolution = 128
    return label, sun_dir


def add_sun(b, sun_dir=None, strength=None):
    rng = b.rng
    la = bpy.data.lights.new("sun", "SUN")
    la.energy = strength if strength is not None else rng.uniform(1.5, 5.0)
    la.angle = rng.uniform(0.01, 0.2)
    la.color = tuple(srgb_to_linear(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.15), rng.uniform(0, 0.3), 1)))
    el, az = sun_dir if sun_dir else (rng.uniform(0.1, 1.3), rng.uniform(0, 6.3))
    ob = bpy.data.objects.new("sun", la)
    b.scene.collection.objects.link(ob)
    # sun shines along its -z; point it from direction (el, az) towards the origin
    d = Vector((math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)))
    ob.rotation_euler = d.to_track_quat("Z", "Y").to_euler()


def add_area(b, loc, size, energy):
    la = bpy.data.lights.new("area", "AREA")
    la.size = size
    la.energy = energy
    la.color = tuple(srgb_to_linear(colorsys.hsv_to_rgb(b.rng.uniform(0.05, 0.6), b.rng.uniform(0, 0.25), 1)))
    ob = bpy.data.objects.new("area", la)
    b.scene.collection.objects.link(ob)
    ob.location = loc


def subject_distance(rng, height, vfov, portrait):
    frac = rng.uniform(0.35, 0.95) if not portrait else rng.uniform(1.5, 3.0)
    return float(np.clip(height / (frac * 2 * math.tan(vfov / 2)), 0.7, 12.0))


def build_room(b, hfov, vfov, want_subject):
    rng = b.rng
    W, D, Hr = rng.uniform(3, 8), rng.uniform(3.5, 10), rng.uniform(2.4, 3.6)
    floor_m = b.make_material(str(rng.choice(["wave", "checker", "image", "noise", "voronoi", "brick"])))
    wall_m = b.make_material(str(rng.choice(["flat", "flat", "noise", "brick", "image", "musgrave", "checker"])))
    wall_m2 = b.make_material(str(rng.choice(["flat", "noise", "image", "wave"]))) if rng.random() < 0.4 else wall_m
    ceil_m = b.make_material("flat", color=rand_color(rng, (0, 0.1), (0.6, 0.95)))
    v = np.array([(0, 0, 0), (W, 0, 0), (W, D, 0), (0, D, 0), (0, 0, Hr), (W, 0, Hr), (W, D, Hr), (0, D, Hr)], float)
    for name, quad, mat in (("floor", (0, 1, 2, 3), floor_m), ("ceiling", (4, 7, 6, 5), ceil_m),
                            ("wall_s", (0, 4, 5, 1), wall_m2), ("wall_n", (3, 2, 6, 7), wall_m),
                            ("wall_w", (0, 3, 7, 4), wall_m), ("wall_e", (1, 5, 6, 2), wall_m2)):
        me = mesh_from_polys(name, v, [list(quad)])
        b.add(me, mat, index=STRUCT_INDEX, name=name)
    if rng.random() < 0.4:  # skirting / a door-ish panel / a picture on the far wall
        pic = b.make_material("image")
        pw, ph = rng.uniform(0.4, 1.5), rng.uniform(0.3, 1.2)
        b.add(box_mesh("picture", pw, 0.03, ph, 0), pic,
              Matrix.Translation((rng.uniform(pw, W - pw), D - 0.02, rng.uniform(0.9, 1.6))), index=STRUCT_INDEX)
    # camera near the south wall looking north-ish
    cx, cy = rng.uniform(0.6, W - 0.6), rng.uniform(0.3, min(2.0, D * 0.3))
    cz = rng.uniform(0.5, 1.9)
    yaw = rng.uniform(-0.6, 0.6)
    b.cam_xy = (cx, cy)
    subj = None
    pitch = rng.uniform(-0.35, 0.1)
    if want_subject:
        g, H, fp, skind = b.subject(SUBJECT_INDEX, False)
        if H < 1.2:  # small subject: a lower camera, not a steep look down
            cz = min(cz, H + rng.uniform(0.1, 0.8))
        portrait = skind == "human" and rng.random() < 0.25
        d = subject_distance(rng, H, vfov, portrait)
        ang = yaw + rng.uniform(-0.3, 0.3) * hfov
        sx = float(np.clip(cx - math.sin(ang) * d, fp + 0.1, W - fp - 0.1))
        sy = float(np.clip(cy + math.cos(ang) * d, cy + 0.7, D - fp - 0.1))
        b.place(g, sx, sy, 0, ang + math.pi + rng.uniform(-0.9, 0.9))
        dd = math.hypot(sx - cx, sy - cy)
        aim = H * (0.85 if portrait else rng.uniform(0.4, 0.7))
        pitch = math.atan2(aim - cz, dd) + rng.uniform(-0.3, 0.3) * vfov
        yaw = -math.atan2(sx - cx, sy - cy) + rng.uniform(-0.25, 0.25) * hfov
        b.footprints.append((sx, sy, fp))
        b.keepout.append((cx, cy, sx, sy, fp))
        subj = skind
    # furniture along walls, clutter inside
    kinds = ["box", "stack", "table", "chair", "shelf", "shelf", "plant", "vase", "blob", "pole", "torus", "text"]
    for _k in range(int(rng.integers(5, 14))):
        kind = kinds[int(rng.integers(len(kinds)))]
        idx = b.next_index
        g, fp = b.thing(kind, idx)
        for _attempt in range(12):
            if kind in ("shelf", "table", "box") and rng.random() < 0.7:  # against a wall
                wall = int(rng.integers(4))
                t = rng.uniform(fp, max(fp + 0.01, (W if wall % 2 == 0 else D) - fp))
                x, y, yw = [(t, D - fp, math.pi), (W - fp, t, math.pi / 2), (t, fp, 0), (fp, t, -math.pi / 2)][wall]
            elif 2 * fp > min(W, D):      # a thing wider than the room (the draw would fail)
                continue
            else:
                x, y, yw = rng.uniform(fp, W - fp), rng.uniform(fp, D - fp), rng.uniform(0, 6.3)
            if b.free_spot(x, y, fp):
                b.place(g, x, y, 0, yw)
                b.footprints.append((x, y, fp))
                b.salient.append(idx)
                b.next_index += 1
                break
        else:
            bpy.data.objects.remove(g)  # children stay unlinked-parentless: hide them
            for ob in [o for o in b.scene.objects if o.pass_index == idx]:
                bpy.data.objects.remove(ob)
    # lights
    for _k in range(int(rng.integers(1, 4))):
        add_area(b, (rng.uniform(0.5, W - 0.5), rng.uniform(0.5, D - 0.5), Hr - 0.05),
                 rng.uniform(0.5, 2.0), rng.uniform(150, 600))
    if rng.random() < 0.4:
        la = bpy.data.lights.new("pt", "POINT")
        la.energy = rng.uniform(50, 300)
        la.shadow_soft_size = rng.uniform(0.05, 0.5)
        ob = bpy.data.objects.new("pt", la)
        b.scene.collection.objects.link(ob)
        ob.location = (rng.uniform(0.3, W - 0.3), rng.uniform(0.3, D - 0.3), rng.uniform(0.5, Hr - 0.3))
    cz = min(cz, Hr - 0.3)
    b.room = (W, D, Hr)
    return (cx, cy, cz), yaw, pitch, subj


def build_studio(b, hfov, vfov, want_subject):
    """Backdrop wall (sometimes a corner) + floor; the subject stands in front."""
    rng = b.rng
    floor_m = b.make_material(str(rng.choice(["flat", "noise", "wave", "checker", "image"])))
    wall_m = b.make_material(str(rng.choice(["flat", "flat", "noise", "brick", "image", "voronoi"])))
    wd = rng.uniform(1.5, 6.0)  # wall distance from the camera
    S = 40.0
    v = np.array([(-S, -S, 0), (S, -S, 0), (S, S, 0), (-S, S, 0)], float)
    b.add(mesh_from_polys("floor", v, [[0, 1, 2, 3]]), floor_m, index=STRUCT_INDEX)
    ang = rng.uniform(-0.5, 0.5)
    wall = mesh_from_polys("wall", np.array([(-S, 0, 0), (S, 0, 0), (S, 0, S), (-S, 0, S)], float), [[0, 1, 2, 3]])
    b.add(wall, wall_m, Matrix.Rotation(ang, 4, "Z") @ Matrix.Translation((0, wd, 0)), index=STRUCT_INDEX)
    if rng.random() < 0.4:  # corner
        w2 = mesh_from_polys("wall2", np.array([(0, -S, 0), (0, S, 0), (0, S, S), (0, -S, S)], float), [[0, 1, 2, 3]])
        b.add(w2, b.make_material(), Matrix.Translation((rng.choice([-1, 1]) * rng.uniform(1, 4), 0, 0)),
              index=STRUCT_INDEX)
    cz = rng.uniform(0.6, 1.8)
    b.cam_xy = (0.0, 0.0)
    yaw, pitch, subj = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.1), None
    if want_subject:
        g, H, fp, skind = b.subject(SUBJECT_INDEX, False)
        if H < 1.2:  # small subject: a lower camera, not a steep look down
            cz = min(cz, H + rng.uniform(0.1, 0.8))
        portrait = skind == "human" and rng.random() < 0.3
        d = min(subject_distance(rng, H, vfov, portrait), wd - fp - 0.2)
        d = max(d, 0.7)
        sx = rng.uniform(-0.3, 0.3) * d * math.tan(hfov / 2)
        b.place(g, sx, d, 0, math.pi + rng.uniform(-0.8, 0.8))
        aim = H * (0.85 if portrait else rng.uniform(0.4, 0.7))
        pitch = math.atan2(aim - cz, d) + rng.uniform(-0.2, 0.2) * vfov
        yaw = -math.atan2(sx, d) + rng.uniform(-0.2, 0.2) * hfov
        b.footprints.append((sx, d, fp))
        b.keepout.append((0, 0, sx, d, fp))
        subj = skind
    kinds = ["box", "stack", "plant", "vase", "blob", "pole", "torus", "chair", "text"]
    for _k in range(int(rng.integers(1, 6))):
        kind = kinds[int(rng.integers(len(kinds)))]
        idx = b.next_index
        g, fp = b.thing(kind, idx)
        x, y = rng.uniform(-3, 3), rng.uniform(0.8, max(0.9, wd - fp))
        if not b.free_spot(x, y, fp):
            x, y = rng.uniform(-6, 6), rng.uniform(0.8, max(0.9, wd - fp))
        b.place(g, x, y, 0, rng.uniform(0, 6.3))
        b.footprints.append((x, y, fp))
        b.salient.append(idx)
        b.next_index += 1
    add_area(b, (rng.uniform(-3, 3), rng.uniform(-2, 1), rng.uniform(2, 4)), rng.uniform(1, 3), rng.uniform(300, 1500))
    if rng.random() < 0.6:
        add_area(b, (rng.uniform(-3, 3), rng.uniform(-2, 1), rng.uniform(1, 3)), rng.uniform(0.5, 2),
                 rng.uniform(100, 600))
    return (0.0, 0.0, cz), yaw, pitch, subj


class Heightfield:
    def __init__(self, rng, flat=False):
        self.waves = []
        amp_scale = 0.0 if flat else rng.uniform(0.2, 1.0)
        for wl in (160, 80, 40, 20, 10, 5):
            for _ in range(2):
                k = 2 * math.pi / wl
                a = rng.uniform(0, 6.3)
                self.waves.append((k * math.cos(a), k * math.sin(a), rng.uniform(0, 6.3),
                                   amp_scale * 0.02 * wl * rng.uniform(0.5, 1.0)))
        self.hill_amp = 0.0 if flat else rng.uniform(5, 50)
        self.hill_r0 = rng.uniform(40, 120)
        self.hill_waves = [(rng.normal(size=2) * 2 * math.pi / rng.uniform(60, 200), rng.uniform(0, 6.3))
                           for _ in range(4)]

    def __call__(self, x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        h = np.zeros(np.broadcast(x, y).shape)
        for kx, ky, ph, a in self.waves:
            h += a * np.sin(kx * x + ky * y + ph)
        r = np.hypot(x, y)
        t = np.clip((r - self.hill_r0) / 120.0, 0, 1)
        hill = sum(np.sin(k[0] * x + k[1] * y + ph) for k, ph in self.hill_waves) / 4 * 0.5 + 0.5
        return h + self.hill_amp * t * t * (3 - 2 * t) * (0.3 + hill)


def terrain(b, hf, R=450.0, n=221, mat=None):
    u = np.linspace(-1, 1, n)
    c = np.sign(u) * np.abs(u) ** 1.7 * R
    X, Y = np.meshgrid(c, c, indexing="ij")
    Z = hf(X, Y)
    me = mesh_from_polys("terrain", np.stack([X, Y, Z], -1).reshape(-1, 3), grid_polys(n, n, False, False),
                         smooth=True)
    b.add(me, mat, index=STRUCT_INDEX, name="terrain")


def scatter(b, hf, kinds, count, rmin, rmax, fov_bias, yaw):
    rng = b.rng
    for _k in range(count):
        kind = kinds[int(rng.integers(len(kinds)))]
        idx = b.next_index
        g, fp = b.thing(kind, idx, outdoor=True)
        for _attempt in range(10):
            r = math.exp(rng.uniform(math.log(rmin), math.log(rmax)))
            a = yaw + (rng.uniform(-0.8, 0.8) if rng.random() < fov_bias else rng.uniform(-math.pi, math.pi))
            x, y = -math.sin(a) * r, math.cos(a) * r
            if b.free_spot(x, y, fp):
                b.settle(g, idx, x, y, float(hf(x, y)) - 0.05, rng.uniform(0, 6.3), fp, r < 25)
                break
        else:
            b.discard(g, idx)


def outdoor_subject(b, hf, hfov, vfov, cz_rel, yaw):
    rng = b.rng
    g, H, fp, skind = b.subject(SUBJECT_INDEX, True)
    if H < 1.2:
        cz_rel = min(cz_rel, H + rng.uniform(0.1, 0.8))
    portrait = skind == "human" and rng.random() < 0.25
    d = subject_distance(rng, H, vfov, portrait)
    ang = yaw + rng.uniform(-0.3, 0.3) * hfov
    sx, sy = -math.sin(ang) * d, math.cos(ang) * d
    b.place(g, sx, sy, float(hf(sx, sy)) - 0.03, ang + math.pi + rng.uniform(-0.9, 0.9))
    b.footprints.append((sx, sy, fp))
    b.keepout.append((0, 0, sx, sy, fp))
    cz = float(hf(0, 0)) + cz_rel
    aim = float(hf(sx, sy)) + H * (0.85 if portrait else rng.uniform(0.4, 0.7))
    pitch = math.atan2(aim - cz, d) + rng.uniform(-0.2, 0.2) * vfov
    yaw = ang + rng.uniform(-0.2, 0.2) * hfov
    return pitch, yaw, skind, cz_rel


def build_nature(b, hfov, vfov, want_subject):
    rng = b.rng
    hf = Heightfield(rng)
    ground = b.make_material(str(rng.choice(["musgrave", "noise", "voronoi", "image"])), scale=rng.uniform(0.2, 1.0))
    terrain(b, hf, mat=ground)
    cz_rel = rng.uniform(0.4, 3.0) if rng.random() < 0.85 else rng.uniform(3, 12)
    yaw, pitch, subj = rng.uniform(0, 6.3), rng.uniform(-0.35, 0.12), None
    b.cam_xy = (0.0, 0.0)
    if want_subject:
        pitch, yaw, subj, cz_rel = outdoor_subject(b, hf, hfov, vfov, cz_rel, yaw)
    scatter(b, hf, ["tree", "tree", "rock", "rock", "blob", "pole", "plant", "stack", "torus", "text"],
            int(rng.integers(8, 20)), 1.5, 30, 0.8, yaw)
    scatter(b, hf, ["tree", "tree", "tree", "rock"], int(rng.integers(5, 30)), 25, 150, 0.9, yaw)
    b.ground = hf
    return (0.0, 0.0, float(hf(0, 0)) + cz_rel), yaw, pitch, subj


def build_street(b, hfov, vfov, want_subject):
    rng = b.rng
    hf = Heightfield(rng, flat=True)
    road = b.make_material(str(rng.choice(["noise", "musgrave", "checker", "brick", "image"])),
                           scale=rng.uniform(0.25, 1.0))
    terrain(b, hf, R=600, n=41, mat=road)
    sw = rng.uniform(6, 20)  # street width
    bmats = [b.make_material(str(rng.choice(["brick", "checker", "image", "noise", "flat", "wave"])),
                             scale=rng.uniform(0.05, 0.4)) for _ in range(4)]
    for side in (-1, 1):
        y = rng.uniform(-30, 0)
        while y < 400:
            w, d, h = rng.uniform(6, 30), rng.uniform(8, 25), math.exp(rng.uniform(math.log(4), math.log(80)))
            x = side * (sw / 2 + d / 2 + rng.uniform(0, 3))
            b.add(box_mesh("building", d, w, h), bmats[int(rng.integers(4))],
                  Matrix.Translation((x, y + w / 2, 0)), index=STRUCT_INDEX)
            y += w + (rng.uniform(1, 15) if rng.random() < 0.3 else 0.3)
    cx = rng.uniform(-sw / 2 + 1, sw / 2 - 1)
    b.cam_xy = (cx, 0.0)
    cz = rng.uniform(0.5, 2.5) if rng.random() < 0.85 else rng.uniform(3, 10)
    yaw, pitch, subj = rng.uniform(-0.5, 0.5), rng.uniform(-0.25, 0.2), None
    if want_subject:
        pitch, yaw, subj, cz = outdoor_subject(b, hf, hfov, vfov, cz, yaw)
        g = [o for o in b.scene.objects if o.name.startswith("subject")][0]
        g.location.x += cx
        fx, fy, fr = b.footprints[-1]
        b.footprints[-1] = (fx + cx, fy, fr)
        b.keepout[-1] = (cx, 0, fx + cx, fy, fr)
    kinds = ["pole", "pole", "car", "car", "box", "stack", "plant", "tree", "text", "blob"]
    for _k in range(int(rng.integers(5, 16))):
        kind = kinds[int(rng.integers(len(kinds)))]
        idx = b.next_index
        g, fp = b.thing(kind, idx, outdoor=True)
        for _attempt in range(10):
            x = rng.uniform(-sw / 2 + fp, sw / 2 - fp) if sw / 2 > fp else 0.0
            y = math.exp(rng.uniform(math.log(1.5), math.log(80)))
            if b.free_spot(x, y, fp):
                yw = 0.0 if kind == "car" else rng.uniform(0, 6.3)
                b.settle(g, idx, x, y, 0, yw + (math.pi if rng.random() < 0.5 else 0), fp, y < 25)
                break
        else:
            b.discard(g, idx)
    return (cx, 0.0, cz), yaw, pitch, subj


# --------------------------------------------------------------------------- --rich extras

def _emitter(b, strength, color):
    mat = bpy.data.materials.new("lamp")
    mat.use_nodes = True
    nt = mat.node_tree
    for n in list(nt.nodes):
        if n.type != "OUTPUT_MATERIAL":
            nt.nodes.remove(n)
    em = nt.nodes.new("ShaderNodeEmission")
    em.inputs["Strength"].default_value = strength
    em.inputs["Color"].default_value = tuple(color) + (1.0,)
    nt.links.new(em.outputs["Emission"], nt.nodes["Material Output"].inputs["Surface"])
    return mat


def _flat(rng, color):
    """A plain material from the extras' own RNG (SceneBuilder.make_material draws from the
    scene's, which would change the plain sample's camera and exposure)."""
    mat = bpy.data.materials.new("flat")
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = color
    bsdf.inputs["Roughness"].default_value = rng.uniform(0.3, 0.9)
    bsdf.inputs["Metallic"].default_value = rng.uniform(0.0, 0.8)
    return mat


def _aim_down(ob, target):
    """Point a spot light (it shines along its -z) at ``target``."""
    d = Vector(ob.location) - Vector(target)
    ob.rotation_euler = d.to_track_quat("Z", "Y").to_euler()


def add_extras(b, rng, kind, cam_pos, yaw):
    """``--rich``: what the shipped net reads wrongly on real photos, drawn from a separate
    RNG so that the scene and camera are those of the plain sample. Pools of hard light on
    the floor (a sunlit patch is not nearer than the shade round it), bright lamps (a glare
    is not a near object) and lattice towers against the sky (thin members, sky through
    them, standing straight)."""
    fwd = np.array([-math.sin(yaw), math.cos(yaw)])
    side = np.array([math.cos(yaw), math.sin(yaw)])
    ground = getattr(b, "ground", None) or (lambda x, y: 0.0)

    def ahead(dist, lateral):
        p = np.asarray(cam_pos[:2]) + fwd * dist + side * lateral
        return float(p[0]), float(p[1]), float(ground(p[0], p[1]))

    room = getattr(b, "room", None) if kind == "room" else None
    if kind != "studio" and rng.random() < 0.5:                      # pools of light
        for _ in range(int(rng.integers(1, 4))):
            if room is not None:
                W, D, Hr = room
                x, y, z = rng.uniform(0.3, W - 0.3), rng.uniform(0.5, D - 0.3), 0.0
                height = Hr - 0.1
            else:
                d = rng.uniform(2, 25)
                x, y, z = ahead(d, rng.uniform(-0.5, 0.5) * d)
                height = rng.uniform(3, 10)
            la = bpy.data.lights.new("pool", "SPOT")
            la.energy = rng.uniform(500, 4000) * (height / 3) ** 2
            la.spot_size = rng.uniform(0.2, 0.7)
            la.spot_blend = rng.uniform(0.02, 0.3)
            la.shadow_soft_size = rng.uniform(0.0, 0.05)
            la.color = tuple(srgb_to_linear(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.15), rng.uniform(0, 0.3), 1)))
            ob = bpy.data.objects.new("pool", la)
            b.scene.collection.objects.link(ob)
            ob.location = (x + rng.normal(0, 0.3), y + rng.normal(0, 0.3), z + height)
            _aim_down(ob, (x, y, z))
    if rng.random() < 0.35:                                          # lamps
        for _ in range(int(rng.integers(1, 6))):
            r = rng.uniform(0.03, 0.15)
            if room is not None:
                W, D, Hr = room
                loc = (rng.uniform(0.2, W - 0.2), rng.uniform(0.5, D - 0.1), rng.uniform(1.2, Hr - 0.2))
            else:
                d = rng.uniform(3, 60)
                x, y, z = ahead(d, rng.uniform(-0.6, 0.6) * d)
                loc = (x, y, z + rng.uniform(2, 8))
                if rng.random() < 0.6:                               # on a post
                    b.add(cyl_mesh("post", rng.uniform(0.03, 0.1), loc[2] - z, 8),
                          _flat(rng, rand_color(rng, sat=(0, 0.2), val=(0.05, 0.4))),
                          Matrix.Translation((x, y, z)), index=STRUCT_INDEX)
            warm = colorsys.hsv_to_rgb(rng.uniform(0.05, 0.16), rng.uniform(0.2, 0.8), 1)
            b.add(blob_mesh("lamp", rng, r, amp=0.0, subdiv=2), _emitter(b, rng.uniform(20, 300), warm),
                  Matrix.Translation(loc), index=STRUCT_INDEX)
    if kind in ("nature", "street") and rng.random() < 0.3:         # a lattice tower
        d = math.exp(rng.uniform(math.log(8), math.log(80)))
        x, y, z = ahead(d, rng.uniform(-0.5, 0.5) * d)
        hgt = rng.uniform(8, 45)
        w0 = rng.uniform(1.0, 4.0)
        w1 = w0 * rng.uniform(0.25, 1.0)
        rad = rng.uniform(0.02, 0.08) * (1 + d / 40)
        mat = _flat(rng, rand_color(rng, sat=(0, 0.3), val=(0.05, 0.6)))
        rot = rng.uniform(0, math.pi / 2)
        c, sn = math.cos(rot), math.sin(rot)

        def corner(k, t):                 # corner k (0..3) at height fraction t
            half = 0.5 * (w0 + (w1 - w0) * t)
            u, v = ((-1, -1), (1, -1), (1, 1), (-1, 1))[k]
            return (x + half * (u * c - v * sn), y + half * (u * sn + v * c), z + hgt * t)

        def member(p0, p1):
            length = (Vector(p1) - Vector(p0)).length
            if length > 1e-3:
                b.add(cyl_mesh("truss", rad, length, 6), mat, segment_matrix(p0, p1), index=STRUCT_INDEX)

        levels = max(2, int(hgt / max(w0, 1.0)))
        for k in range(4):
            member(corner(k, 0), corner(k, 1))
        for i in range(levels):
            t0, t1 = i / levels, (i + 1) / levels
            for k in range(4):
                member(corner(k, t1), corner((k + 1) % 4, t1))
                member(corner(k, t0), corner((k + 1) % 4, t1))


# --------------------------------------------------------------------------- one image

def tonemap(lin, rng):
    lum = lin @ np.array([0.2126, 0.7152, 0.0722])
    key = math.exp(float(np.mean(np.log(np.clip(lum, 1e-4, None)))))
    x = lin * (0.18 * rng.uniform(0.7, 1.6) / max(key, 1e-6))
    wp = 4.0
    x = x * (1 + x / wp ** 2) / (1 + x)
    x = np.clip(x, 0, 1)
    x = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def read_exr(path):
    im = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if im is None:
        raise RuntimeError("cannot read " + path)
    return im[..., ::-1].astype(np.float32) if im.ndim == 3 else im.astype(np.float32)


class silenced_stdout:
    """Blender prints progress ('Fra:', 'Saved:') from C: silence fd 1 while rendering."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self.saved, 1)
        os.close(self.saved)


def degenerate(a):
    """Reasons to redraw a scene: nothing but sky, a wall in the face, a black frame."""
    d, v = a["depth"], a["valid"]
    if v.mean() < 0.25:
        return "mostly sky"
    dv = d[v]
    if np.percentile(dv, 50) < 0.4:
        return "camera against a surface"
    if np.percentile(dv, 95) / max(np.percentile(dv, 5), 1e-3) < 1.15 and v.mean() > 0.98:
        return "flat frame"
    if a["rgb"].mean() < 12 or a["rgb"].std() < 4:
        return "black / blank frame"
    return None


def render_sample(seed, index, size, samples, max_depth, photos, hdris, workdir, attempts=4, rich=False):
    """render_one with redraws (attempt 1, 2, ...) while the frame is degenerate."""
    for attempt in range(attempts):
        a = render_one(seed, index, size, samples, max_depth, photos, hdris, workdir, attempt, rich)
        why = degenerate(a)
        if why is None:
            break
        print(f"[depthdata] {index:06d} attempt {attempt} redrawn: {why}", flush=True)
    a["attempt"] = np.uint8(attempt)
    return a


def render_one(seed, index, size, samples, max_depth, photos, hdris, workdir, attempt=0, rich=False):
    rng = np.random.default_rng([seed, index, attempt] if attempt else [seed, index])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    w, h = size
    setup_render(scene, w, h, samples, int((seed * 1000003 + index * 7 + attempt) % (2 ** 31)))
    passdir = os.path.join(workdir, f"passes_{index}")
    shutil.rmtree(passdir, ignore_errors=True)
    setup_outputs(scene, passdir)

    b = SceneBuilder(rng, photos, hdris)
    kind = str(rng.choice(SCENE_KINDS, p=SCENE_PROBS))
    want_subject = rng.random() < (0.9 if kind == "studio" else 0.7)
    hfov = math.radians(rng.uniform(35, 90))
    vfov = 2 * math.atan(math.tan(hfov / 2) * h / w)
    build = {"room": build_room, "studio": build_studio, "nature": build_nature, "street": build_street}[kind]
    cam_pos, yaw, pitch, subj = build(b, hfov, vfov, want_subject)
    world_label, sun_dir = world_setup(b, kind)
    if kind in ("nature", "street") or (kind == "studio" and rng.random() < 0.3):
        add_sun(b, sun_dir)
    elif rng.random() < 0.2:
        add_sun(b, None, rng.uniform(0.5, 2))
    if rich:
        add_extras(b, np.random.default_rng([seed, index, attempt, RICH_STREAM]), kind, cam_pos, yaw)

    cam = bpy.data.cameras.new("cam")
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = 36.0
    cam.angle = hfov
    cam.clip_start = 0.02
    cam.clip_end = 5000.0
    co = bpy.data.objects.new("cam", cam)
    scene.collection.objects.link(co)
    scene.camera = co
    pitch = float(np.clip(pitch, -0.9, 0.6))
    roll = rng.normal(0, 0.04) if rng.random() < 0.8 else rng.uniform(-0.25, 0.25)
    co.matrix_world = look_matrix(cam_pos, yaw, pitch, roll)

    with silenced_stdout():
        bpy.ops.render.render(write_still=False)

    files = {n: glob.glob(os.path.join(passdir, n + "*.exr")) for n in ("Image", "Depth", "Normal", "IndexOB")}
    img, z, nrm, idx = (read_exr(files[n][0]) for n in ("Image", "Depth", "Normal", "IndexOB"))
    shutil.rmtree(passdir, ignore_errors=True)
    z = z[..., 0] if z.ndim == 3 else z
    idx = np.rint(idx[..., 0] if idx.ndim == 3 else idx).astype(np.int32)

    valid = np.isfinite(z) & (z > 0) & (z < max_depth)
    depth = np.where(valid, z, max_depth).astype(np.float32)

    R = np.array(co.matrix_world.to_3x3().normalized())   # camera axes in world (columns)
    ncam = nrm.reshape(-1, 3) @ R                           # world -> camera: R^T n
    ncam = ncam.reshape(h, w, 3)
    nn = np.linalg.norm(ncam, axis=-1, keepdims=True)
    good = (nn[..., 0] > 0.5) & (z < 1e9)
    ncam = np.where(good[..., None], ncam / np.maximum(nn, 1e-6), 0).astype(np.float16)

    mask_kind = 0
    mask = np.zeros((h, w), np.uint8)
    if subj is not None and (idx == SUBJECT_INDEX).sum() >= max(4, 0.002 * w * h):
        mask = (idx == SUBJECT_INDEX).astype(np.uint8)
        mask_kind = 1
    else:  # fallback: the largest of the three nearest salient things
        cands = []
        for i in set(b.salient) | ({SUBJECT_INDEX} if subj else set()):
            m = idx == i
            if m.sum() >= 0.01 * w * h:
                cands.append((float(np.median(depth[m])), int(m.sum()), i))
        if cands:
            cands.sort()
            best = max(cands[:3], key=lambda c: c[1])
            mask = (idx == best[2]).astype(np.uint8)
            mask_kind = 2

    f = (w / 2) / math.tan(hfov / 2)
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float32)
    return dict(rgb=tonemap(img.reshape(-1, 3).astype(np.float64), rng).reshape(h, w, 3),
                depth=depth, valid=valid, normal=ncam, mask=mask,
                hfov=np.float32(hfov), K=K, mask_kind=np.uint8(mask_kind),
                scene=np.array(kind), subject=np.array(subj or ""), world=np.array(world_label),
                cam_height=np.float32(cam_pos[2]), pitch=np.float32(pitch), roll=np.float32(roll),
                seed=np.int64(seed), index=np.int64(index))


def verify_zpass(size=(64, 48), distance=5.0, hfov_deg=90.0, workdir=None):
    """Render a plane perpendicular to the view axis at `distance` (camera tilted and
    placed off the origin) and return the Z pass at the centre and in the corners.
    A z-depth pass reads `distance` everywhere; a ray-length pass would read
    distance * |ray| in the corners (8.3 m here)."""
    work = workdir or tempfile.mkdtemp(prefix="depthdata_z_")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    w, h = size
    setup_render(scene, w, h, 1, 0)
    scene.cycles.use_denoising = False
    passdir = os.path.join(work, "zcheck")
    setup_outputs(scene, passdir)
    cam = bpy.data.cameras.new("cam")
    cam.sensor_fit = "HORIZONTAL"
    cam.angle = math.radians(hfov_deg)
    co = bpy.data.objects.new("cam", cam)
    scene.collection.objects.link(co)
    scene.camera = co
    co.matrix_world = look_matrix((1.0, -2.0, 1.5), 0.3, -0.2, 0.1)
    plane = mesh_from_polys("plane", np.array([(-50, -50, 0), (50, -50, 0), (50, 50, 0), (-50, 50, 0)], float),
                            [[0, 1, 2, 3]])
    ob = bpy.data.objects.new("plane", plane)
    scene.collection.objects.link(ob)
    ob.matrix_world = co.matrix_world @ Matrix.Translation((0, 0, -distance))
    with silenced_stdout():
        bpy.ops.render.render(write_still=False)
    z = read_exr(glob.glob(os.path.join(passdir, "Depth*.exr"))[0])[..., 0]
    shutil.rmtree(passdir, ignore_errors=True)
    f = (w / 2) / math.tan(math.radians(hfov_deg) / 2)
    corner_ray = math.sqrt(1 + ((w / 2 - 0.5) / f) ** 2 + ((h / 2 - 0.5) / f) ** 2)
    return {"centre": float(z[h // 2, w // 2]), "corners": [float(z[0, 0]), float(z[0, -1]), float(z[-1, 0]),
            float(z[-1, -1])], "min": float(z.min()), "max": float(z.max()),
            "expected_zdepth": distance, "expected_ray_length_corner": distance * corner_ray}


def save_npz(path, arrays):
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)


def parse_size(s):
    w, h = s.lower().split("x")
    return int(w), int(h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first index (for splitting work)")
    ap.add_argument("--size", type=parse_size, default=(192, 144))
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--max-depth", type=float, default=100.0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--rich", action="store_true",
                    help="add pools of hard light, lamps and lattice towers (add_extras) to the same scenes")
    ap.add_argument("--verify-z", action="store_true", help="check that the Z pass is z-depth, then exit")
    args = ap.parse_args(argv)
    if args.verify_z:
        print(verify_zpass())
        return 0
    if not args.out:
        ap.error("--out is required")

    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="depthdata_")
    try:
        photos = export_photos(os.path.join(work))
        hdris = hdri_paths()
        done, t_all = 0, 0.0
        for index in range(args.start, args.start + args.count):
            path = os.path.join(args.out, f"{index:06d}.npz")
            if os.path.exists(path):
                continue
            t0 = time.time()
            try:
                arrays = render_sample(args.seed, index, args.size, args.samples, args.max_depth, photos, hdris, work,
                                       rich=args.rich)
            except Exception as e:  # noqa: BLE001 - one bad random scene must not stop a long run
                print(f"[depthdata] {index:06d} skipped: {type(e).__name__}: {e}", flush=True)
                continue
            save_npz(path, arrays)
            dt = time.time() - t0
            done, t_all = done + 1, t_all + dt
            if not args.quiet:
                print("[depthdata] {} {:.2f}s {} subj={} mask={} valid={:.2f}".format(
                    os.path.basename(path), dt, arrays["scene"], arrays["subject"],
                    int(arrays["mask"].sum()), float(arrays["valid"].mean())), flush=True)
        if done and not args.quiet:
            print(f"[depthdata] {done} images, {t_all / done:.2f} s/image", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
