"""The files a 3D photo is rendered into: ``video.mp4``, ``video.gif``, ``video.webp`` ...

The animation is rendered once to PNG frames (``Render.frames``); each requested output
is then written from them by its entry in ``OUTPUT_WRITERS``. A writer that renders
differently (stereo views, a scene export) declares ``uses_frames=False`` and takes the
scene from the ``Render``. Adding a format is one entry in ``OUTPUT_WRITERS``: the CLI's
``--outputs``, its validation and the panel's Output section follow from it.

``bpy`` is imported only inside the functions that render: ``settings.py`` (no bpy)
reads the names and labels here.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..inference.errors import Photo3DError

# WebP's lossy quality (0-100): 80 keeps the photo's texture with no visible blocks
# at about a tenth of the size of lossless.
WEBP_QUALITY = 80
# GIF: one palette for the whole clip, so colours do not flicker from frame to frame;
# no dithering, because error diffusion crawls when the picture moves (and compresses
# worse). Smooth gradients band slightly instead (README: Output files).
GIF_COLOURS = 256
GIF_DITHER = False
GIF_MIN_FRAME_CS = 2      # browsers play shorter GIF frames at 10 cs: at most 50 frames a second


class OutputError(Photo3DError):
    pass


@dataclass
class Render:
    """One render of a 3D photo's animation into ``folder``, shared by the writers."""
    scene: object                      # bpy.types.Scene
    folder: str
    frames_dir: str = ""               # where the PNG frames go (default: folder/.frames)
    on_frames: Callable[[int, float], None] | None = None   # (frames, seconds) once rendered
    _frames: list[str] | None = field(default=None, repr=False)
    _pil: list | None = field(default=None, repr=False)

    @property
    def fps(self) -> float:
        r = self.scene.render
        return r.fps / r.fps_base

    @property
    def size(self) -> tuple[int, int]:
        r = self.scene.render
        return (r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100)

    def frames(self) -> list[str]:
        """The animation's frames as PNG files, rendered on the first call."""
        if self._frames is None:
            from . import render
            d = self.frames_dir or os.path.join(self.folder, ".frames")
            os.makedirs(d, exist_ok=True)
            render.set_png_output(self.scene, os.path.join(d, "frame_"))
            t = time.perf_counter()
            render.render_animation(self.scene)
            sc = self.scene
            names = [os.path.join(d, f"frame_{f:04d}.png") for f in range(sc.frame_start, sc.frame_end + 1)]
            missing = [n for n in names if not os.path.exists(n)]
            if missing:
                raise OutputError(f"rendering produced no frame {os.path.basename(missing[0])}")
            self._frames = names
            if self.on_frames:
                self.on_frames(len(names), time.perf_counter() - t)
        return self._frames


@dataclass(frozen=True)
class OutputWriter:
    name: str                          # the --outputs name
    filename: str                      # what it writes into the output folder
    label: str
    help: str
    write: Callable[[Render, str], None]   # (render, path to write)
    uses_frames: bool = True           # written from the shared PNG frames


def _pil_frames(job: Render) -> list:
    """The frames decoded once, shared by the writers that encode from them."""
    if job._pil is None:
        from PIL import Image
        job._pil = []
        for p in job.frames():
            with Image.open(p) as im:
                job._pil.append(im.convert("RGB"))
    return job._pil


def frame_durations_ms(n: int, fps: float, tick_ms: float = 1.0, min_ticks: int = 1) -> list[int]:
    """Per-frame durations in ``tick_ms`` units (GIF: 10 ms) whose running sum stays on
    the clip's clock: 30 fps in GIF is 40, 30, 30 ms ... rather than 30 ms throughout
    (which would play 10 % fast); the whole loop lasts n / fps seconds."""
    ends = [round((i + 1) * 1000.0 / fps / tick_ms) for i in range(n)]
    starts = [0, *ends[:-1]]
    return [int(max(min_ticks, e - s) * tick_ms) for s, e in zip(starts, ends)]


def write_gif(job: Render, path: str):
    from PIL import Image
    frames = _pil_frames(job)
    # A global palette from a sample of frames side by side (up to 16, shrunk).
    step = max(1, len(frames) // 16)
    sample = [f.resize((max(1, f.width // 2), max(1, f.height // 2))) for f in frames[::step]]
    sheet = Image.new("RGB", (sample[0].width, sample[0].height * len(sample)))
    for i, f in enumerate(sample):
        sheet.paste(f, (0, i * f.height))
    palette = sheet.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT)
    dither = Image.Dither.FLOYDSTEINBERG if GIF_DITHER else Image.Dither.NONE
    indexed = [f.quantize(palette=palette, dither=dither) for f in frames]
    durations = frame_durations_ms(len(frames), job.fps, tick_ms=10.0, min_ticks=GIF_MIN_FRAME_CS)
    indexed[0].save(path, save_all=True, append_images=indexed[1:], duration=durations, loop=0,
                    optimize=False, disposal=1)


def write_webp(job: Render, path: str):
    frames = _pil_frames(job)
    durations = frame_durations_ms(len(frames), job.fps)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   quality=WEBP_QUALITY, method=4, minimize_size=False)


def write_mp4(job: Render, path: str):
    """H.264 from the frames, through the FFmpeg inside Blender (its sequencer)."""
    from . import render
    if not render.ffmpeg_available():
        raise OutputError("this Blender build has no FFmpeg: no mp4 (choose --outputs gif or webp)")
    render.encode_video(job.frames(), path, job.fps, job.size)


def write_sbs(job: Render, path: str):
    from . import stereo
    stereo.render_sbs(job.scene, path)


def write_anaglyph(job: Render, path: str):
    from . import stereo
    stereo.render_anaglyph(job.scene, path)


def write_glb(job: Render, path: str):
    from . import glb
    glb.export_glb(job.scene, path)


OUTPUT_WRITERS: dict[str, OutputWriter] = {w.name: w for w in (
    OutputWriter("mp4", "video.mp4", "MP4 Video", "H.264 video", write_mp4),
    OutputWriter("gif", "video.gif", "GIF Loop", "Animated GIF that loops forever (256 colours)", write_gif),
    OutputWriter("webp", "video.webp", "WebP Loop", f"Animated WebP that loops forever (quality {WEBP_QUALITY})",
                 write_webp),
    OutputWriter("sbs", "stereo_sbs.mp4", "Stereo Side by Side",
                 "Side-by-side stereo video for VR headsets and 3D displays (Blender's Stereo 3D)", write_sbs,
                 uses_frames=False),
    OutputWriter("anaglyph", "anaglyph.mp4", "Anaglyph", "Red/cyan stereo video", write_anaglyph,
                 uses_frames=False),
    OutputWriter("glb", "photo.glb", "GLB (web)",
                 "The 3D photo as glTF binary: meshes, embedded textures and the animated camera", write_glb,
                 uses_frames=False),
)}
# Written even with --no-render: an export, not a render.
EXPORTS = ("glb",)
DEFAULT_OUTPUTS = ("mp4",)


def parse_outputs(text: str) -> tuple[str, ...]:
    """``mp4,gif`` -> ("mp4", "gif"); one-line ValueError for an unknown or empty list."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no outputs given (choose from {', '.join(OUTPUT_WRITERS)})")
    unknown = [n for n in names if n not in OUTPUT_WRITERS]
    if unknown:
        raise ValueError(f"unknown output format(s): {', '.join(unknown)} (choose from {', '.join(OUTPUT_WRITERS)})")
    return tuple(dict.fromkeys(names))


LOOPING_FORMATS = ("gif", "webp")
ONE_WAY_PATHS = ("zoom-in", "ken-burns", "dolly-zoom")   # they loop only with loop: loop or pingpong


def loop_note(opts, names) -> str:
    """A note when a looping format plays a one-way path: it would jump back at the end."""
    loops = [n for n in names if n in LOOPING_FORMATS]
    if loops and opts.path in ONE_WAY_PATHS and opts.loop == "once":
        return (f"the {opts.path} path plays once, so {' and '.join(loops)} jump back at the end "
                "(--loop loop makes them seamless)")
    return ""


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:.0f} kB"


def write_outputs(scene, folder: str, names, frames_dir: str = "", report: Callable[[str], None] = print,
                  on_frames: Callable[[int, float], None] | None = None) -> dict[str, str]:
    """Render ``scene`` once and write each output in ``names`` into ``folder``; {name: path}.

    The frames are removed afterwards unless ``frames_dir`` was given (the caller's)."""
    names = parse_outputs(",".join(names)) if not isinstance(names, str) else parse_outputs(names)
    os.makedirs(folder, exist_ok=True)
    job = Render(scene, folder, frames_dir, on_frames)
    written = {}
    try:
        if any(OUTPUT_WRITERS[n].uses_frames for n in names):
            job.frames()                 # first, so that each writer's time below is its own
        for name in names:
            w = OUTPUT_WRITERS[name]
            path = os.path.join(folder, w.filename)
            t = time.perf_counter()
            w.write(job, path)
            if not os.path.exists(path):
                raise OutputError(f"writing {w.filename} produced no file")
            written[name] = path
            report(f"wrote {w.filename}: {size_text(os.path.getsize(path))} ({time.perf_counter() - t:.1f} s)")
    finally:
        if not frames_dir and job._frames is not None:
            shutil.rmtree(os.path.dirname(job._frames[0]), ignore_errors=True)
    return written
