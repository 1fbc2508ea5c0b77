"""Stereo videos through Blender's own Stereo 3D (multiview) rendering: side by side and
red/cyan anaglyph.

The two eyes are off-axis cameras converged on the subject, so the subject sits in the
screen plane, nearer things come out of it and farther ones recede. The eye separation
comes from the scene's depth range: the parallax between the nearest and the farthest
point is ``stereo_parallax`` percent of the frame width, whatever the scene's scale.
Every render setting touched is put back afterwards.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import bpy

from . import render
from .lookup import find_role

DEFAULT_PARALLAX = 2.0     # percent of the frame width, nearest to farthest point


def interocular_for(hfov_deg: float, near: float, far: float, parallax_percent: float = DEFAULT_PARALLAX,
                    subject: float | None = None) -> float:
    """Eye separation (scene units) giving points at ``near`` and ``far`` an on-screen
    parallax ``parallax_percent`` of the frame width apart.

    Off-axis eyes ``b`` apart see a point at depth ``z`` shifted by ``b * f * (1/z - 1/c)``
    pixels between the views (``f`` the focal length in pixels, ``c`` the convergence
    distance), so near and far differ by ``b * f * (1/near - 1/far)``. A nearly flat scene
    would ask for a huge separation: its depth range is taken as at least 10 % of the
    subject's inverse depth."""
    width_at_1 = 2.0 * math.tan(math.radians(hfov_deg) / 2)      # frame width at distance 1 (f = W / width_at_1)
    spread = 1.0 / max(near, 1e-6) - 1.0 / max(far, near, 1e-6)
    floor = 0.1 / max(subject if subject else near, 1e-6)
    return parallax_percent / 100.0 * width_at_1 / max(spread, floor)


def disparity_px(interocular: float, convergence: float, depth: float, hfov_deg: float, width: int,
                 zoom: float = 1.0) -> float:
    """Horizontal position of a point at ``depth`` in the left view minus its position in
    the right view, in pixels of a ``width``-wide view (positive: in front of the screen);
    ``zoom``: the eyes' focal length over the mono camera's (``edge_zoom``)."""
    f = zoom * width / (2.0 * math.tan(math.radians(hfov_deg) / 2))
    return interocular * f * (1.0 / depth - 1.0 / convergence)


def edge_zoom(interocular: float, convergence: float, far: float, hfov_deg: float) -> float:
    """How much the eyes zoom in so neither sees past the photo's edges: each eye sees the
    far background moved by half its disparity, uncovering that much at one side of the
    frame beyond what the mono camera's path keeps inside the photo."""
    return 1.0 + interocular * max(0.0, 1.0 / convergence - 1.0 / far) / (2.0 * math.tan(math.radians(hfov_deg) / 2))


def stereo_parameters(scene: bpy.types.Scene) -> tuple[float, float]:
    """(interocular distance, convergence distance) for the 3D Photo in ``scene``, from the
    depth range its build stored and its ``stereo_parallax`` setting."""
    s = scene.photo3d
    if s.subject_depth <= 0:
        raise ValueError("the scene has no 3D Photo to render in stereo")
    b = interocular_for(s.hfov, s.near_depth, s.far_depth, s.stereo_parallax, s.subject_depth)
    return b, s.subject_depth


def _camera(scene: bpy.types.Scene) -> bpy.types.Object:
    cam = find_role(scene, "camera") or scene.camera
    if cam is None:
        raise ValueError("the scene has no camera")
    return cam


@contextmanager
def stereo_setup(scene: bpy.types.Scene, interocular: float | None = None, convergence: float | None = None):
    """Within the block, ``scene`` renders its two eyes (multiview, Stereo 3D) from the
    3D Photo camera, converged on the subject; afterwards every setting is as it was.
    ``interocular``/``convergence``: override what the scene's depth range gives."""
    cam = _camera(scene)
    st = cam.data.stereo
    r = scene.render
    b, c = stereo_parameters(scene) if interocular is None or convergence is None else (0.0, 0.0)
    with render.restored(*render.output_fields(scene), (cam.data, ("sensor_width",)),
                   (st, ("convergence_mode", "pivot", "interocular_distance", "convergence_distance"))):
        for view in ("left", "right"):   # the Stereo 3D pair; a user may have switched one off
            if view in r.views:
                r.views[view].use = True
        r.use_multiview = True
        r.views_format = "STEREO_3D"
        st.convergence_mode = "OFFAXIS"     # parallel views shifted: no vertical parallax, unlike toe-in
        st.pivot = "CENTER"                 # the eyes either side of the mono camera: the mono framing holds
        st.interocular_distance = interocular if interocular is not None else b
        st.convergence_distance = convergence if convergence is not None else c
        s = scene.photo3d
        # The sensor, not the focal length: a dolly zoom keys the focal length.
        cam.data.sensor_width /= edge_zoom(st.interocular_distance, st.convergence_distance, s.far_depth, s.hfov)
        r.image_settings.views_format = "STEREO_3D"
        yield cam


def _stem(path: str) -> str:
    return path[:-4] if path.lower().endswith(".mp4") else path


def _render_stereo_video(scene, path, display_mode, **fmt):
    if not render.ffmpeg_available():
        raise RuntimeError("this Blender build has no FFmpeg: stereo videos need it")
    left = scene.render.views.get("left")
    # Blender names the one stereo video after its first view (video_L.mp4): no suffix, the name asked for.
    with stereo_setup(scene), render.restored((left, ("file_suffix",)) if left is not None else (None, ())):
        if left is not None:
            left.file_suffix = ""
        written = render.set_video_output(scene, _stem(path))
        scene.render.image_settings.views_format = "STEREO_3D"     # after the format: a new one resets it
        s3d = scene.render.image_settings.stereo_3d_format
        s3d.display_mode = display_mode
        for k, v in fmt.items():
            setattr(s3d, k, v)
        render.render_animation(scene)
    return written


def render_sbs(scene: bpy.types.Scene, path: str, full_width: bool | None = None) -> str:
    """Side-by-side stereo MP4 (left eye on the left, for parallel viewing: VR players,
    3D TVs). ``full_width``: each eye at the full render size (a file twice as wide);
    else squeezed to half width (the mono size). None: the scene's ``stereo_half_width``.
    Returns the file written."""
    if full_width is None:
        full_width = not scene.photo3d.stereo_half_width
    return _render_stereo_video(scene, path, "SIDEBYSIDE", use_sidebyside_crosseyed=False,
                                use_squeezed_frame=not full_width)


def render_anaglyph(scene: bpy.types.Scene, path: str) -> str:
    """Red/cyan anaglyph MP4 at the render size (left eye red, right eye cyan)."""
    return _render_stereo_video(scene, path, "ANAGLYPH", anaglyph_type="RED_CYAN")


def render_stereo_still(scene: bpy.types.Scene, path: str, display_mode: str = "SIDEBYSIDE",
                        interocular: float | None = None, convergence: float | None = None) -> str:
    """One stereo frame as a PNG (the current frame): what the tests measure."""
    with stereo_setup(scene, interocular, convergence):
        render.set_png_output(scene, path)
        scene.render.use_file_extension = False
        scene.render.image_settings.views_format = "STEREO_3D"
        s3d = scene.render.image_settings.stereo_3d_format
        s3d.display_mode = display_mode
        s3d.use_sidebyside_crosseyed = False
        s3d.use_squeezed_frame = False
        s3d.anaglyph_type = "RED_CYAN"
        bpy.ops.render.render(write_still=True, scene=scene.name)
    return path
