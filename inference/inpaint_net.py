"""Learned inpainting of the revealed background (optional; the classical fill is the default).

A network fills the hidden band (``Layers.hidden``: what the camera path can see behind an
occlusion edge) on tiles of its own size around the band, at a scale where the band is
about a sixth of a tile. It sees only the background the classical fill may read (the
sources of the band's depth group, ``inpaint.behind_groups``); the subject, the rim and
anything nearer than the band's filled depth are holes to it, and their pixels are handed
to it already filled from that context alone, so no colour of the subject can reach its
input. Its result goes into hidden pixels only, faded into the classical fill over the
pixels next to the far side of the edge.

The models (downloaded through ``depth.zoo``: Hugging Face cache, offline switch, progress,
completion manifest; run by ``engine.onnx_session``):

- ``migan``: MI-GAN 512 Places2 (Sargsyan et al., ICCV 2023), the ONNX pipeline its
  README links, ``andraniksargsyan/migan`` ``migan_pipeline_v2.onnx`` (28,079,181 bytes).
  Code and weights MIT (github.com/Picsart-AI-Research/MI-GAN, LICENSE-WEIGHTS). Built by
  its ``scripts/create_onnx_pipeline.py``: inputs ``image`` uint8 [1, 3, H, W] RGB and
  ``mask`` uint8 [1, 1, H, W], 255 = known, 0 = hole; output ``result`` uint8 [1, 3, H, W],
  the known pixels composited back over a mask dilated by one pixel and blurred (so the
  input's values just inside the hole show through: ours are context-only). H and W are
  free: it crops round the hole (128 px padding, at least 512 square) and runs the
  network at 512 x 512, so a 512 x 512 tile is run as it is.
- ``lama``: big-lama (Suvorov et al., WACV 2022; Apache-2.0) exported by Carve,
  ``Carve/LaMa-ONNX`` ``lama_fp32.onnx`` (about 208 MB). From the exporter
  (github.com/Carve-Photos/lama, export_LaMa_to_onnx.ipynb, ``ExportLama``): inputs
  ``image`` float32 [batch, 3, 512, 512] RGB in [0, 1] and ``mask`` float32
  [batch, 1, 512, 512], 1 = hole; the graph zeroes the hole, composites the known pixels
  back and returns ``output`` float32 [batch, 3, 512, 512] clamped to [0, 255]. Fixed at
  512 x 512 (its Fourier units were exported at that size).

Neither real file has been run here (no downloads on the build machines): the tests run
tiny random networks with the same names, types and shapes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from . import masks
from .depth.zoo import ZooModel
from .errors import InputError

CLASSICAL = "classical"


@dataclass(frozen=True)
class InpaintModel(ZooModel):
    label: str = ""          # as the panel shows it
    interface: str = ""      # "migan" or "lama": how pixels go in and come out (``_run``)
    output: str = ""         # the graph's output name
    tile: int = 512          # the square the network works on


INPAINTERS = {m.name: m for m in (
    InpaintModel("migan", "andraniksargsyan/migan", "MIT", 28,
                 "MI-GAN: a small, fast inpainting network (trained on Places2 at 512)",
                 files=("migan_pipeline_v2.onnx",), label="MI-GAN", interface="migan", output="result"),
    InpaintModel("lama", "Carve/LaMa-ONNX", "Apache-2.0", 208,
                 "LaMa (big-lama): stronger on wide bands and repeating texture, several times larger and slower",
                 files=("lama_fp32.onnx",), label="LaMa", interface="lama", output="output"),
)}

# The band's width, in the network's pixels, as a share of its tile: room for context on
# both sides once the subject's side is masked too.
BAND_SHARE = 1 / 6
# Runs at most; beyond that the scale is lowered (a thin band round a large photo).
MAX_RUNS = 32
# Runs at most per tile (depth groups beyond that share runs, on the stricter context).
MAX_TILE_RUNS = 3
# A tile whose context is under this share of it is left to the classical fill.
MIN_CONTEXT = 0.05
# Depth groups whose context in a tile differs by less than this share run together
# (on the stricter context).
MERGE_SHARE = 0.02
# The model's fill fades into the classical one over this many mesh pixels from the
# far side of the edge.
FEATHER_PX = 2.0


def _model(name: str) -> InpaintModel:
    if name not in INPAINTERS:
        raise InputError(f"unknown inpainting model {name!r} (choose {', '.join([CLASSICAL, *INPAINTERS])})")
    return INPAINTERS[name]


def cached(name: str) -> bool:
    """On disk and complete (the classical fill needs nothing)."""
    from .depth import zoo
    if name == CLASSICAL:
        return True
    _model(name)
    return zoo.cached(name)


def model_file(name: str, report=None) -> str:
    """The model's ONNX file, downloaded first when online (``report`` hears its progress)."""
    from .depth import zoo
    m = _model(name)
    if not zoo.cached(name):      # a cached model needs neither online access nor huggingface_hub
        if zoo.offline():
            raise InputError(f"inpainting model {name} ({m.size_mb} MB) is not downloaded and online access is "
                             "off: turn on Preferences > System > Allow Online Access in Blender (or run the CLI "
                             "without --offline) once, or choose the classical fill")
        try:
            import huggingface_hub  # noqa: F401
        except ImportError:
            raise InputError(f"inpainting model {name} is downloaded with huggingface_hub, which is not "
                             "installed (pip install huggingface_hub), or choose the classical fill") from None
    return os.path.join(zoo.local_folder(name, report), m.files[0])


def session(name: str):
    """The model loaded in ONNX Runtime, its interface checked against what ``_run`` feeds."""
    from . import engine
    m = _model(name)
    path = model_file(name)
    sess = engine.onnx_session(path, name=name, role="inpainting")
    if not {"image", "mask"} <= set(sess.inputs) or m.output not in sess.outputs:
        raise InputError(f"{path}: not the {name} network photo3d expects (inputs {sorted(sess.inputs)}, "
                         f"outputs {sess.outputs}; expected image, mask -> {m.output})")
    return sess


def _run(m: InpaintModel, sess, rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """One tile through the network: ``rgb`` float (T, T, 3) in [0, 1], ``known`` bool
    (T, T); the filled tile, float in [0, 1]."""
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
    if m.interface == "migan":
        image = np.clip(np.round(chw * 255), 0, 255).astype(np.uint8)
        mask = np.where(known, 255, 0).astype(np.uint8)[None, None]
        out = sess.run({"image": image, "mask": mask})[m.output].astype(np.float32) / 255
    elif m.interface == "lama":
        mask = (~known).astype(np.float32)[None, None]
        out = sess.run({"image": chw.astype(np.float32), "mask": mask})[m.output].astype(np.float32) / 255
    else:
        raise InputError(f"inpainting model {m.name}: unknown interface {m.interface!r}")
    return np.clip(out[0].transpose(1, 2, 0), 0.0, 1.0)


def band_width(hidden: np.ndarray) -> float:
    """How wide the hidden band is (pixels): twice its pixels' 95th-percentile distance
    from its border."""
    d = cv2.distanceTransform(np.pad(hidden, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return max(1.0, 2.0 * float(np.percentile(d[hidden], 95)))


def _scaled(mask: np.ndarray, size: tuple[int, int], every: bool) -> np.ndarray:
    """A bool mask at ``size``: where it (``every``) or any of it holds, when shrinking."""
    w, h = size
    if w >= mask.shape[1]:
        return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    a = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return a >= 0.999 if every else a > 0.001


@dataclass
class _Plan:
    scale: float                         # the network's pixels per texture pixel
    size: tuple[int, int]                # the scaled photo (w, h)
    labels: np.ndarray                   # (h, w) int: 1 + the depth group of each hidden pixel, else 0
    contexts: list[np.ndarray]           # per group: (h, w) bool, what its fill may read
    tiles: list[tuple[int, int, list[tuple[list[int], np.ndarray]]]]   # (y0, x0, [(groups, known)])


def _window(t: int, margin: int, y0: int, x0: int, size: tuple[int, int]) -> np.ndarray:
    """A tile's weight: 1 inside, falling towards its edges that lie inside the photo, so
    that overlapping tiles blend without seams."""
    w, h = size
    ramp = max(1.0, margin / 2)
    i = np.arange(t, dtype=np.float32)
    one = np.ones(t, np.float32)
    lo, hi = np.clip((i + 0.5) / ramp, 0.01, 1.0), np.clip((t - i - 0.5) / ramp, 0.01, 1.0)
    wy = np.minimum(lo if y0 > 0 else one, hi if y0 + t < h else one)
    wx = np.minimum(lo if x0 > 0 else one, hi if x0 + t < w else one)
    return np.minimum(wy[:, None], wx[None, :])


def _plan(m: InpaintModel, tex_size: tuple[int, int], hidden: np.ndarray, hole: np.ndarray,
          groups: list[tuple[np.ndarray, np.ndarray]], scale: float) -> _Plan:
    t = m.tile
    tw, th = tex_size
    size = (max(t, int(round(tw * scale))), max(t, int(round(th * scale))))
    w, h = size
    lab = np.zeros(hidden.shape, np.int32)
    moat = masks.grow(hole, 1)            # mixed pixels next to the hole belong to neither side
    contexts = []
    for i, (part, src) in enumerate(groups):
        lab[part & hidden] = i + 1
        contexts.append(_scaled((np.asarray(src) > 0.5) & ~moat, size, every=True))
    labels = cv2.resize(lab, size, interpolation=cv2.INTER_NEAREST) if lab.shape != (h, w) else lab
    any_ctx = np.logical_or.reduce(contexts) if contexts else np.zeros((h, w), bool)
    integral = cv2.integral(any_ctx.astype(np.uint8))
    core, margin = t // 2, t // 4
    wanted: dict[tuple[int, int], set[int]] = {}     # tile corner -> the groups it fills
    for cy in range(0, h, core):
        for cx in range(0, w, core):
            present = {int(g) - 1 for g in np.unique(labels[cy:cy + core, cx:cx + core]) if g > 0}
            if not present:
                continue
            # The tile round this core that sees the most context (shifted at most half a
            # margin, so the core keeps full weight).
            best = None
            for dy in (0, -margin // 2, margin // 2):
                for dx in (0, -margin // 2, margin // 2):
                    y0 = int(np.clip(cy - margin + dy, 0, h - t))
                    x0 = int(np.clip(cx - margin + dx, 0, w - t))
                    n = int(integral[y0 + t, x0 + t] - integral[y0, x0 + t] - integral[y0 + t, x0] + integral[y0, x0])
                    if best is None or n > best[0]:
                        best = (n, y0, x0)
            wanted.setdefault(best[1:], set()).update(present)
    tiles = []
    for (y0, x0), present in wanted.items():
        runs: list[tuple[list[int], np.ndarray]] = []
        for g in sorted(present, key=lambda g: int(contexts[g][y0:y0 + t, x0:x0 + t].sum())):
            known = contexts[g][y0:y0 + t, x0:x0 + t]
            for k, (members, ctx) in enumerate(runs):
                if np.count_nonzero(ctx ^ known) <= MERGE_SHARE * t * t:
                    runs[k] = (members + [g], ctx & known)
                    break
            else:
                runs.append(([g], known))
        while len(runs) > MAX_TILE_RUNS:       # the two runs that differ least share one
            k = int(np.argmin([np.count_nonzero(a[1] ^ b[1]) for a, b in zip(runs[:-1], runs[1:])]))
            runs[k:k + 2] = [(runs[k][0] + runs[k + 1][0], runs[k][1] & runs[k + 1][1])]
        runs = [(gs, known) for gs, known in runs if known.mean() >= MIN_CONTEXT]
        if runs:
            tiles.append((y0, x0, runs))
    return _Plan(scale, size, labels, contexts, tiles)


def plan(m: InpaintModel, tex_size: tuple[int, int], hidden: np.ndarray, hole: np.ndarray,
         groups: list[tuple[np.ndarray, np.ndarray]]) -> _Plan:
    """Where the network runs: the scale (the band about ``BAND_SHARE`` of a tile, never
    above the texture's own resolution unless the photo is smaller than a tile, never below
    the photo's short side fitting one tile) and the tiles, each with the depth groups it
    fills and the context they read; coarser while that takes more than ``MAX_RUNS`` runs."""
    tw, th = tex_size
    band_tex = band_width(hidden) * tw / hidden.shape[1]
    fit = m.tile / min(tw, th)
    scale = max(min(BAND_SHARE * m.tile / band_tex, 1.0), fit)
    while True:
        p = _plan(m, tex_size, hidden, hole, groups, scale)
        runs = sum(len(r) for _, _, r in p.tiles)
        if runs <= MAX_RUNS or scale <= fit * 1.001:
            return p
        scale = max(fit, scale * 0.75)


def fill(name: str, rgb: np.ndarray, background: np.ndarray, hidden: np.ndarray, rim: np.ndarray,
         groups: list[tuple[np.ndarray, np.ndarray]], near: np.ndarray, sess=None) -> np.ndarray:
    """``background`` (the classical fill, texture resolution) with the network's fill in
    the hidden pixels. ``hidden``, ``rim``, ``near`` and ``groups`` (``inpaint.behind_groups``:
    parts of the hole and the sources each may read) are at mesh resolution; ``rgb`` is the
    photo at texture resolution, float sRGB in [0, 1]."""
    from .inpaint import push_pull
    if name == CLASSICAL or not hidden.any() or not groups:
        return background
    m = _model(name)
    sess = sess if sess is not None else session(name)
    th, tw = rgb.shape[:2]
    p = plan(m, (tw, th), hidden, hidden | rim, groups)
    w, h = p.size
    t = m.tile
    img = cv2.resize(rgb.astype(np.float32), p.size, interpolation=cv2.INTER_AREA if w < tw else cv2.INTER_LINEAR)
    acc = np.zeros((h, w, 3), np.float32)
    wsum = np.zeros((h, w), np.float32)
    for y0, x0, runs in p.tiles:
        ys, xs = slice(y0, y0 + t), slice(x0, x0 + t)
        weight = _window(t, t // 4, y0, x0, p.size)
        for members, known in runs:
            # The hole's pixels handed over already filled from the context alone: the
            # network (or its compositing) never sees the subject's colours.
            tile = np.where(known[:, :, None], img[ys, xs], push_pull(img[ys, xs], known))
            out = _run(m, sess, tile, known)
            target = np.isin(p.labels[ys, xs], np.asarray(members) + 1)
            wt = np.where(target, weight, 0.0)
            acc[ys, xs] += wt[:, :, None] * out
            wsum[ys, xs] += wt
    covered = wsum > 0
    if not covered.any():
        return background
    # Beyond the covered pixels the fill is carried on smoothly, so that resizing it mixes
    # in nothing else, and it is taken two pixels further (the band's pixels at texture
    # resolution do not fall exactly on its pixels at this scale).
    small = np.zeros((h, w, 3), np.float32)
    small[covered] = acc[covered] / wsum[covered][:, None]
    small = push_pull(small, covered)
    net = cv2.resize(small, (tw, th), interpolation=cv2.INTER_LINEAR if w < tw else cv2.INTER_AREA)
    cover = cv2.resize(masks.grow(covered, 2).astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST) > 0
    # Faded in from the far side of the edge (the visible background meets the band there).
    d = cv2.distanceTransform(near.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    alpha = np.clip(d / FEATHER_PX, 0.0, 1.0).astype(np.float32)
    hidden_tex = hidden
    if hidden.shape != (th, tw):
        alpha = cv2.resize(alpha, (tw, th), interpolation=cv2.INTER_LINEAR)
        hidden_tex = cv2.resize(hidden.astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST) > 0
    alpha = np.where(hidden_tex & cover, alpha, 0.0)[:, :, None]
    out = background.astype(np.float32).copy()
    sel = hidden_tex
    out[sel] = background[sel] + alpha[sel] * (net[sel] - background[sel])
    return out

