"""Blender operators: Make 3D Photo (background job), Cancel, Remove, Reset Path, Look Around, Render
(Install / Remove PyTorch live in ``runtime/``)."""
import bpy

from . import look_around, make_photo, render_outputs

classes = make_photo.classes + look_around.classes + render_outputs.classes


def register():
    for c in classes:
        bpy.utils.register_class(c)


def unregister():
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
