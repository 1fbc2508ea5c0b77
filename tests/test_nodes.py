"""The node-tree helper: one style for shader, geometry-node and compositor trees."""
import pytest

pytestmark = pytest.mark.blender


def test_inputs_by_enabled_name_constants_and_links(blender):
    from photo3d.scene.materials import empty_material
    from photo3d.scene.nodes import Tree
    bpy = blender
    mat = empty_material("nodes test")
    t = Tree(mat.node_tree)
    half = t.math("MULTIPLY", 0.25, 2.0)
    colour = t.mix("RGBA", half, (1.0, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0))
    emit = t.node("ShaderNodeEmission", {"Color": colour, "Strength": 3.0}, name="Glow", at=(100, 50))
    mix = colour.node
    assert colour.identifier == "Result_Color" and mix.data_type == "RGBA"
    assert mix.inputs["Factor"].links[0].from_socket == half                  # linked
    assert tuple(next(s for s in mix.inputs if s.identifier == "A_Color").default_value) == (1, 0, 0, 1)
    assert emit.inputs["Strength"].default_value == 3.0 and emit.name == emit.label == "Glow"
    assert tuple(emit.location) == (100, 50) and emit.inputs["Color"].links[0].from_socket == colour
    bpy.data.materials.remove(mat)


def test_groups_and_the_compositor_nodes_of_each_version(blender):
    from photo3d.scene.lookup import MARK
    from photo3d.scene.nodes import Group, new_compositor_api
    bpy = blender
    g = Group("nodes test", "CompositorNodeTree", outputs=[("Image", "NodeSocketColor")])
    assert g.tree.get(MARK) and g.inp is None and g.out.bl_idname == "NodeGroupOutput"
    value = g.math("ADD", 1.0, 2.0)
    ramp = g.map_range(value, 0.0, 4.0)
    mixed = g.mix("RGBA", ramp, (0, 0, 0, 1), (1, 1, 1, 1), blend="SCREEN")
    if new_compositor_api():
        kinds = ("ShaderNodeMath", "ShaderNodeMapRange", "ShaderNodeMix")
    else:
        kinds = ("CompositorNodeMath", "CompositorNodeMapRange", "CompositorNodeMixRGB")
    assert (value.node.bl_idname, ramp.node.bl_idname, mixed.node.bl_idname) == kinds
    assert mixed.node.blend_type == "SCREEN"
    bpy.data.node_groups.remove(g.tree)
