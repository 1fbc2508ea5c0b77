"""The 3D Photo sidebar tab in the 3D Viewport, and the Add menu entry."""
import bpy

from . import panel


def register():
    for c in panel.classes:
        bpy.utils.register_class(c)
    bpy.types.VIEW3D_MT_add.append(panel.add_menu_entry)
    for handlers in (bpy.app.handlers.depsgraph_update_post, bpy.app.handlers.load_post):
        handlers.append(panel.scene_changed)


def unregister():
    for handlers in (bpy.app.handlers.depsgraph_update_post, bpy.app.handlers.load_post):
        if panel.scene_changed in handlers:
            handlers.remove(panel.scene_changed)
    bpy.types.VIEW3D_MT_add.remove(panel.add_menu_entry)
    for c in reversed(panel.classes):
        bpy.utils.unregister_class(c)
