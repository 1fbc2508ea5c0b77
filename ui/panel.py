"""Sidebar panels: make a 3D photo, watch its progress, shape its camera path, add effects, render files."""
import math

import bpy

from ..runtime.operators import installing
from ..runtime.ui import draw_runtime, needs_runtime
from ..scene import build

# The check for the user's objects round the photo's camera walks every object of the scene
# (20 ms a redraw at 5,000 objects, on a panel Blender redraws as the mouse moves): it
# reruns only after the scene changed (a depsgraph update, a file loaded) or for another scene.
_around = {"stale": True, "scene": 0, "names": []}


@bpy.app.handlers.persistent
def scene_changed(*_args):
    _around["stale"] = True


def around_camera(scene) -> list[str]:
    """``build.objects_around_camera``, remembered until the scene changes."""
    key = scene.as_pointer()
    if _around["stale"] or _around["scene"] != key:
        _around.update(stale=False, scene=key, names=build.objects_around_camera(scene))
    return _around["names"]


class _Sidebar:
    """Where every photo3d panel lives: the 3D Viewport's sidebar, tab "3D Photo"."""
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "3D Photo"


class _OfThePhoto(_Sidebar):
    """Sub-panels that make sense once a 3D photo exists in the scene."""
    bl_parent_id = "PHOTO3D_PT_main"

    @classmethod
    def poll(cls, context):
        return build.find_role(context.scene, "camera") is not None


class PHOTO3D_PT_main(_Sidebar, bpy.types.Panel):
    bl_label = "3D Photo"
    bl_idname = "PHOTO3D_PT_main"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.photo3d
        job = context.window_manager.photo3d_job
        if job.running:
            if hasattr(layout, "progress"):
                layout.progress(factor=job.progress, text=job.status or "Working...")
            else:  # Blender before 4.0 has no progress widget
                layout.label(text=job.status or "Working...")
            layout.operator("photo3d.cancel", icon="CANCEL")
            return
        layout.prop(settings, "depth_model")
        layout.prop(settings, "depth_tiles")
        layout.prop(settings, "fov")
        layout.prop(settings, "portrait")
        if settings.portrait:
            layout.prop(settings, "segmenter")
        layout.prop(settings, "inpainter")
        if needs_runtime(settings) or installing() is not None:
            draw_runtime(layout, context, compact=True)     # PyTorch missing: install it from here
        layout.operator("photo3d.make_photo", icon="IMAGE_DATA")
        if build.find_collection(context.scene) is not None:
            for name in around_camera(context.scene):
                layout.label(text=f"'{name}' surrounds the camera and hides the photo", icon="ERROR")
            layout.operator("photo3d.remove_photo", icon="TRASH")


class PHOTO3D_PT_camera(_OfThePhoto, bpy.types.Panel):
    bl_label = "Camera Path"
    bl_idname = "PHOTO3D_PT_camera"

    def draw(self, context):
        layout = self.layout
        s = context.scene.photo3d
        layout.use_property_split = True
        layout.prop(s, "path")
        if s.path == "auto":
            layout.prop(s, "max_reveal")
        else:
            layout.prop(s, "amplitude")
            layout.prop(s, "direction")
        layout.prop(s, "frames")
        layout.prop(s, "easing")
        layout.prop(s, "loop")
        layout.prop(s, "crop_to_photo")
        col = layout.column(align=True)
        if s.path == "auto":
            col.label(text=f"Chose {math.degrees(s.auto_direction):.0f}\u00b0, amplitude {s.auto_amplitude:.2f}")
        if s.reveal >= 0:
            col.label(text=f"Reveals up to {s.reveal:.1f} % of the frame")
        row = layout.row(align=True)
        row.operator("photo3d.reset_path", icon="FILE_REFRESH")
        row.operator("photo3d.look_around", icon="VIEW_CAMERA")


class PHOTO3D_PT_effects(_OfThePhoto, bpy.types.Panel):
    bl_label = "Effects"
    bl_idname = "PHOTO3D_PT_effects"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.photo3d
        layout.use_property_split = True
        for toggle, params in (("fog", ("fog_density", "fog_color", "fog_height", "fog_shafts",
                                         "fog_shafts_strength")),
                               ("rain", ("rain_density", "rain_speed", "rain_length", "rain_wind", "rain_splashes")),
                               ("dof", ("dof_fstop",))):
            layout.prop(s, toggle)
            if getattr(s, toggle):
                col = layout.column(align=True)
                for p in params:
                    col.prop(s, p)
                if toggle == "fog" and s.fog_shafts and not s.has_light_source:
                    col.label(text="No light in the photo to cast shafts", icon="INFO")
        layout.prop(s, "particles")
        if s.particles != "none":
            layout.prop(s, "particle_density")
        layout.prop(s, "motion_blur")


class PHOTO3D_PT_output(_OfThePhoto, bpy.types.Panel):
    bl_label = "Output"
    bl_idname = "PHOTO3D_PT_output"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.photo3d
        col = layout.column(align=True)
        col.label(text="Files")
        col.row(align=True).prop(s, "outputs")
        layout.use_property_split = True
        layout.prop(s, "aspect")
        layout.prop(s, "quality")
        if {"sbs", "anaglyph"} & set(s.outputs):
            layout.prop(s, "stereo_parallax")
            if "sbs" in s.outputs:
                layout.prop(s, "stereo_half_width")
        layout.prop(s, "output_folder")
        sc = context.scene
        r = sc.render
        layout.label(text=f"{r.resolution_x}x{r.resolution_y}, {sc.frame_end - sc.frame_start + 1} frames "
                          f"at {r.fps / r.fps_base:g} fps")
        layout.operator("photo3d.render_outputs", icon="RENDER_ANIMATION")


def add_menu_entry(self, context):
    self.layout.operator("photo3d.make_photo", text="3D Photo", icon="IMAGE_DATA")


classes = (PHOTO3D_PT_main, PHOTO3D_PT_camera, PHOTO3D_PT_effects, PHOTO3D_PT_output)
