"""The extension's preferences: where the networks run (the ``in_preferences`` settings of
``settings.py``: one choice per Blender, not per scene; the ONNX Runtime in use and the last
fallback), and the runtimes installed on request: PyTorch for the depth models that need it,
ONNX Runtime GPU for CUDA (status, build, install, remove)."""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from . import settings
from .properties import blender_property  # noqa: F401 - the string annotations below call it at registration
from .runtime.builds import builds
from .runtime.ui import draw_runtime

BUILD_ITEMS = [(b.key, f"{b.label} (about {b.size_text()})", b.description) for b in builds().values()]


class Photo3DPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    torch_build: EnumProperty(name="PyTorch Build", items=BUILD_ITEMS, default="CPU",  # type: ignore
                              description="Which PyTorch to download")

    def draw(self, context):
        from .inference import engine
        col = self.layout.column()
        for spec in PREFERENCE_SETTINGS:
            col.prop(self, spec.name)
        col.label(text=engine.onnx_summary())
        note = engine.fallback_note()      # the restart note shows in the ONNX Runtime GPU box below
        if note:
            col.label(text=note[0].upper() + note[1:], icon="INFO")
        draw_runtime(self.layout, context, self)


PREFERENCE_SETTINGS = tuple(s for s in settings.SETTINGS if s.in_preferences)
for _spec in PREFERENCE_SETTINGS:     # as strings, evaluated at registration (see properties.py)
    Photo3DPreferences.__annotations__[_spec.name] = f"blender_property(settings.BY_NAME[{_spec.name!r}])"


def values(context) -> dict:
    """The preferences' settings by name (their defaults when the extension is not enabled as
    an add-on, e.g. in tests that register its classes directly)."""
    addon = context.preferences.addons.get(__package__)
    prefs = addon.preferences if addon is not None else None
    return {s.name: getattr(prefs, s.name, s.default) if prefs is not None else s.default
            for s in PREFERENCE_SETTINGS}


def register():
    bpy.utils.register_class(Photo3DPreferences)


def unregister():
    bpy.utils.unregister_class(Photo3DPreferences)
