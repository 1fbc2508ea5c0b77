"""The whole inference pipeline, photo in, arrays out: no bpy, safe to run off the main thread.

photo -> depth (+ subject) -> occlusion edges and layers -> background colour and depth
inpainting -> mesh arrays -> scene extent for the camera path.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import (
    camera_path,
    depth as depth_models,
    disocclusion,
    engine,
    inpaint,
    layers as layering,
    masks,
    mesh as meshing,
    outline,
    parallel,
    portrait,
)
from .depth import confidence as depth_confidence, edges as depth_edges, priors as depth_priors, tiling
from .depth.upsample import joint_bilateral_upsample
from .errors import Cancelled, InputError
from .lighting import find_light_source, photo_far_colour
from .memory import peak_rss_mb
from .photo import DEFAULT_HFOV_DEG, MAX_TEXTURE_SIDE, Photo, load_depth_file, load_photo, resize, working_size

# Width (mesh pixels) of the far-side rim whose mixed colours are replaced by clean background.
RIM_PX = 1
# How far (in the depth model's pixels) its depth is blurred outside / inside a subject's
# outline (measured on the bundled model at 1 MP: the wall's ramp ends 10-12 px out).
OUTLINE_BLUR_OUT = 12.0
OUTLINE_BLUR_IN = 3.0
# Half the width (the depth model's pixels) over which the model smears an edge elsewhere
# (a flag in front of a wall: ten pixels at 1 MP, from the bundled model's 512).
EDGE_RAMP = 2.5
# How far (the depth model's pixels) a subject's mask may fall short of its outline.
SEGMENTER_SHORTFALL = 6.0
# How many of the photo's pixels beyond a settled subject's outline mix in its colour.
SUBJECT_RIM_PHOTO_PX = 3
STAGES = ("load", "depth", "layers", "inpaint", "mesh")


@dataclass
class Settings:
    depth_model: str | None = None       # None: the default model
    depth_file: str | None = None        # overrides the model
    hfov_deg: float | None = None        # None: EXIF, else DEFAULT_HFOV_DEG
    mesh_long_side: int = 1024           # mesh grid resolution cap
    texture_long_side: int = MAX_TEXTURE_SIDE
    amplitude: float = 1.0               # the camera path's amplitude, to size the hidden band
    portrait: bool = True                # person segmentation, face relief, soft alpha edges
    segmenter: str | None = None         # None: the built-in person segmentation; else a model name / folder
    # Adaptive meshes: planar blocks of up to this many quads (a quadtree) become fans (0: off).
    mesh_block: int = 16
    mesh_tol: float = 0.004              # ... when their disparity is this close to a plane (relative)
    # Depth tiles (inference/depth/tiling.py): 0 off; N >= 2 tiles along the photo's long side (plus a
    # global run); AUTO_TILES: as many as bring the depth to mesh_long_side (none for small photos).
    depth_tiles: int = 0
    inpainter: str | None = None         # None: the classical fill; else a learned one (inference/inpaint_net.py)
    device: str = "auto"                 # where networks run: auto, cpu, gpu (inference/engine.py)


AUTO_TILES = -1


@dataclass
class Result:
    photo_path: str
    size: tuple[int, int]                # photo (w, h)
    hfov_deg: float
    metric: bool                         # depth in metres (vs relative units)
    texture: np.ndarray                  # float32 (h, w, 3) sRGB-encoded photo, texture resolution
    background: np.ndarray               # same, with the hidden region inpainted
    alpha: np.ndarray | None             # (h, w) photo layer's alpha at texture resolution, or None
    depth: np.ndarray                    # (hm, wm) z-depth of the photo layer at mesh resolution
    background_depth: np.ndarray         # (hm, wm) with the hidden region filled
    mask: np.ndarray                     # (hm, wm) bool subject / foreground
    hidden: np.ndarray                   # (hm, wm) bool inpainted region
    foreground_mesh: meshing.MeshArrays
    background_mesh: meshing.MeshArrays
    extent: camera_path.SceneExtent
    band_px: float
    depth_model: str
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    edges: disocclusion.EdgeSamples | None = None   # occlusion edges, for the path's reveal estimate
    faces: int = 0                       # faces given a fitted relief
    details: dict[str, float] = field(default_factory=dict)   # parts of stages (seconds), for `bench`
    tiles: tiling.TilePlan | None = None  # when the depth was merged from tiles
    hfov_source: str = "default"         # user, exif, model (a depth model's estimate) or default
    far_colour: tuple[float, float, float] | None = None   # linear RGB of the far fifth: the fog's colour
    light_source: tuple[float, float, float] | None = None  # a light the photo shows (camera frame), or None
    confidence: np.ndarray | None = None  # (hm, wm) float32 in [0, 1]: how sure the depth is (1 = sure)


ProgressFn = Callable[[str, float], None]
DownloadFn = Callable[["object"], None]     # zoo.DownloadStatus (imported lazily: no huggingface_hub needed)
TileFn = Callable[[int, int], None]         # (runs done, runs in all), the global run included


def scene_extent(depth: np.ndarray, mask: np.ndarray | None) -> camera_path.SceneExtent:
    near, far = np.percentile(depth, [2, 98])
    if mask is not None and mask.sum() > 0.01 * mask.size:
        subject = float(np.median(depth[mask]))
    else:
        subject = float(np.percentile(depth, 30))
    subject = float(np.clip(subject, near, far))
    return camera_path.SceneExtent(subject, float(near), float(max(far, near * 1.001)))


def fetch_models(settings: Settings, on_download: DownloadFn | None = None,
                 cancelled: Callable[[], bool] | None = None) -> bool:
    """Download the depth model (and an online person segmenter) if they are not on disk
    and online access is allowed, reporting each download's progress; True if anything was
    downloaded. Cancelling stops a download (the next run resumes it)."""
    wanted = []
    if not settings.depth_file:
        model = depth_models.get_model(settings.depth_model)
        if model.fetch is not None and not model.cached():
            wanted.append(model.fetch)
    if settings.portrait and settings.segmenter:
        from .depth import zoo
        if settings.segmenter in zoo.SEGMENTERS and not zoo.cached(settings.segmenter):
            wanted.append(lambda report, name=settings.segmenter: zoo.local_folder(name, report))
    if settings.inpainter:
        from . import inpaint_net
        if not inpaint_net.cached(settings.inpainter):
            wanted.append(lambda report, name=settings.inpainter: inpaint_net.model_file(name, report))

    def report(status):
        if on_download:
            on_download(status)
        if cancelled and cancelled():
            raise Cancelled()

    for fetch in wanted:
        fetch(report)
    return bool(wanted)


@dataclass
class ModelDepth:
    """A depth model's output at its working resolution (or the tiles' merged resolution)."""
    depth: np.ndarray                    # z-depth
    subject: np.ndarray | None           # the model's subject mask, if it finds one
    extras: dict                         # e.g. the model's field-of-view estimate
    tiles: tiling.TilePlan | None
    seconds: float                       # the model's runs
    preprocess_seconds: float = 0.0      # resizing the photo for a single run
    rgb: np.ndarray | None = None        # the photo at the depth's resolution, when a single run made it


def model_depth(photo: Photo, model: depth_models.DepthModel, tiles: int, target_long_side: int,
                on_tile: TileFn | None = None, cancelled: Callable[[], bool] | None = None) -> ModelDepth:
    """Run the depth model on the photo, once or (``tiles``: N, or AUTO_TILES for as many as
    reach ``target_long_side``) on overlapping tiles merged with the whole photo's run."""
    w, h = photo.size
    if tiles < 0:
        tiles = tiling.auto_tiles((w, h), model.working_long_side, target_long_side)
    plan = tiling.plan((w, h), model.working_long_side, tiles)
    t = time.perf_counter()
    prep, small = 0.0, None
    if plan is None:
        small = resize(photo.rgb, working_size(w, h, model.working_long_side))
        prep = time.perf_counter() - t
        t = time.perf_counter()
        d, subj, extras = depth_models.estimate_with_info(model.name, small)
    else:     # the whole photo for the layout, overlapping tiles for the detail
        d, subj, extras = tiling.merge(lambda img: depth_models.estimate_with_info(model.name, img), photo.rgb,
                                       model.working_long_side, plan, on_tile, cancelled)
    return ModelDepth(d, subj, extras, plan, time.perf_counter() - t, prep, small)


class Clock:
    """Per-stage seconds and peak memory, progress reports and the cancel check between stages."""

    def __init__(self, progress: ProgressFn | None, cancelled: Callable[[], bool] | None):
        self.progress, self.cancelled = progress, cancelled
        self.timings: dict[str, float] = {}
        self.details: dict[str, float] = {}      # parts of a stage, for the benchmark
        self.rss: dict[str, float] = {}
        self.t = time.perf_counter()
        if progress:
            progress("start", 0.0)

    def done(self, name: str, frac: float):
        now = time.perf_counter()
        self.timings[name] = now - self.t
        self.rss[name] = peak_rss_mb()
        self.t = now
        if self.progress:
            self.progress(name, frac)
        if self.cancelled and self.cancelled():
            raise Cancelled()

    def part(self, name: str, since: float):
        self.details[name] = self.details.get(name, 0.0) + time.perf_counter() - since


@dataclass
class _Depth:
    depth: np.ndarray                    # mesh resolution
    subject: np.ndarray | None
    model_name: str
    metric: bool
    hfov: float
    hfov_source: str
    faces: int
    tiles: tiling.TilePlan | None
    confidence: np.ndarray | None = None   # mesh resolution


@dataclass
class _Fill:
    background: np.ndarray               # colour, texture resolution
    depth: np.ndarray                    # the background layer's depth, mesh resolution
    texture: np.ndarray                  # the photo layer's colour (unmixed at soft edges)
    alpha: np.ndarray | None


def run(photo_path: str, settings: Settings | None = None, progress: ProgressFn | None = None,
        cancelled: Callable[[], bool] | None = None, on_download: DownloadFn | None = None,
        on_tile: TileFn | None = None) -> Result:
    """Run every inference stage. Raises InputError for bad input, Cancelled on request.
    ``on_download`` hears model downloads (bytes per file and overall), ``on_tile`` the
    depth tiles as they are done."""
    s = settings or Settings()
    engine.set_device(s.device)
    clock = Clock(progress, cancelled)
    photo: Photo = load_photo(photo_path)
    w, h = photo.size
    hfov, _ = field_of_view(s.hfov_deg or None, photo.hfov_from_exif, {})
    if not 1.0 <= hfov <= 170.0:
        raise InputError(f"field of view {hfov:g} degrees is out of range (1-170)")
    texture = resize(photo.rgb, working_size(w, h, s.texture_long_side))
    mesh_size = working_size(w, h, s.mesh_long_side)
    t = time.perf_counter()
    if fetch_models(s, on_download, cancelled):
        clock.part("depth: download", t)
    clock.done("load", 0.1)

    dep = depth_stage(photo, texture, mesh_size, s, clock, on_tile, cancelled)
    clock.done("depth", 0.45)
    lay, mask, extent, edges, band = layers_stage(dep, mesh_size, s.amplitude)
    clock.done("layers", 0.6)
    fill = inpaint_stage(photo, texture, lay, dep.subject, mesh_size, s.portrait, s.inpainter)
    clock.done("inpaint", 0.8)
    fg, bg = mesh_stage(lay, fill.depth, dep.hfov, s)
    # What the effects need of the photo's light, worked out here rather than on Blender's main thread.
    far_colour = photo_far_colour(fill.texture, lay.depth)
    light = find_light_source(fill.texture, lay.depth, dep.hfov)
    clock.done("mesh", 1.0)

    return Result(photo_path, (w, h), dep.hfov, dep.metric, fill.texture, fill.background, fill.alpha,
                  lay.depth, fill.depth, mask, lay.hidden, fg, bg, extent, band, dep.model_name,
                  clock.timings, clock.rss, edges, dep.faces, clock.details, dep.tiles, dep.hfov_source,
                  far_colour=far_colour, light_source=light, confidence=dep.confidence)


def depth_stage(photo: Photo, texture: np.ndarray, mesh_size: tuple[int, int], s: Settings, clock: Clock,
                on_tile: TileFn | None = None, cancelled: Callable[[], bool] | None = None) -> _Depth:
    """Depth (and the subject, when the estimator finds one) at mesh resolution."""
    w, h = photo.size
    if s.depth_file:
        full, metric = load_depth_file(s.depth_file, (w, h))
        hfov, source = field_of_view(s.hfov_deg or None, photo.hfov_from_exif, {})
        depth_m = resize_depth(full, mesh_size)
        conf = depth_confidence.depth_confidence(depth_m, resize(texture, mesh_size))
        return _Depth(depth_m, None, "file", metric, hfov, source, 0, None, conf)
    model = depth_models.get_model(s.depth_model)
    md = model_depth(photo, model, s.depth_tiles, s.mesh_long_side, on_tile, cancelled)
    if not md.tiles:
        clock.details["depth: preprocess"] = md.preprocess_seconds
    clock.details["depth: tiling" if md.tiles else "depth: inference"] = md.seconds
    if md.tiles:
        clock.rss["tiling"] = peak_rss_mb()
    d_small, subj_small = md.depth, md.subject
    small = md.rgb if md.rgb is not None and md.rgb.shape[:2] == d_small.shape else \
        resize(photo.rgb, (d_small.shape[1], d_small.shape[0]))
    hfov, hfov_source = field_of_view(s.hfov_deg or None, photo.hfov_from_exif, md.extras)
    t = time.perf_counter()
    person_small, n_faces = None, 0
    if s.portrait:
        d_small, subj_small, n_faces, person_small = portrait.refine(small, d_small, subj_small, hfov, s.segmenter)
    clock.part("depth: portrait", t)
    t = time.perf_counter()
    depth_m = resize_depth(d_small, mesh_size, texture)
    clock.part("depth: upsampling", t)
    subject = person = None
    if subj_small is not None:
        subject = resize(subj_small.astype(np.float32), mesh_size) > 0.5
    rgb_m = resize(texture, mesh_size)
    scale = mesh_size[0] / d_small.shape[1]       # mesh pixels per model pixel
    t = time.perf_counter()
    if subject is not None and subject.any():
        if person_small is not None:
            person = resize(person_small.astype(np.float32), mesh_size) > 0.5
        subject = outline.distinct_parts(subject, rgb_m, person)
    if subject is not None and subject.any():
        # The model's depth is blurred across the subject's outline over a few of its
        # pixels, and the mask falls short of a contrasting edge by a few: settle the
        # depth on the mask and grow the mask to the edge (outline.py). A person's mask
        # is sharper than the model's subject: round a person, it is the outline.
        sharp = outline.outline_mask(subject, person, OUTLINE_BLUR_OUT * scale)
        depth_m, behind = outline.settle(depth_m, sharp, OUTLINE_BLUR_OUT * scale, OUTLINE_BLUR_IN * scale, rgb_m)
        # What went back onto the background is no part of the subject (round a person,
        # the model's subject is as blurred as its depth).
        subject = (subject & ~behind) | sharp
        depth_m, sharp = outline.grow_to_edge(rgb_m, depth_m, sharp, SEGMENTER_SHORTFALL * scale)
        subject |= sharp
        clock.part("depth: outline", t)
        if s.portrait:
            t = time.perf_counter()
            depth_m, subject = portrait.extend_to_strands(rgb_m, depth_m, subject)
            clock.part("depth: portrait", t)
    # What nearly every photo holds and a weak model misses: the sky farthest, the background behind the subject.
    t = time.perf_counter()
    normals = md.extras.get("normals") if model.layout_priors else None
    if normals is not None:
        normals = resize(normals, mesh_size)
    depth_m = depth_priors.apply(depth_m, rgb_m, subject if model.layout_priors else None, portrait=n_faces > 0,
                                 normals=normals)
    clock.part("depth: priors", t)
    # Elsewhere, strong edges the model smeared are put back on the photo's edges.
    t = time.perf_counter()
    depth_m, _ = depth_edges.sharpen(depth_m, rgb_m, EDGE_RAMP * scale, subject)
    clock.part("depth: edges", t)
    t = time.perf_counter()
    conf = depth_confidence.depth_confidence(depth_m, rgb_m, md.extras.get("flip_gap"), md.extras.get("tile_gap"))
    clock.part("depth: confidence", t)
    return _Depth(depth_m, subject, model.name, model.metric, hfov, hfov_source, n_faces, md.tiles, conf)


def layers_stage(dep: _Depth, mesh_size: tuple[int, int], amplitude: float):
    """Occlusion edges and layers: how far behind an edge the camera can look decides the
    hidden band. Returns (layers, foreground mask, scene extent, edge samples, band px)."""
    extent = scene_extent(dep.depth, dep.subject)
    travel = camera_path.BASE_TRAVEL * max(amplitude, 1.5) * 1.6 * extent.subject_depth
    band = camera_path.parallax_band_px(mesh_size[0], dep.hfov, extent, travel)
    band = float(np.clip(band + 2, 0.02 * max(mesh_size), 0.25 * max(mesh_size)))
    # A depth file is taken as it is (as the edge pass leaves it alone): its steps are all cut.
    sure = None if dep.model_name == "file" else dep.confidence
    lay = layering.split_layers(dep.depth, int(math.ceil(band)), dep.subject, sure)
    mask = lay.near if dep.subject is None else (dep.subject | lay.near)
    extent = scene_extent(lay.depth, mask if mask.any() else None)
    edges = disocclusion.edge_samples(lay.depth, lay.cut_h, lay.cut_v, dep.hfov, confidence=dep.confidence)
    return lay, mask, extent, edges, band


def inpaint_stage(photo: Photo, texture: np.ndarray, lay, settled: np.ndarray | None, mesh_size: tuple[int, int],
                  soft_edges: bool, inpainter: str | None = None) -> _Fill:
    """What the photo hides behind its occlusion edges: depth and colour, and the photo
    layer's soft edges over it. ``settled``: the subject whose outline the depth was settled
    on (a person's round them; None with a depth file, whose cuts are the depth's own)."""
    tex_size = (texture.shape[1], texture.shape[0])
    # The subject's soft edge needs only the photo and the near region: worked out on a
    # second thread while this one fills what lies behind (NumPy and OpenCV release the GIL).
    matte_job = None
    if soft_edges and lay.near.any():
        near_tex = resize(lay.near.astype(np.float32), tex_size) > 0.5
        soft_px = max(2.0, 2.5 * tex_size[0] / mesh_size[0])
        matte_job = parallel.submit(portrait.alpha_matte, texture, near_tex, soft_px)
    # What lies behind each hidden pixel is another piece of the photo, farther than it:
    # the wall behind a vase, the vase itself behind a torus standing in front of it, the
    # torso behind a raised arm (a fill from around the subject only put the wall there).
    bg_depth = inpaint.fill_depth_behind(lay.depth, lay.hidden, lay.cut_h, lay.cut_v)
    # Colour is also re-made for a rim on the far side: those pixels mix the subject's edge
    # (hair) with the background, and would trace its outline behind it. (Strands that look
    # like the subject already joined it: portrait.extend_to_strands.)
    rim = masks.grow(lay.near, RIM_PX) & ~lay.near
    if settled is not None:
        # A photo's edges are blurred over a few of its pixels: round a settled outline (an
        # exact cut, outline.py) that many are mixed, in mesh pixels at least one. Only in
        # the layer behind: the photo layer keeps them, or the source view (the first
        # frame) loses the edge's softness (docs: the source view's PSNR).
        rim_px = max(RIM_PX, int(round(SUBJECT_RIM_PHOTO_PX * mesh_size[0] / tex_size[0])))
        rim |= masks.grow(settled, rim_px) & ~lay.near
    hole_depth = np.where(rim, lay.depth, bg_depth)
    # Colour sources: any pixel of any depth but the mixed ones on either side of a cut.
    sources = ~masks.grow(masks.cut_sides(lay.cut_h, lay.cut_v), RIM_PX) & ~rim
    if settled is not None:
        # A photo's colour bleeds further than its edges blur (JPEG keeps colour at half
        # resolution and less): round a subject, the wall is tinted with it a little way
        # out, and the band behind it, filled from there, took the tint (a lavender patch
        # behind a helmet's rim). It reads the wall beyond.
        sources &= ~(masks.grow(settled, 3 * rim_px) & ~settled)
    groups = inpaint.behind_groups(lay.depth, hole_depth, lay.hidden, rim, sources)
    background = inpaint.inpaint_colour(texture, lay.hidden | rim, lay.context_weight, lay.depth,
                                        hole_depth, groups=groups)
    if inpainter:
        from . import inpaint_net
        background = inpaint_net.fill(inpainter, texture, background, lay.hidden, rim, groups, lay.near)
    alpha = _photo_alpha(photo, tex_size)
    if matte_job is not None:
        # Soft edges on the near side of the outline, over the inpainted layer behind; the
        # far side stays opaque (nothing is behind it but the 2-pixel ring of the background).
        matte = np.where(near_tex, matte_job.result(), 1.0).astype(np.float32)
        matte = portrait.reproducible_alpha(texture, matte, background)
        texture = portrait.unmix_foreground(texture, matte, background)
        alpha = matte if alpha is None else alpha * matte
    return _Fill(background, bg_depth, texture, alpha)


def mesh_stage(lay, bg_depth: np.ndarray, hfov: float, s: Settings):
    """The photo layer's mesh, cut at the occlusion edges, and the background layer's."""
    fg = meshing.grid_mesh(lay.depth, hfov, None, lay.cut_h, lay.cut_v, margin=True,
                           block=s.mesh_block, tol=s.mesh_tol)
    # The background mesh covers the hidden region and a thin ring of the far side (no
    # crack between the layers); never the near side's own pixels.
    ring = masks.grow(lay.hidden, 2)
    keep = ring & (lay.hidden | lay.context)
    # Not cut: where two hidden regions meet at different depths, a stretched sheet in
    # the far layer reads better than a crack onto nothing.
    # Pushed back 0.3 % along the pixel rays: where the rim coincides with the photo
    # layer, the photo must win (no z-fighting); the source view is unchanged.
    bg = meshing.grid_mesh(bg_depth * np.float32(1.003), hfov, keep, block=s.mesh_block, tol=s.mesh_tol)
    return fg, bg


def field_of_view(user_deg: float | None, exif_deg: float | None, extras: dict) -> tuple[float, str]:
    """(horizontal field of view, where it came from): the user's, else the EXIF focal
    length's, else a depth model's own estimate (Depth Pro's ``hfov_deg``, kept within
    10-150 degrees), else DEFAULT_HFOV_DEG."""
    if user_deg is not None:
        return float(user_deg), "user"
    if exif_deg is not None:
        return float(exif_deg), "exif"
    est = extras.get("hfov_deg")
    if est is not None and math.isfinite(float(est)):
        return float(np.clip(float(est), 10.0, 150.0)), "model"
    return DEFAULT_HFOV_DEG, "default"


def _photo_alpha(photo: Photo, size: tuple[int, int]) -> np.ndarray | None:
    """The photo's own alpha (RGBA files) at texture resolution, or None when opaque."""
    if photo.alpha is None or photo.alpha.min() >= 1.0:
        return None
    return np.clip(resize(photo.alpha.astype(np.float32), size), 0, 1)


def resize_depth(depth: np.ndarray, size: tuple[int, int], guide: np.ndarray | None = None) -> np.ndarray:
    """Resize depth in disparity (what edges and planes are linear in). Upsampling with a
    ``guide`` (the photo, any resolution) puts depth edges on the photo's edges."""
    if (depth.shape[1], depth.shape[0]) == size:
        return depth.astype(np.float32)
    if guide is not None and size[0] > 1.2 * depth.shape[1]:
        return joint_bilateral_upsample(depth, resize(guide, size))
    disp = 1.0 / np.maximum(depth.astype(np.float32), 1e-9)
    return (1.0 / np.maximum(resize(disp, size), 1e-9)).astype(np.float32)


def depth_at_photo_resolution(result: Result) -> np.ndarray:
    w, h = result.size
    return resize_depth(result.depth, (w, h))
