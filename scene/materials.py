"""Materials that show the photo exactly from the source viewpoint.

The image is projected from the source camera in the shader (object coordinates ->
pixel coordinates with the camera's intrinsics) rather than through per-vertex UVs,
which would warp the photo across large or slanted triangles. Emission only: the
photo already contains its lighting.
"""
from __future__ import annotations

import math

import bpy

from .lookup import mark
from .nodes import Tree, row


def empty_material(name: str) -> bpy.types.Material:
    """A new photo3d material with an empty node tree, in 4.2 to 5.0."""
    mat = mark(bpy.data.materials.new(name))
    if bpy.app.version < (5, 0, 0):   # 5.0 materials always have nodes (use_nodes is deprecated)
        mat.use_nodes = True
    mat.node_tree.nodes.clear()
    return mat


def projection_material(name: str, image: bpy.types.Image, hfov_deg: float, width: int, height: int,
                        strength: float = 1.0, use_alpha: bool = False) -> bpy.types.Material:
    """``use_alpha``: the image's alpha blends the surface over what is behind it (soft
    subject edges over the inpainted background); dithered in Eevee, exact in Cycles."""
    mat = empty_material(name)
    t = Tree(mat.node_tree)
    kx = 0.5 / math.tan(math.radians(hfov_deg) / 2)   # f / W
    ky = kx * width / height                          # f / H

    coord = t.node("ShaderNodeTexCoord")
    sep = t.node("ShaderNodeSeparateXYZ", {0: coord.outputs["Object"]})
    # depth along the view axis: -Z (kept away from 0 for points behind the camera)
    negz = t.math("MULTIPLY", sep.outputs["Z"], -1.0)
    safe = t.math("MAXIMUM", negz, 1e-6)
    chain = [coord, sep, negz.node, safe.node]

    def axis(out_name, k):
        div = t.math("DIVIDE", sep.outputs[out_name], safe)
        mad = t.math("MULTIPLY_ADD", div, k, 0.5)
        chain.extend((div.node, mad.node))
        return mad

    comb = t.node("ShaderNodeCombineXYZ", {0: axis("X", kx), 1: axis("Y", ky)})
    color, alpha, taps = _bilinear(t, comb.outputs[0], image, use_alpha)
    emit = t.node("ShaderNodeEmission", {"Color": color, "Strength": strength})
    chain += [comb, *taps, emit]
    surface = emit
    if use_alpha:
        clear = t.node("ShaderNodeBsdfTransparent", at=(len(chain) * 180 - 900, -200))
        surface = t.node("ShaderNodeMixShader", {"Fac": alpha, 1: clear, 2: emit})
        chain.append(surface)
        if hasattr(mat, "surface_render_method"):       # Eevee (4.2+): per-pixel, depth-correct
            mat.surface_render_method = "DITHERED"
    out = t.node("ShaderNodeOutputMaterial", {"Surface": surface})
    row(chain + [out], 180, -900)
    return mat


def _bilinear(t: Tree, uv, image: bpy.types.Image, with_alpha: bool):
    """Bilinear filtering done in the shader: four Closest taps around ``uv`` blended by
    its position between texel centres. (Eevee's own Linear takes mip levels from broken
    derivatives of in-shader projected coordinates: a smeared, noisy photo, and 10x slower
    on CPUs; Closest alone blocks up the photo when the camera moves: 1.7 dB of the
    novel-view benchmark.) Returns the colour and alpha sockets and the nodes, in order."""
    w, h = (max(1, int(n)) for n in image.size)
    nodes = []

    def vmath(op, *values):
        out = t.vmath(op, *values)
        nodes.append(out.node)
        return out

    texel = vmath("MULTIPLY", uv, (w, h, 1.0))
    p = vmath("SUBTRACT", texel, (0.5, 0.5, 0.0))          # texel centres at integers
    cell = vmath("FLOOR", p)
    frac = vmath("SUBTRACT", p, cell)
    weights = t.node("ShaderNodeSeparateXYZ", {0: frac})
    nodes.append(weights)
    corner = vmath("DIVIDE", vmath("ADD", cell, (0.5, 0.5, 0.0)), (w, h, 1.0))
    taps = []
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        at = vmath("ADD", corner, (du / w, dv / h, 0.0))
        taps.append(t.node("ShaderNodeTexImage", {"Vector": at}, image=image, interpolation="Closest",
                           extension="EXTEND"))
        nodes.append(taps[-1])

    def lerp(kind, fac, a, b):
        out = t.mix(kind, fac, a, b)
        nodes.append(out.node)
        return out

    def blend(out, kind):
        fx, fy = weights.outputs["X"], weights.outputs["Y"]
        top = lerp(kind, fx, taps[0].outputs[out], taps[1].outputs[out])
        bottom = lerp(kind, fx, taps[2].outputs[out], taps[3].outputs[out])
        return lerp(kind, fy, top, bottom)

    return blend("Color", "RGBA"), (blend("Alpha", "FLOAT") if with_alpha else None), nodes
