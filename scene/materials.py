"""Materials that show the photo exactly from the source viewpoint.

The image is projected from the source camera in the shader (object coordinates ->
pixel coordinates with the camera's intrinsics) rather than through per-vertex UVs,
which would warp the photo across large or slanted triangles. Emission only: the
photo already contains its lighting.
"""
from __future__ import annotations

import math

import bpy

from .objects import mark


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
    nt = mat.node_tree
    new = nt.nodes.new
    link = nt.links.new

    kx = 0.5 / math.tan(math.radians(hfov_deg) / 2)   # f / W
    ky = kx * width / height                          # f / H

    coord = new("ShaderNodeTexCoord")
    sep = new("ShaderNodeSeparateXYZ")
    link(coord.outputs["Object"], sep.inputs[0])
    # depth along the view axis: -Z (kept away from 0 for points behind the camera)
    negz = new("ShaderNodeMath"); negz.operation = "MULTIPLY"; negz.inputs[1].default_value = -1.0
    link(sep.outputs["Z"], negz.inputs[0])
    safe = new("ShaderNodeMath"); safe.operation = "MAXIMUM"; safe.inputs[1].default_value = 1e-6
    link(negz.outputs[0], safe.inputs[0])

    def axis(out_name, k):
        div = new("ShaderNodeMath"); div.operation = "DIVIDE"
        link(sep.outputs[out_name], div.inputs[0]); link(safe.outputs[0], div.inputs[1])
        mad = new("ShaderNodeMath"); mad.operation = "MULTIPLY_ADD"
        link(div.outputs[0], mad.inputs[0]); mad.inputs[1].default_value = k; mad.inputs[2].default_value = 0.5
        return mad

    u, v = axis("X", kx), axis("Y", ky)
    comb = new("ShaderNodeCombineXYZ")
    link(u.outputs[0], comb.inputs[0]); link(v.outputs[0], comb.inputs[1])
    color, alpha, taps = _bilinear(nt, comb.outputs[0], image, use_alpha)
    emit = new("ShaderNodeEmission")
    emit.inputs["Strength"].default_value = strength
    link(color, emit.inputs["Color"])
    out = new("ShaderNodeOutputMaterial")
    chain = [coord, sep, negz, safe, u.inputs[0].links[0].from_node, u, v, comb, *taps, emit]
    if use_alpha:
        clear = new("ShaderNodeBsdfTransparent")
        mix = new("ShaderNodeMixShader")
        link(alpha, mix.inputs["Fac"])
        link(clear.outputs[0], mix.inputs[1])
        link(emit.outputs[0], mix.inputs[2])
        link(mix.outputs[0], out.inputs["Surface"])
        clear.location = (len(chain) * 180 - 900, -200)
        chain.append(mix)
        if hasattr(mat, "surface_render_method"):       # Eevee (4.2+): per-pixel, depth-correct
            mat.surface_render_method = "DITHERED"
    else:
        link(emit.outputs[0], out.inputs["Surface"])
    # Tidy layout so the tree reads left to right when users open it.
    for i, node in enumerate(chain + [out]):
        node.location = (i * 180 - 900, 0)
    return mat


def _bilinear(nt, uv, image: bpy.types.Image, with_alpha: bool):
    """Bilinear filtering done in the shader: four Closest taps around ``uv`` blended by
    its position between texel centres. (Eevee's own Linear takes mip levels from broken
    derivatives of in-shader projected coordinates: a smeared, noisy photo, and 10x slower
    on CPUs; Closest alone blocks up the photo when the camera moves: 1.7 dB of the
    novel-view benchmark.) Returns the colour and alpha sockets and the nodes, in order."""
    new, link = nt.nodes.new, nt.links.new
    w, h = (max(1, int(n)) for n in image.size)

    def vmath(op, a, b=None):
        n = new("ShaderNodeVectorMath"); n.operation = op
        for i, x in enumerate((a, b)):
            if x is None:
                continue
            if isinstance(x, bpy.types.NodeSocket):
                link(x, n.inputs[i])
            else:
                n.inputs[i].default_value = x
        return n

    texel = vmath("MULTIPLY", uv, (w, h, 1.0))
    p = vmath("SUBTRACT", texel.outputs[0], (0.5, 0.5, 0.0))      # texel centres at integers
    cell = vmath("FLOOR", p.outputs[0])
    frac = vmath("SUBTRACT", p.outputs[0], cell.outputs[0])
    weights = new("ShaderNodeSeparateXYZ")
    link(frac.outputs[0], weights.inputs[0])
    corner = vmath("DIVIDE", vmath("ADD", cell.outputs[0], (0.5, 0.5, 0.0)).outputs[0], (w, h, 1.0))
    nodes = [texel, p, cell, frac, weights, corner]
    taps = []
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        at = vmath("ADD", corner.outputs[0], (du / w, dv / h, 0.0))
        tex = new("ShaderNodeTexImage")
        tex.image = image
        tex.interpolation = "Closest"
        tex.extension = "EXTEND"
        link(at.outputs[0], tex.inputs["Vector"])
        taps.append(tex)
        nodes += [at, tex]

    def lerp(kind, fac, a, b):
        m = new("ShaderNodeMix"); m.data_type = kind
        suffix = "Color" if kind == "RGBA" else "Float"
        by_id = {s.identifier: s for s in m.inputs}       # names repeat across data types
        link(fac, by_id["Factor_Float"])
        link(a, by_id[f"A_{suffix}"])
        link(b, by_id[f"B_{suffix}"])
        nodes.append(m)
        return next(s for s in m.outputs if s.identifier == f"Result_{suffix}")

    def blend(out, kind):
        fx, fy = weights.outputs["X"], weights.outputs["Y"]
        top = lerp(kind, fx, taps[0].outputs[out], taps[1].outputs[out])
        bottom = lerp(kind, fx, taps[2].outputs[out], taps[3].outputs[out])
        return lerp(kind, fy, top, bottom)

    return blend("Color", "RGBA"), (blend("Alpha", "FLOAT") if with_alpha else None), nodes
