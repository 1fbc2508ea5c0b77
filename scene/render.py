"""Render settings and output across Blender 4.2 to 5.0."""
from __future__ import annotations

import os
from contextlib import contextmanager

import bpy

ENGINES = ("eevee", "cycles", "workbench")
QUALITIES = ("draft", "final")
# Samples per pixel by engine and quality, chosen from docs/performance.md (these scenes
# are emission only: samples only smooth the edges, there is no light to converge).
SAMPLES = {"cycles": {"draft": 1, "final": 4}, "eevee": {"draft": 1, "final": 4}}
# Depth of field, motion blur and fog are integrated over the samples too: with any of
# them on, the former default of 16 (final), 4 (draft).
SAMPLES_BLURRED = {"cycles": {"draft": 4, "final": 16}, "eevee": {"draft": 4, "final": 16}}
# Workbench anti-aliasing by quality.
WORKBENCH_AA = {"draft": "FXAA", "final": "8"}


def samples_for(engine: str, quality: str = "final", samples: int = 0, blurred: bool = False) -> int:
    """``samples`` when given (the CLI's --samples), else the quality's for the engine;
    ``blurred``: depth of field, motion blur or fog are on."""
    if quality not in QUALITIES:
        raise ValueError(f"unknown quality {quality!r}; choose one of {', '.join(QUALITIES)}")
    table = SAMPLES_BLURRED if blurred else SAMPLES
    return samples if samples > 0 else table.get(engine.lower(), table["eevee"])[quality]


def needs_blur_samples(opts) -> bool:
    """Settings (``Options``, ``scene.photo3d``) that sample more than the edges."""
    return bool(getattr(opts, "dof", False) or getattr(opts, "motion_blur", False) or getattr(opts, "fog", False))


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


@contextmanager
def restored(*owners_and_names):
    """Put back the attributes named for each owner: ``(owner, ("a", "b")), ...``."""
    saved = [(o, n, getattr(o, n)) for o, names in owners_and_names for n in names if hasattr(o, n)]
    try:
        yield
    finally:
        for o, n, v in saved:      # in order: 5.0 takes the media type before the file format
            try:
                setattr(o, n, v)
            except (AttributeError, TypeError, ValueError):   # e.g. a 5.0 enum refused while media_type differs
                pass


def output_fields(scene):
    """The render output settings the writers change (for ``restored``)."""
    r = scene.render
    return ((r, ("filepath", "use_file_extension", "use_multiview", "views_format")),
            (r.image_settings, ("media_type", "file_format", "color_mode", "views_format")),
            (r.image_settings.stereo_3d_format, ("display_mode", "anaglyph_type", "use_sidebyside_crosseyed",
                                                 "use_squeezed_frame")),
            (r.ffmpeg, ("format", "codec", "constant_rate_factor", "audio_codec")))


def quality_fields(scene):
    """The settings ``set_quality`` changes (for ``restored``)."""
    return ((scene.cycles, ("samples",)), (scene.eevee, ("taa_render_samples",)),
            (scene.display, ("render_aa",)))


def set_quality(scene: bpy.types.Scene, quality: str, blurred: bool = False, samples: int = 0):
    """The quality's samples (anti-aliasing for Workbench) for the scene's own engine."""
    r = scene.render
    if r.engine == "CYCLES":
        scene.cycles.samples = samples_for("cycles", quality, samples, blurred)
    elif r.engine.startswith("BLENDER_EEVEE"):
        scene.eevee.taa_render_samples = samples_for("eevee", quality, samples, blurred)
    elif r.engine == "BLENDER_WORKBENCH":
        scene.display.render_aa = WORKBENCH_AA[quality]


def configure(scene: bpy.types.Scene, engine: str = "eevee", size: tuple[int, int] | None = None,
              fps: int = 30, samples: int = 0, quality: str = "final", blurred: bool = False):
    """Settings that reproduce the photo's colours exactly and render an animation;
    ``samples`` 0: the ``quality``'s for the engine (``blurred``: see ``samples_for``)."""
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
    set_quality(scene, quality, blurred, samples)
    if r.engine == "CYCLES":
        scene.cycles.use_adaptive_sampling = False   # saves nothing at these counts (docs/performance.md)
        scene.cycles.max_bounces = 0      # emission only: no light transport to compute
        scene.cycles.use_denoising = False
        r.use_persistent_data = True      # static geometry: build the BVH once, not per frame
    elif r.engine.startswith("BLENDER_EEVEE"):
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


def strips_of(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences   # renamed in 5.0


def encode_video(frames: list[str], path: str, fps: float, size: tuple[int, int]):
    """H.264 MP4 of PNG ``frames`` through Blender's sequencer in a scratch scene (no 3D render)."""
    scene = bpy.data.scenes.new("photo3d encode")
    try:
        r = scene.render
        r.resolution_x, r.resolution_y = size
        r.resolution_percentage = 100
        r.fps, r.fps_base = _fps_pair(fps)
        # The frames are display colours already: pass them through unchanged.
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        editor = scene.sequence_editor_create()
        d = os.path.dirname(frames[0])
        strip = strips_of(editor).new_image("frames", frames[0], channel=1, frame_start=1)
        for f in frames[1:]:
            strip.elements.append(os.path.basename(f))
        strip.directory = d + os.sep
        strip.colorspace_settings.name = "sRGB"
        scene.frame_start, scene.frame_end = 1, len(frames)
        r.use_sequencer = True
        r.use_compositing = False
        r.dither_intensity = 0.0          # the frames are 8-bit already: no second dither
        set_video_output(scene, os.path.splitext(path)[0])
        render_animation(scene)
    finally:
        bpy.data.scenes.remove(scene)


def _fps_pair(fps: float) -> tuple[int, float]:
    n = max(1, round(fps))
    return n, n / fps
