"""Per-scene settings of the 3D Photo (``scene.photo3d``), derived from ``settings.SETTINGS``.

Changing a camera-path setting re-animates the camera; changing an effect rebuilds the
effects. The hidden properties are what the build stores, not settings.
"""
from __future__ import annotations

import sys
import time

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import settings
from .inference.depth import MODELS

# Blender needs the strings of dynamic enum items kept alive: the latest list is held here.
_MODEL_ITEMS: list = []
_items_key: list = [None]
# Blender asks for the items on every redraw of the panel; they are built again only when
# what they show may have changed: a download completed or forgotten (the cache folders'
# times), the device (the precision, hence the size, an ONNX model downloads), sys.path (a
# PyTorch installed or removed), or after this many seconds (what the stamp cannot see).
ITEMS_TTL_S = 5.0


def _model_items(self, context):
    """The depth models, with what using one would take: a download (ONNX models need
    nothing else), PyTorch for the few that still run through it."""
    from .inference import engine
    from .inference.depth import cache_stamp
    key = (cache_stamp(), engine.device_choice(), tuple(sys.path), int(time.monotonic() // ITEMS_TTL_S))
    if key != _items_key[0] or not _MODEL_ITEMS:
        _MODEL_ITEMS[:] = _build_model_items()
        _items_key[0] = key
    return _MODEL_ITEMS


def _build_model_items() -> list[tuple[str, str, str]]:
    from .inference.depth import zoo
    runtime = None
    items = []
    for m in MODELS.values():
        label = m.name.replace("-", " ").title()
        note = ""
        if m.runtime == "torch":
            runtime = zoo.available() if runtime is None else runtime
            if not runtime:
                note = " (needs PyTorch)"
        if not note and m.is_cached is not None and not m.cached():
            note = f" (downloads {m.size_mb:.0f} MB)"
        items.append((m.name, label + note, f"{m.summary}. Licence: {m.licence}"))
    return items


def _reanimate(self, context):
    if self.is_updating:
        return
    from .scene import camera, effects
    scene = self.id_data
    if isinstance(scene, bpy.types.Scene):
        camera.reanimate(scene)
        if _any_effect(self):
            effects.apply_effects(scene)     # their cycles follow the clip's length


def _any_effect(s) -> bool:
    return s.fog or s.rain or s.particles != "none" or s.dof


def _update_effects(self, context):
    if self.is_updating:
        return
    from .scene import effects
    scene = self.id_data
    if isinstance(scene, bpy.types.Scene):
        effects.apply_effects(scene)
        scene.render.use_motion_blur = bool(self.motion_blur)


class Photo3DSettings(bpy.types.PropertyGroup):
    # The user's settings are added from settings.SETTINGS by _declare_settings() below.
    # Stored by the build so the path can be recomputed; not for editing.
    hfov: FloatProperty(name="Field of View", default=65.0, options={"HIDDEN"})  # type: ignore
    photo_aspect: FloatProperty(default=1.0, options={"HIDDEN"})  # type: ignore
    subject_depth: FloatProperty(default=0.0, options={"HIDDEN"})  # type: ignore
    near_depth: FloatProperty(default=0.0, options={"HIDDEN"})  # type: ignore
    far_depth: FloatProperty(default=0.0, options={"HIDDEN"})  # type: ignore
    source_photo: StringProperty(name="Photo", subtype="FILE_PATH", options={"HIDDEN"})  # type: ignore
    has_light_source: BoolProperty(default=False, options={"HIDDEN"})  # type: ignore
    light_source: FloatVectorProperty(size=3, default=(0.0, 0.0, -1.0), options={"HIDDEN"})  # type: ignore
    # What the last re-animation found, for the panel.
    reveal: FloatProperty(name="Reveals", default=-1.0, subtype="PERCENTAGE", options={"HIDDEN"})  # type: ignore
    auto_direction: FloatProperty(default=0.0, subtype="ANGLE", options={"HIDDEN"})  # type: ignore
    auto_amplitude: FloatProperty(default=1.0, options={"HIDDEN"})  # type: ignore
    is_updating: BoolProperty(default=False, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore
    # The Output section's folder (the CLI's is --out): empty = beside the .blend.
    output_folder: StringProperty(name="Folder", subtype="DIR_PATH", default="",  # type: ignore
                                  description="Where Render writes the files (empty: beside the .blend file)")


class Photo3DJobState(bpy.types.PropertyGroup):
    """What the panel shows of a running job (window-manager level: never saved)."""
    running: BoolProperty(default=False)  # type: ignore
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")  # type: ignore
    status: StringProperty(default="")  # type: ignore
    cancel_requested: BoolProperty(default=False)  # type: ignore


def _resize(self, context):
    """The aspect changed: the render size follows, and the path's framing with it."""
    if self.is_updating:
        return
    from .scene import build
    scene = self.id_data
    if isinstance(scene, bpy.types.Scene):
        photo = (1e4 * self.photo_aspect, 1e4) if self.photo_aspect > 0 else (1e4, 1e4)   # 1080 on the long side
        scene.render.resolution_x, scene.render.resolution_y = build.render_size(self.aspect, photo)
        _reanimate(self, context)


def blender_property(spec: settings.Setting):
    """The Blender property for one declared setting (the panel's, the preferences')."""
    common = dict(name=spec.label, description=spec.help)
    kind = spec.type
    if spec.update == settings.REANIMATE:
        common["update"] = _reanimate
    elif spec.update == settings.REBUILD_EFFECTS:
        common["update"] = _update_effects
    elif spec.update == settings.RESIZE:
        common["update"] = _resize
    bounds = {k: v for k, v in (("min", spec.min), ("max", spec.max), ("soft_max", spec.soft_max)) if v is not None}
    if kind == "bool":
        return BoolProperty(default=spec.default, **common)
    if kind == "int":
        return IntProperty(default=spec.default, **bounds, **common)
    if kind in ("float", "angle", "percent"):
        subtype = {"angle": "ANGLE", "percent": "PERCENTAGE"}.get(kind, "NONE")
        return FloatProperty(default=spec.default, subtype=subtype, **bounds, **common)
    if kind == "colour":
        return FloatVectorProperty(default=spec.default, subtype="COLOR", size=len(spec.default), **bounds, **common)
    if kind == "enum":
        if spec.name == "depth_model":
            # Dynamic items (labels say what a model needs) take the default as an index.
            return EnumProperty(items=_model_items, default=list(MODELS).index(spec.default), **common)
        return EnumProperty(items=[tuple(i) for i in spec.items()], default=spec.default, **common)
    if kind == "flags":
        return EnumProperty(items=[tuple(i) for i in spec.items()], default=set(spec.default), options={"ENUM_FLAG"},
                            **common)
    raise TypeError(f"no Blender property for setting {spec.name} of kind {kind}")


def _declare_settings():
    # As strings, like the annotations above under ``from __future__ import annotations``:
    # Blender evaluates them when the class is registered. Property objects put in directly
    # crash bpy 4.2 at exit when they have update callbacks.
    for spec in settings.SETTINGS:
        if spec.on_panel:
            Photo3DSettings.__annotations__[spec.name] = f"blender_property(settings.BY_NAME[{spec.name!r}])"


_declare_settings()
_classes = (Photo3DSettings, Photo3DJobState)


def register():
    for c in _classes:
        bpy.utils.register_class(c)
    bpy.types.Scene.photo3d = PointerProperty(type=Photo3DSettings)
    bpy.types.WindowManager.photo3d_job = PointerProperty(type=Photo3DJobState)


def unregister():
    del bpy.types.WindowManager.photo3d_job
    del bpy.types.Scene.photo3d
    for c in reversed(_classes):
        bpy.utils.unregister_class(c)
