"""One way of building node trees (shader, geometry nodes, compositor) in Blender 4.2 to 5.0.

A node is made in one call with its properties, its inputs and its place; an input's value
is a constant (the socket's default value) or a socket or node to link from. Sockets are
named by index, by name (the one that is enabled: a Mix node's A exists once per data
type) or by identifier. The few nodes whose kind differs between trees and versions (math,
mix, map range: compositor nodes of their own in 4.x, the shader ones in 5.0's
compositor) are made by methods that pick the kind.
"""
from __future__ import annotations

import bpy

from .lookup import mark


def new_compositor_api() -> bool:
    """5.0's compositor: ``scene.compositing_node_group`` (a node group with a Group Output),
    the shader nodes for math and mixing, and many node properties turned input sockets."""
    return bpy.app.version >= (5, 0, 0)


def socket(sockets, key):
    """A node's input or output socket by index, enabled name or identifier."""
    if isinstance(key, int):
        return sockets[key]
    for s in sockets:
        if s.name == key and s.enabled:
            return s
    for s in sockets:
        if s.identifier == key:
            return s
    return sockets[key]


def output(source):
    """The socket to link from: ``source`` itself, or a node's first enabled output."""
    if isinstance(source, bpy.types.Node):
        return next(s for s in source.outputs if s.enabled)
    return source


def setting(node, socket_name: str, prop: str):
    """Where a node keeps a setting that became an input socket in later versions: the
    socket if it has one, else (node, property). ``assign`` sets it, ``keys.key_setting`` keys it."""
    sock = node.inputs.get(socket_name)
    return sock if sock is not None else (node, prop)


def assign(target, value):
    if isinstance(target, tuple):
        setattr(*target, value)
    else:
        target.default_value = value


def row(nodes, step: float, start: float = 0.0, y: float = 0.0):
    """Lay ``nodes`` out left to right, so the tree reads in order when users open it."""
    for i, n in enumerate(nodes):
        n.location = (start + i * step, y)


class Tree:
    """Builds nodes into an existing node tree."""

    def __init__(self, tree):
        self.tree = tree
        self.legacy_compositor = tree.bl_idname == "CompositorNodeTree" and not new_compositor_api()

    def node(self, kind: str, inputs: dict | None = None, *, at=None, name: str | None = None, **props):
        """A new node of ``kind``: ``props`` set first (they decide which sockets are enabled),
        then ``inputs`` ({socket key: constant, socket or node}); ``name`` is also its label."""
        n = self.tree.nodes.new(kind)
        for k, v in props.items():
            setattr(n, k, v)
        if name is not None:
            n.name = n.label = name
        if at is not None:
            n.location = at
        for key, value in (inputs or {}).items():
            self.set(socket(n.inputs, key), value)
        return n

    def link(self, source, target):
        self.tree.links.new(output(source), target)

    def set(self, target, value):
        """Link ``value`` into the input ``target`` if it is a socket or node, else set its default value."""
        if isinstance(value, (bpy.types.NodeSocket, bpy.types.Node)):
            self.link(value, target)
        else:
            target.default_value = value

    # Nodes whose kind depends on the tree.

    def math(self, op: str, *values):
        """``op`` of up to three values (constants or sockets); returns the result socket."""
        kind = "CompositorNodeMath" if self.legacy_compositor else "ShaderNodeMath"
        return self.node(kind, {i: v for i, v in enumerate(values) if v is not None}, operation=op).outputs[0]

    def mix(self, data_type: str, factor, a, b, blend: str = "MIX"):
        """``a`` mixed with ``b`` by ``factor`` (``data_type`` FLOAT or RGBA); returns the result socket."""
        if self.legacy_compositor:
            n = self.node("CompositorNodeMixRGB", {0: factor, 1: a, 2: b}, blend_type=blend)
        else:
            n = self.node("ShaderNodeMix", {"Factor": factor, "A": a, "B": b}, data_type=data_type, blend_type=blend)
        return output(n)

    def map_range(self, value, from_min: float, from_max: float, to_min: float = 0.0, to_max: float = 1.0,
                  clamp: bool = True):
        if self.legacy_compositor:
            n = self.node("CompositorNodeMapRange", use_clamp=clamp)
        else:
            n = self.node("ShaderNodeMapRange", clamp=clamp)
        for key, v in (("Value", value), ("From Min", from_min), ("From Max", from_max), ("To Min", to_min),
                       ("To Max", to_max)):
            self.set(socket(n.inputs, key), v)
        return n.outputs[0]

    # Shader and geometry nodes.

    def vmath(self, op: str, *values):
        """Vector math of up to three vectors (constants or sockets); returns the result socket."""
        return self.node("ShaderNodeVectorMath", {i: v for i, v in enumerate(values) if v is not None},
                         operation=op).outputs[0]

    def xyz(self, x, y, z):
        return self.node("ShaderNodeCombineXYZ", {0: x, 1: y, 2: z}).outputs[0]

    def random(self, lo: float, hi: float, seed: int):
        """A random float per element, in [lo, hi) (geometry nodes)."""
        return output(self.node("FunctionNodeRandomValue", {"Min": lo, "Max": hi, "Seed": seed}, data_type="FLOAT"))


class Group(Tree):
    """A new photo3d node group with the interface sockets given as (name, socket type)
    pairs, and a Group Input / Output node for each side that has sockets."""

    def __init__(self, name: str, kind: str, inputs=(), outputs=()):
        ng = mark(bpy.data.node_groups.new(name, kind))
        for in_out, sockets in (("INPUT", inputs), ("OUTPUT", outputs)):
            for sock_name, sock_type in sockets:
                ng.interface.new_socket(name=sock_name, in_out=in_out, socket_type=sock_type)
        super().__init__(ng)
        self.inp = ng.nodes.new("NodeGroupInput") if inputs else None
        self.out = ng.nodes.new("NodeGroupOutput") if outputs else None
