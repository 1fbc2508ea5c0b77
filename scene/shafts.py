"""Light shafts: a screen-space pass in the compositor, radiating from the photo's light.

The rendered frame's bright parts (luminance above a threshold: the sun, the sky round it,
a window's panes) are smeared along lines towards the light source's place in the frame
(Blender's Sun Beams: each pixel averages the bright pass on its way to the source), and
screened over the frame. A dark occluder in front of the light (a trunk, the subject,
foliage) is missing from the bright pass, so every pixel behind it, seen from the source,
gets less: the dark wedges of crepuscular rays, cut by what the photo really shows. The
source is the light's 3D point projected into the animated camera, keyed on every frame
of the clip, so the rays move with the camera and loop with it.

Costs a few seconds of compositing a frame (no lamp, no shadow maps, no lit volume). All
of it is one node group, "3D Photo Shafts", inserted just before the compositor's output:
into the user's own compositor tree when there is one (what fed the output is given back
on removal, with the settings the shafts changed), else into a minimal tree made for it
(Render Layers -> shafts -> output) and removed again.

Compositor API: 4.2-4.5 use ``scene.use_nodes`` + ``scene.node_tree`` with a Composite
node and the Sun Beams node; 5.0 uses ``scene.compositing_node_group`` (a node group with a
Group Output) and Sun Beams is a type of the Glare node, its settings input sockets.
"""
from __future__ import annotations

import bpy
import numpy as np

from .keys import key_setting
from .lookup import MARK
from .nodes import Group, Tree, assign, new_compositor_api, row, setting

GROUP = "3D Photo Shafts"
TREE = "3D Photo Compositing"          # the minimal tree made when the scene had none (5.0)
STATE = "photo3d_shafts"               # on the scene: what the shafts changed, to give back

THRESHOLD = 0.45     # scene-linear luminance where the bright pass starts (about sRGB 0.72)
RAY_LENGTH = 0.5     # how far a pixel looks towards the source, as a fraction of the frame
STRENGTH = 1.0       # the beams' gain at fog_shafts_strength 1 (screened over the frame)
DISC = 0.3           # radius of the light's surroundings that shine, as a fraction of the frame's width
SCALE = 0.5          # the beams are computed at this fraction of the frame's size (1/8 the work)


def _scene_tree(scene):
    if new_compositor_api():
        return scene.compositing_node_group
    return scene.node_tree


def _output_socket(tree):
    """The compositor's final image input: the Composite node's (4.x), the active Group
    Output's (5.0)."""
    kind = "GROUP_OUTPUT" if new_compositor_api() else "COMPOSITE"
    outs = [n for n in tree.nodes if n.type == kind]
    if not outs:
        return None
    node = next((n for n in outs if getattr(n, "is_active_output", False)), outs[0])
    return node.inputs[0] if len(node.inputs) else None


def _linked_from(socket):
    for link in socket.node.id_data.links:
        if link.to_socket == socket:
            return link.from_socket
    return None


# ----------------------------------------------------------------------------- the group

def _beams_group(strength: float, aspect: float):
    """The shafts as a node group (Image in, Image out). Returns (group, key targets, strength
    target): the settings that follow the light's place in the frame (keyed per frame), and
    the beams' strength."""
    image = [("Image", "NodeSocketColor")]
    g = Group(GROUP, "CompositorNodeTree", inputs=image, outputs=image)
    frame = g.inp.outputs[0]
    # Only the light's surroundings shine: a disc round the source (hard-edged, but the
    # beams smear it along their rays into a soft falloff).
    disc = g.node("CompositorNodeEllipseMask", {"Mask": 0.0, "Value": 1.0}, name="Around the Light")
    operation = setting(disc, "Operation", "mask_type")             # a menu socket in 5.0
    assign(operation, "ADD" if isinstance(operation, tuple) else "Add")
    if disc.inputs.get("Size") is not None:
        disc.inputs["Size"].default_value = (2 * DISC, 2 * DISC * aspect)
    else:
        disc.mask_width, disc.mask_height = 2 * DISC, 2 * DISC * aspect
    centre = disc.inputs.get("Position")
    # The bright pass: luminance over the threshold, ramped to 1 at white, inside the disc.
    bw = g.node("CompositorNodeRGBToBW", {0: frame})
    ramp = g.map_range(bw, THRESHOLD, 1.0, 0.0, 1.0)
    weight = g.math("MULTIPLY", ramp, disc)
    gain = g.math("MULTIPLY", weight, strength)
    gain.node.name = gain.node.label = "Strength"
    bright = g.mix("RGBA", 1.0, frame, gain, blend="MULTIPLY")
    if new_compositor_api():
        # Sun Beams is a type of the Glare node (its own highlight pass off: ours is above).
        beams = g.node("CompositorNodeGlare", {"Type": "Sun Beams",
                                               "Quality": "Medium" if SCALE < 1 else "High",   # Medium: half size
                                               "Threshold": 0.0, "Smoothness": 0.0, "Strength": 1.0,
                                               "Size": RAY_LENGTH, "Image": bright}, name="Sun Beams")
        glare, scaled = beams.outputs["Glare"], ()
        source = beams.inputs["Sun Position"]
    else:
        # 4.2-4.5: the beams at SCALE of the frame's size, then stretched back.
        down = g.node("CompositorNodeScale", {0: bright, 1: SCALE, 2: SCALE}, space="RELATIVE")
        beams = g.node("CompositorNodeSunBeams", {0: down}, name="Sun Beams")
        assign(setting(beams, "Length", "ray_length"), RAY_LENGTH)
        up = g.node("CompositorNodeScale", {0: beams}, space="RENDER_SIZE", frame_method="STRETCH")
        glare, scaled = up.outputs[0], (down, up)
        source = setting(beams, "Source", "source")
    # Screen, not add: the beams light the darker parts and never push the bright sky
    # round the light past white.
    add = g.mix("RGBA", 1.0, frame, glare, blend="SCREEN")
    add.node.name = add.node.label = "Screen Beams"
    g.link(add, g.out.inputs[0])
    chain = [bw, ramp.node, disc, weight.node, gain.node, bright.node, *scaled[:1], beams, *scaled[1:], add.node]
    row(chain, 160, -160 * (len(chain) // 2))
    g.inp.location, g.out.location = (-300 - 160 * len(chain) // 2, 0), (300 + 160 * len(chain) // 2, 0)
    # What follows the light, as (target, which of x and y): keyed per frame.
    follow = [(source, (0, 1)), (centre, (0, 1)) if centre is not None else ((disc, "x"), (0,))]
    if centre is None:
        follow.append(((disc, "y"), (1,)))
    return g.tree, follow, gain.node.inputs[1]


def light_in_frames(scene: bpy.types.Scene, point_world) -> tuple[np.ndarray, np.ndarray]:
    """The frame numbers of the clip and, for each, ``point_world`` projected into the
    scene's camera: (x, y) from 0 at the frame's left / bottom to 1 at its right / top, and
    the depth in front of the camera (negative: behind it)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    cam = scene.camera
    frames = np.arange(scene.frame_start, scene.frame_end + 1, dtype=np.float64)
    coords = np.zeros((len(frames), 3))
    current, sub = scene.frame_current, scene.frame_subframe
    p = Vector(point_world)
    try:
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            coords[i] = world_to_camera_view(scene, cam, p)[:]
    finally:
        scene.frame_set(current, subframe=sub)
    return frames, coords


# ----------------------------------------------------------------------------- in the scene's compositor

def _compositor(scene):
    """The scene's compositor tree, made if it has none; records what it changes."""
    state = {"use_compositing": bool(scene.render.use_compositing), "created": False}
    if new_compositor_api():
        tree = scene.compositing_node_group
        if tree is None:
            g = Group(TREE, "CompositorNodeTree", outputs=[("Image", "NodeSocketColor")])
            tree = scene.compositing_node_group = g.tree         # (Render Layers only in a scene's tree)
            rl = g.node("CompositorNodeRLayers", at=(-300, 0))
            g.out.location = (300, 0)
            g.link(rl.outputs["Image"], g.out.inputs[0])
            state["created"] = True
    else:
        state["use_nodes"] = bool(scene.use_nodes)
        state["created"] = scene.node_tree is None
        scene.use_nodes = True          # a new tree comes with Render Layers -> Composite
        tree = scene.node_tree
    scene.render.use_compositing = True
    return tree, state


def add_shafts(scene: bpy.types.Scene, point_world, strength: float) -> bool:
    """Light shafts from ``point_world`` (the light, in world space) in the scene's
    compositor. False (and nothing changed) when the compositor's output is fed by
    nothing to add them to, or the scene has no camera."""
    remove_shafts(scene)
    if scene.camera is None:
        return False
    frames, co = light_in_frames(scene, point_world)
    tree = _scene_tree(scene)
    if tree is not None and len(tree.nodes):
        sock = _output_socket(tree)
        if sock is None or _linked_from(sock) is None:
            return False
    active = tree.nodes.active.name if tree is not None and tree.nodes.active is not None else ""
    tree, state = _compositor(scene)
    state["active"] = active
    sock = _output_socket(tree)
    src = _linked_from(sock)
    aspect = scene.render.resolution_x * scene.render.pixel_aspect_x / max(
        1e-6, scene.render.resolution_y * scene.render.pixel_aspect_y)
    group, follow, strength_socket = _beams_group(STRENGTH * strength, aspect)
    t = Tree(tree)
    node = t.node("CompositorNodeGroup", {0: src}, node_tree=group, name=GROUP, select=False,
                  at=(0.5 * (src.node.location.x + sock.node.location.x), sock.node.location.y - 200))
    t.link(node.outputs[0], sock)
    if active:
        tree.nodes.active = tree.nodes[active]
    # The source on every frame. Behind the camera, the point's projection mirrors: there
    # the beams fade out instead (their strength keyed to 0).
    xy = co[:, :2].copy()
    behind = co[:, 2] <= 0
    for target, axes in follow:
        key_setting(group, target, frames, xy[:, list(axes)])
    if behind.any():
        key_setting(group, strength_socket, frames, np.where(behind, 0.0, STRENGTH * strength)[:, None])
    scene[STATE] = state
    return True


def remove_shafts(scene: bpy.types.Scene):
    """Take the shafts out of the compositor and give back what they changed: the link
    into the output, the scene's compositing switches, the tree made for them."""
    tree = _scene_tree(scene)
    state = scene.get(STATE)
    state = dict(state) if state is not None else None
    if tree is not None:
        for node in [n for n in tree.nodes if n.type == "GROUP" and n.node_tree is not None
                     and n.node_tree.get(MARK) and n.node_tree.name.startswith(GROUP)]:
            src = _linked_from(node.inputs[0])
            dst = [link.to_socket for link in tree.links if link.from_node == node]
            tree.nodes.remove(node)
            if src is not None:
                for sock in dst:
                    tree.links.new(src, sock)
        if state is not None and state.get("active") and state["active"] in tree.nodes:
            tree.nodes.active = tree.nodes[state["active"]]
    if state is not None:
        if new_compositor_api():
            if state.get("created") and tree is not None and tree.get(MARK):
                scene.compositing_node_group = None
                if tree.users == 0:
                    bpy.data.node_groups.remove(tree)
        elif "use_nodes" in state:
            scene.use_nodes = bool(state["use_nodes"])
        scene.render.use_compositing = bool(state["use_compositing"])
        del scene[STATE]
    for ng in [g for g in bpy.data.node_groups if g.get(MARK) and g.name.startswith(GROUP)]:
        if ng.users == 0:
            bpy.data.node_groups.remove(ng)


def has_shafts(scene: bpy.types.Scene) -> bool:
    tree = _scene_tree(scene)
    return tree is not None and any(n.type == "GROUP" and n.node_tree is not None and n.node_tree.get(MARK)
                                    and n.node_tree.name.startswith(GROUP) for n in tree.nodes)
