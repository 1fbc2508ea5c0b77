"""One photo's animation rendered by several workers: each renders a share of the frames of the
saved ``scene.blend`` as PNGs, then one encodes them, in frame order, into ``video.mp4`` with the
scene's own output settings (the encoder a single machine's render uses).

Runs in ``batch``'s child processes (they import ``bpy``); ``batch`` builds the task graph.
"""
from __future__ import annotations

import os

import bpy
import numpy as np

from .scene import render

PATTERN = "frame_"


def _open(blend: str) -> bpy.types.Scene:
    bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
    return bpy.context.scene


def chunk_frames(start: int, end: int, part: int, parts: int) -> list[int]:
    """Frame numbers of share ``part`` of ``parts``: consecutive runs, sizes differing by at most one."""
    return [int(f) for f in np.array_split(np.arange(start, end + 1), parts)[part]]


def render_part(blend: str, frames_dir: str, part: int, parts: int) -> int:
    """Render share ``part`` of the scene's frames into ``frames_dir`` as frame_NNNN.png; the number of frames."""
    scene = _open(blend)
    frames = chunk_frames(scene.frame_start, scene.frame_end, part, parts)
    if not frames:
        return 0
    os.makedirs(frames_dir, exist_ok=True)
    scene.frame_start, scene.frame_end = frames[0], frames[-1]
    # RGB PNG keeps the 8-bit pixels the video writer would have been given, dither included
    render.set_png_output(scene, os.path.join(frames_dir, PATTERN))
    render.render_animation(scene)
    return len(frames)


def frame_files(frames_dir: str, start: int, end: int) -> list[str]:
    return [f"{PATTERN}{f:04d}.png" for f in range(start, end + 1)]


def assemble(blend: str, frames_dir: str, video_no_ext: str) -> str:
    """Encode the PNG frames into the video the scene's own render would write; the video's path."""
    scene = _open(blend)
    start, end = scene.frame_start, scene.frame_end
    names = frame_files(frames_dir, start, end)
    missing = [n for n in names if not os.path.exists(os.path.join(frames_dir, n))]
    if missing:
        raise FileNotFoundError(f"{len(missing)} rendered frames missing, the first {missing[0]}")
    r = scene.render
    path = video_no_ext + ".mp4"
    size = (r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100)
    render.encode_video([os.path.join(frames_dir, n) for n in names], path, r.fps / r.fps_base, size)
    if not os.path.exists(path):
        raise RuntimeError("encoding the frames produced no video")
    return path
