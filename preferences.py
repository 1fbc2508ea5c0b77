"""The extension's preferences: PyTorch for the depth models that need it (status, build, install, remove)."""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from .runtime.builds import builds
from .runtime.ui import draw_runtime

BUILD_ITEMS = [(b.key, f"{b.label} (about {b.size_text()})", b.description) for b in builds().values()]


class Photo3DPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    torch_build: EnumProperty(name="PyTorch Build", items=BUILD_ITEMS, default="CPU",  # type: ignore
                              description="Which PyTorch to download")

    def draw(self, context):
        draw_runtime(self.layout, context, self)


def register():
    bpy.utils.register_class(Photo3DPreferences)


def unregister():
    bpy.utils.unregister_class(Photo3DPreferences)
