"""Render settings and output across Blender 4.2 to 5.0."""
from __future__ import annotations

import os

import bpy

ENGINES = ("eevee", "cycles", "workbench")


def eevee_id() -> str:
    """Eevee's engine id: BLENDER_EEVEE_NEXT in 4.2-4.x, BLENDER_EEVEE again in 5.0."""
    return "BLENDER_EEVEE_NEXT" if bpy.app.version < (5, 0, 0) else "BLENDER_EEVEE"


def engine_id(name: str) -> str:
    name = name.lower()
    if name == "eevee":
        return eevee_id()
    if name == "cycles":
        return "CYCLES"
    if name == "workbench":
        return "BLENDER_WORKBENCH"
    raise ValueError(f"unknown render engine {name!r}; choose one of {', '.join(ENGINES)}")


def configure(scene: bpy.types.Scene, engine: str = "eevee", size: tuple[int, int] | None = None,
              fps: int = 30, samples: int = 16):
    """Settings that reproduce the photo's colours exactly and render an animation."""
    r = scene.render
    r.engine = engine_id(engine)
    if size:
        r.resolution_x, r.resolution_y = size
    r.resolution_percentage = 100
    r.fps = fps
    r.fps_base = 1.0
    r.film_transparent = False
    # The photo is already display-referred: Standard passes its colours through unchanged.
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    if r.engine == "CYCLES":
        scene.cycles.samples = samples
        scene.cycles.max_bounces = 0      # emission only: no light transport to compute
        scene.cycles.use_denoising = False
        r.use_persistent_data = True      # static geometry: build the BVH once, not per frame
    elif r.engine.startswith("BLENDER_EEVEE"):
        scene.eevee.taa_render_samples = samples
        for attr in ("use_shadows", "use_raytracing"):
            if hasattr(scene.eevee, attr):
                setattr(scene.eevee, attr, False)
    elif r.engine == "BLENDER_WORKBENCH":
        scene.display.shading.light = "FLAT"
        scene.display.shading.color_type = "TEXTURE"


def set_video_output(scene: bpy.types.Scene, path_no_ext: str) -> str:
    """H.264 MP4 output; returns the file Blender will write."""
    r = scene.render
    s = r.image_settings
    if bpy.app.version >= (5, 0, 0):
        s.media_type = "VIDEO"
    s.file_format = "FFMPEG"
    r.ffmpeg.format = "MPEG4"
    r.ffmpeg.codec = "H264"
    r.ffmpeg.constant_rate_factor = "HIGH"
    r.ffmpeg.audio_codec = "NONE"
    r.use_file_extension = False
    r.filepath = path_no_ext + ".mp4"
    return r.filepath


def set_png_output(scene: bpy.types.Scene, pattern: str):
    r = scene.render
    s = r.image_settings
    if bpy.app.version >= (5, 0, 0):
        s.media_type = "IMAGE"
    s.file_format = "PNG"
    s.color_mode = "RGB"
    r.use_file_extension = True
    r.filepath = pattern


def ffmpeg_available() -> bool:
    return bool(getattr(bpy.app.build_options, "codec_ffmpeg", False))


def render_animation(scene: bpy.types.Scene):
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(animation=True, scene=scene.name)


def render_still(scene: bpy.types.Scene, path: str, frame: int | None = None):
    if frame is not None:
        scene.frame_set(frame)
    set_png_output(scene, path)
    scene.render.use_file_extension = False
    bpy.ops.render.render(write_still=True, scene=scene.name)
    return os.path.exists(path)
