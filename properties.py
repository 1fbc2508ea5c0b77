"""Per-scene settings of the 3D Photo (``scene.photo3d``); changing the path re-animates the camera."""
from __future__ import annotations

import math

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)

from .inference import camera_path
from .inference.depth import MODELS, DEFAULT_MODEL

_PATH_LABELS = {
    "dolly-zoom": ("Dolly Zoom", "Dolly back while zooming in: the subject keeps its size, the background swells"),
    "zoom-in": ("Zoom In", "Move towards the subject"),
    "circle": ("Circle", "Circle around the view axis, looking at the subject (seamless loop)"),
    "swing": ("Swing", "Swing from side to side, looking at the subject (seamless loop)"),
    "ken-burns": ("Ken Burns", "Pan across while moving in"),
    "vertical": ("Vertical", "Move up and down, looking at the subject (seamless loop)"),
    "orbit": ("Orbit", "Turn around the subject (seamless loop)"),
    "sway": ("Sway", "Gentle hand-held wobble (seamless loop)"),
    "auto": ("Automatic", "A loop turned and sized for the most parallax that reveals no more than "
                          "Max Reveal of the frame behind the subject"),
}
PATH_ITEMS = [(k, *_PATH_LABELS[k]) for k in camera_path.PRESETS]
LOOP_ITEMS = [("once", "Once", "Play the move one way"),
              ("loop", "Seamless Loop", "There and back with a smooth turn-around: the clip wraps with no jolt"),
              ("pingpong", "Ping-Pong", "There and back again with the chosen easing")]
EASING_ITEMS = [(e, e.replace("-", " ").title(), f"{e} timing (paths that do not loop)") for e in camera_path.EASINGS]


_MODEL_ITEMS: list = []   # Blender needs the strings of dynamic enum items kept alive


def _model_items(self, context):
    from .inference import depth_hf
    runtime = depth_hf.available()
    items = []
    for m in MODELS.values():
        label = m.name.replace("-", " ").title()
        note = ""
        if m.is_cached is not None:
            note = "" if m.cached() else f" (downloads {m.size_mb:.0f} MB)"
            if not runtime:
                note = " (needs PyTorch)"
        items.append((m.name, label + note, f"{m.summary}. Licence: {m.licence}"))
    _MODEL_ITEMS[:] = items
    return _MODEL_ITEMS


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
    # What the user picks before making a 3D photo.
    depth_model: EnumProperty(name="Depth", description="How depth is estimated",  # type: ignore
                              items=_model_items)
    depth_tiles: EnumProperty(name="Detail Tiles", default="off", items=[  # type: ignore
        ("off", "Off", "Run the depth model once on the whole photo (fastest)"),
        ("auto", "Automatic", "For large photos: the whole photo for the layout, plus as many overlapping tiles "
                              "as bring the depth up to the mesh's resolution (none for small photos)"),
        ("2", "2 Tiles", "Two tiles along the long side, plus the whole photo (5 model runs for a 3:2 photo)"),
        ("3", "3 Tiles", "Three tiles along the long side, plus the whole photo (7 model runs for a 3:2 photo)"),
        ("4", "4 Tiles", "Four tiles along the long side, plus the whole photo (13 model runs for a 3:2 photo)")],
        description="Sharper depth for large photos: the model also runs on overlapping tiles of the "
                    "full-size photo, aligned to and blended with its view of the whole (slower)")
    portrait: BoolProperty(name="Portrait Refinement", default=True,  # type: ignore
                           description="Find people: one layer per person with soft hair edges, and "
                                       "faces shaped by a fitted face mesh")
    segmenter: EnumProperty(name="People", description="How people are found for portrait refinement",  # type: ignore
                            items=[("builtin", "Built-in", "MediaPipe's person segmentation, offline"),
                                   ("upernet-convnext-small", "UperNet ConvNeXt (online)",
                                    "A stronger segmentation model, downloaded on first use (330 MB, MIT, PyTorch)")])
    # The camera path: each change re-keys the camera at once.
    path: EnumProperty(name="Camera Path", items=PATH_ITEMS, default="circle", update=_reanimate)  # type: ignore
    amplitude: FloatProperty(name="Amplitude", description="How far the camera travels, relative to the preset",  # type: ignore
                             default=1.0, min=0.0, soft_max=3.0, max=10.0, update=_reanimate)
    frames: IntProperty(name="Duration", description="Length of the animation in frames",  # type: ignore
                        default=96, min=2, max=100000, update=_reanimate)
    easing: EnumProperty(name="Easing", items=EASING_ITEMS, default="ease-in-out", update=_reanimate)  # type: ignore
    loop: EnumProperty(name="Loop", items=LOOP_ITEMS, default="once", update=_reanimate,  # type: ignore
                       description="For moves that do not circle back by themselves")
    direction: FloatProperty(name="Direction", subtype="ANGLE", default=0.0, min=-math.pi, max=math.pi,  # type: ignore
                             description="Turns sideways moves in the photo's plane (0: left-right)",
                             update=_reanimate)
    max_reveal: FloatProperty(name="Max Reveal", subtype="PERCENTAGE", default=2.0, min=0.1, max=20.0,  # type: ignore
                              description="Automatic path: the most of the frame it may show that the "
                                          "photo hid (filled in by photo3d)", update=_reanimate)
    crop_to_photo: BoolProperty(name="Stay Inside Photo", default=True, update=_reanimate,  # type: ignore
                                description="Zoom in just enough that no frame shows past the photo's edges")
    # Effects: each change rebuilds the effect objects at once.
    fog: BoolProperty(name="Fog", default=False, update=_update_effects,  # type: ignore
                      description="Volumetric haze, thicker with distance, in the photo's far colour")
    fog_density: FloatProperty(name="Density", default=2.0, min=0.0, soft_max=10.0, update=_update_effects)  # type: ignore
    fog_color: FloatVectorProperty(name="Colour", subtype="COLOR", size=3, min=0.0, max=1.0,  # type: ignore
                                   default=(0.7, 0.72, 0.75), update=_update_effects)
    fog_height: FloatProperty(name="Height Falloff", default=0.0, min=0.0, soft_max=4.0,  # type: ignore
                              description="0: even with height; else thinner higher up (frame heights)",
                              update=_update_effects)
    fog_shafts: BoolProperty(name="Light Shafts", default=True, update=_update_effects,  # type: ignore
                             description="When the photo shows a light (sun, window, lamp), rays stream from it "
                                         "and what is dark around it in the photo cuts dark wedges into them "
                                         "(a pass in the compositor, keyed to follow the camera)")
    fog_shafts_strength: FloatProperty(name="Shaft Strength", default=1.0, min=0.0, soft_max=5.0,  # type: ignore
                                       update=_update_effects)
    has_light_source: BoolProperty(default=False, options={"HIDDEN"})  # type: ignore
    light_source: FloatVectorProperty(size=3, default=(0.0, 0.0, -1.0), options={"HIDDEN"})  # type: ignore
    rain: BoolProperty(name="Rain", default=False, update=_update_effects,  # type: ignore
                       description="Falling streaks in front of and behind the subject")
    rain_density: FloatProperty(name="Density", default=1.0, min=0.0, soft_max=4.0, update=_update_effects)  # type: ignore
    rain_speed: FloatProperty(name="Speed", default=1.0, min=0.2, soft_max=3.0, update=_update_effects,  # type: ignore
                              description="Falls per clip, relative (rounded so the loop stays seamless)")
    rain_length: FloatProperty(name="Streak Length", default=1.0, min=0.1, soft_max=4.0,  # type: ignore
                               update=_update_effects)
    rain_wind: FloatProperty(name="Wind", subtype="ANGLE", default=math.radians(10.0),  # type: ignore
                             min=-math.radians(60), max=math.radians(60), update=_update_effects)
    rain_splashes: BoolProperty(name="Splashes", default=False, update=_update_effects,  # type: ignore
                                description="Short-lived crowns where the rain meets the reconstructed ground "
                                            "(surfaces facing up, below the camera); as many as the rain's density")
    particles: EnumProperty(name="Particles", default="none", update=_update_effects, items=[  # type: ignore
        ("none", "None", "No particles"),
        ("dust", "Dust", "Warm motes drifting in the air"),
        ("snow", "Snow", "Flakes falling and swaying"),
        ("fireflies", "Fireflies", "Glowing points hovering"),
        ("bokeh", "Bokeh", "Large soft lights between the camera and the subject (turn on Depth of Field)")])
    particle_density: FloatProperty(name="Density", default=1.0, min=0.0, soft_max=4.0,  # type: ignore
                                    update=_update_effects)
    dof: BoolProperty(name="Depth of Field", default=False, update=_update_effects,  # type: ignore
                      description="Focus on the camera's target (the subject); near and far blur")
    dof_fstop: FloatProperty(name="F-Stop", default=1.2, min=0.1, soft_max=16.0, update=_update_effects)  # type: ignore
    motion_blur: BoolProperty(name="Motion Blur", default=False, update=_update_effects)  # type: ignore
    # Stored by the build so the path can be recomputed; not for editing.
    hfov: FloatProperty(name="Field of View", default=65.0, options={"HIDDEN"})  # type: ignore
    photo_aspect: FloatProperty(default=1.0, options={"HIDDEN"})  # type: ignore
    subject_depth: FloatProperty(default=0.0, options={"HIDDEN"})  # type: ignore
    near_depth: FloatProperty(default=0.0, options={"HIDDEN"})  # type: ignore
    far_depth: FloatProperty(default=0.0, options={"HIDDEN"})  # type: ignore
    source_photo: StringProperty(name="Photo", subtype="FILE_PATH", options={"HIDDEN"})  # type: ignore
    # What the last re-animation found, for the panel.
    reveal: FloatProperty(name="Reveals", default=-1.0, subtype="PERCENTAGE", options={"HIDDEN"})  # type: ignore
    auto_direction: FloatProperty(default=0.0, subtype="ANGLE", options={"HIDDEN"})  # type: ignore
    auto_amplitude: FloatProperty(default=1.0, options={"HIDDEN"})  # type: ignore
    is_updating: BoolProperty(default=False, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore


class Photo3DJobState(bpy.types.PropertyGroup):
    """What the panel shows of a running job (window-manager level: never saved)."""
    running: BoolProperty(default=False)  # type: ignore
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")  # type: ignore
    status: StringProperty(default="")  # type: ignore
    cancel_requested: BoolProperty(default=False)  # type: ignore


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
