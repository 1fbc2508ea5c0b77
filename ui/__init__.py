"""The 3D Photo sidebar tab in the 3D Viewport, and the Add menu entry."""
import bpy

from . import panel


def register():
    for c in panel.classes:
        bpy.utils.register_class(c)
    bpy.types.VIEW3D_MT_add.append(panel.add_menu_entry)


def unregister():
    bpy.types.VIEW3D_MT_add.remove(panel.add_menu_entry)
    for c in reversed(panel.classes):
        bpy.utils.unregister_class(c)
