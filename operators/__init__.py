"""Blender operators: Make 3D Photo (background job), Cancel, Remove, Reset Path."""
import bpy

from .make_photo import classes


def register():
    for c in classes:
        bpy.utils.register_class(c)


def unregister():
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
