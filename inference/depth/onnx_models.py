"""Depth models downloaded as ONNX files and run by ONNX Runtime (``engine.onnx_session``): no PyTorch.

What each export takes and gives, read from public sources (the checkpoints themselves were
never downloaded or run here; the tests run tiny random networks with the same interface):

* **Depth Anything V2** Small / Base / Large: ``onnx-community/depth-anything-v2-{small,base,large}``
  (Transformers.js exports; kornia's ``DepthAnythingONNXBuilder`` and darktable-ai's
  ``scripts/mask-depth-da2-small`` run the same files). Folder ``onnx/``: ``model.onnx`` (fp32),
  ``model_fp16.onnx``, ``model_quantized.onnx`` (8-bit dynamic quantisation, transformers.js
  ``scripts/quantize.py`` mode q8), and 4-bit variants not used here. Input ``pixel_values``
  (batch, 3, height, width), output ``predicted_depth`` (batch, height, width): relative inverse
  depth (disparity: larger is nearer). Height and width are dynamic (optimum's
  ``exporters/onnx/base.py``); the fp16 files keep float32 inputs and outputs (``quantize.py``:
  ``keep_io_types=True``), though the input's type is read from the session all the same.
  Pre-processing: the repository's ``preprocessor_config.json`` as transformers'
  ``DPTImageProcessor`` applies it (size 518, keep_aspect_ratio, ensure_multiple_of 14, bicubic,
  x/255, ImageNet mean and std). Licences (repository tags): Small Apache-2.0, Base and Large
  CC-BY-NC-4.0.
* **Depth Anything 3** Small / Base: ``onnx-community/depth-anything-v3-{small,base}``,
  ``onnx/model.onnx`` with its weights in ``onnx/model.onnx_data`` (fp32 only, no preprocessor
  config in the repository). Input ``pixel_values`` of rank 5 (batch, views = 1, 3, height,
  width), ImageNet mean and std, sides multiples of 14; output ``predicted_depth`` (1, 1, height,
  width), depth up to scale (larger is farther), as public runners of these files use them.
  Apache-2.0 (``ByteDance-Seed/Depth-Anything-3`` README).
* **MoGe-2** ViT-S / ViT-B: ``Ruicheng/moge-2-vit{s,b}-normal-onnx``, ``model.onnx`` fp32
  (``microsoft/MoGe`` ``docs/onnx.md``). Inputs ``image`` (1, 3, H, W) RGB in [0, 1] (the ImageNet
  normalisation is inside, ``moge/model/modules.py``) and ``num_tokens`` (int64 scalar); outputs
  ``points`` (1, H, W, 3), an affine point map, ``normal``, ``mask`` (1, H, W) and the metric
  scale (named ``metric_scale`` by the export script, ``scale`` by another reader of the
  published file: either is taken). The post-processing is ``MoGeModel.infer``'s
  (``moge/model/v2.py``, ``moge/utils/geometry_numpy.py``): the focal length and the z shift
  solved from the point map, depth = (z + shift) x scale in metres, the horizontal field of view
  from the focal length. MIT.

Depth Pro's export (``onnx-community/DepthPro-ONNX``) is left out: its preprocessor config and
whether its ``predicted_depth`` is metric depth at the network's or the photo's width could not
be confirmed, and its fp32 weights are a 3.8 GB external file.

The precision file is chosen per device by :func:`pick_precision`; each precision is a download
of its own (one file and the configs), cached and checked by ``zoo``'s machinery. A session
is offered every precision on disk, so that a CPU fallback runs fp32 where it is cached.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from .. import engine
from ..errors import InputError
from . import zoo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONFIGS = ("config.json", "preprocessor_config.json")
PRECISIONS = ("fp32", "fp16", "int8")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxFile:
    path: str                   # in the repository
    size_mb: float
    data: str | None = None     # weights saved beside it (external data), fetched with it


@dataclass(frozen=True)
class OnnxSpec:
    name: str
    repo: str
    licence: str
    summary: str
    files: dict[str, OnnxFile]          # precision -> file
    family: str                         # "dpt" (Depth Anything) or "moge"
    output: str                         # "disparity", "depth" (up to scale) or "metric"
    working_long_side: int = 518
    input_rank: int = 4                 # Depth Anything 3 takes (batch, views, 3, H, W)
    # Used where the repository has no preprocessor_config.json (its values win otherwise).
    defaults: dict = field(default_factory=lambda: {
        "size": {"height": 518, "width": 518}, "keep_aspect_ratio": True, "ensure_multiple_of": 14,
        "resample": 3, "image_mean": list(IMAGENET_MEAN), "image_std": list(IMAGENET_STD)})
    tokens: tuple[int, int] = (1200, 2500)  # MoGe: the ViT's token budget (its README: 1200-2500)

    @property
    def metric(self) -> bool:
        return self.output == "metric"


def _da2(size: str, licence: str, mb: tuple[float, float, float], summary: str) -> OnnxSpec:
    fp32, fp16, int8 = mb
    return OnnxSpec(f"depth-anything-v2-{size}", f"onnx-community/depth-anything-v2-{size}", licence, summary,
                    {"fp32": OnnxFile("onnx/model.onnx", fp32), "fp16": OnnxFile("onnx/model_fp16.onnx", fp16),
                     "int8": OnnxFile("onnx/model_quantized.onnx", int8)}, "dpt", "disparity")


NON_COMMERCIAL = "CC-BY-NC-4.0 (non-commercial)"
SPECS: dict[str, OnnxSpec] = {s.name: s for s in (
    _da2("small", "Apache-2.0", (99.1, 49.6, 27.3),
         "Depth Anything V2 Small: sharp, robust relative depth; the recommended online model"),
    _da2("base", NON_COMMERCIAL, (389, 195, 102), "Depth Anything V2 Base: finer detail, slower"),
    _da2("large", NON_COMMERCIAL, (1340, 669, 347),
         "Depth Anything V2 Large: the most detail; needs a GPU to be quick"),
    OnnxSpec("depth-anything-v3-small", "onnx-community/depth-anything-v3-small", "Apache-2.0",
             "Depth Anything 3 Small: depth (not disparity), on a par with V2 on single photos",
             {"fp32": OnnxFile("onnx/model.onnx", 105, data="onnx/model.onnx_data")}, "dpt", "depth",
             input_rank=5),
    OnnxSpec("depth-anything-v3-base", "onnx-community/depth-anything-v3-base", "Apache-2.0",
             "Depth Anything 3 Base: depth (not disparity), more detail than Small",
             {"fp32": OnnxFile("onnx/model.onnx", 413, data="onnx/model.onnx_data")}, "dpt", "depth",
             input_rank=5),
    OnnxSpec("moge-2-vits", "Ruicheng/moge-2-vits-normal-onnx", "MIT",
             "MoGe-2 ViT-S: metric depth and the photo's field of view (used when the photo has no EXIF)",
             {"fp32": OnnxFile("model.onnx", 140.9)}, "moge", "metric", working_long_side=644),
    OnnxSpec("moge-2-vitb", "Ruicheng/moge-2-vitb-normal-onnx", "MIT",
             "MoGe-2 ViT-B: metric depth and field of view, more detail than ViT-S",
             {"fp32": OnnxFile("model.onnx", 419)}, "moge", "metric", working_long_side=644),
)}


# --- which file ------------------------------------------------------------------------------

def pick_precision(spec: OnnxSpec, device: str | None = None) -> str:
    """The precision to run: the engine's choice for the provider it tries first (fp16 on a
    GPU provider, fp32 on the CPU), where the export has that file; else fp32."""
    provider = engine.provider_order(engine.device_choice(device))[0]
    want = engine.pick_precision(provider)
    return want if want in spec.files else "fp32"


def fetch_for(spec: OnnxSpec, precision: str) -> zoo.Fetch:
    """One precision's download: its file (and external weights) and the configs there are."""
    f = spec.files[precision]
    needed = (f.path,) + ((f.data,) if f.data else ())
    stem = os.path.splitext(os.path.basename(f.path))[0]
    return zoo.Fetch(spec.repo, CONFIGS + needed, needed, f"photo3d-complete-{stem}.json",
                     f.size_mb, loose=needed)


def _cached_folders(spec: OnnxSpec) -> dict[str, str]:
    """{precision: snapshot folder} of every precision on disk and complete."""
    folders = {p: zoo.fetch_complete(fetch_for(spec, p)) for p in spec.files}
    return {p: f for p, f in folders.items() if f is not None}


def cached_precisions(name: str) -> list[str]:
    return list(_cached_folders(SPECS[name]))


def cached(name: str) -> bool:
    """The file a run would use is on disk and complete."""
    spec = SPECS[name]
    return zoo.fetch_complete(fetch_for(spec, pick_precision(spec))) is not None


def download_mb(name: str) -> float:
    spec = SPECS[name]
    return spec.files[pick_precision(spec)].size_mb


def local_model(name: str, report: zoo.DownloadFn | None = None) -> tuple[str, str]:
    """(snapshot folder, precision) of the model's file, downloading it when needed and
    allowed. Offline, another precision already on disk serves instead of an error."""
    spec = SPECS[name]
    want = pick_precision(spec)
    folder = zoo.fetch_complete(fetch_for(spec, want))
    if folder is not None:
        return folder, want
    if zoo.offline():
        for p in cached_precisions(name):
            return zoo.fetch_complete(fetch_for(spec, p)), p
        raise zoo.offline_error(name, spec.files[want].size_mb)
    return zoo.download_files(name, fetch_for(spec, want), report), want


def fetch(name: str, report: zoo.DownloadFn | None = None) -> str:
    return local_model(name, report)[0]


def session(name: str) -> tuple[engine.OnnxSession, str]:
    """(the model loaded in ONNX Runtime, once; its snapshot folder). A file that ONNX Runtime
    cannot parse is damaged: it is removed, so the next run online fetches it again. Other
    failures (memory, an operator this ONNX Runtime lacks) leave the download alone."""
    spec = SPECS[name]
    folder, want = local_model(name)
    # The engine gets every precision on disk, the wanted one first, and gives each provider
    # its own: a GPU that fails (at load or at a run) hands over to the CPU, which then runs
    # fp32 where it is cached rather than the GPU's fp16. Nothing more is downloaded for that.
    folders = {want: folder, **{p: f for p, f in _cached_folders(spec).items() if p != want}}
    paths = {p: _loadable(spec.files[p], f) for p, f in folders.items()}
    try:
        loaded = engine.onnx_session(paths, name=name, role="depth model")
        # A file a GPU found damaged while another precision served: forgotten, so that the
        # next run online fetches it again rather than failing on the GPU each time.
        for p, path in paths.items():
            if os.path.abspath(path) in loaded.unreadable and p in _cached_folders(spec):
                zoo.forget(fetch_for(spec, p), folders[p])
                engine.note_fallback(f"depth model {name}: its file {spec.files[p].path} is damaged and was removed; "
                                     "it is fetched again on the next run with online access")
                _log.warning("%s", engine.fallback_note())
        return loaded, folder
    except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own types for a bad file
        if engine.out_of_memory(e):
            raise engine.oom_message(name, "cpu") from None
        # The file that failed: the one the CPU was given (ModelLoadError says), else the wanted one.
        failed = getattr(e, "path", "")
        precision = next((p for p, path in paths.items() if os.path.abspath(path) == failed), want)
        file = spec.files[precision].path
        text = str(e)
        if engine.unparsable(e):
            zoo.forget(fetch_for(spec, precision), folders[precision])
            raise InputError(f"depth model {name}: its file {file} is damaged and was "
                             "removed; it is fetched again on the next run with online access") from None
        raise InputError(f"depth model {name}: ONNX Runtime cannot load {file} "
                         f"({type(e).__name__}: {text.splitlines()[0] if text else ''})") from None


def _loadable(f: OnnxFile, folder: str) -> str:
    """The model file's path for ONNX Runtime. The Hub's cache keeps each file as a symbolic
    link to a blob elsewhere, and ONNX Runtime refuses external weights reached through a link
    that leads out of the model's folder: a model with external weights gets both files as
    real links (hard links, else copies) side by side, beside the snapshot."""
    path = os.path.join(folder, f.path)
    if not f.data or not (os.path.islink(path) or os.path.islink(os.path.join(folder, f.data))):
        return path
    import shutil

    from ..files import replace
    dest = os.path.join(os.path.dirname(os.path.dirname(folder)), "photo3d-linked", os.path.basename(folder))
    for name in (f.path, f.data):
        src, dst = os.path.realpath(os.path.join(folder, name)), os.path.join(dest, name)
        if os.path.exists(dst):
            a, b = os.stat(src), os.stat(dst)
            if os.path.samefile(src, dst) or (a.st_size, a.st_mtime) == (b.st_size, b.st_mtime):
                continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{dst}.{os.getpid()}.tmp"
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)
        replace(tmp, dst)
    return os.path.join(dest, f.path)


# --- running -------------------------------------------------------------------------------------

def run(name: str, rgb: np.ndarray) -> tuple[np.ndarray, None, dict]:
    """(z-depth at ``rgb``'s size, no subject, extras) for float RGB in [0, 1]; extras may hold
    ``hfov_deg`` (MoGe's estimate of the horizontal field of view)."""
    spec = SPECS[name]
    sess, folder = session(name)
    if spec.family == "moge":
        return _run_moge(spec, sess, rgb)
    prep = DptPreprocess.load(folder, spec)
    h, w = rgb.shape[:2]
    img = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    x = prep(img)
    if spec.input_rank == 5:
        x = x[:, None]
    in_name = _one_input(sess, name, "pixel_values")
    out = sess.run({in_name: x.astype(_input_type(sess, in_name))})
    pred = out.get("predicted_depth", next(iter(out.values())))
    # Bicubic as transformers' post-processing; depth (not disparity) linearly: no overshoot below zero
    depth = _to_photo(_plane(pred), (w, h), cv2.INTER_CUBIC if spec.output == "disparity" else cv2.INTER_LINEAR)
    return _to_z(depth, spec.output), None, {}


def _one_input(sess, name: str, want: str) -> str:
    if want in sess.inputs:
        return want
    if len(sess.inputs) == 1:
        return next(iter(sess.inputs))
    raise InputError(f"depth model {name}: its inputs are {', '.join(sess.inputs)}, not {want} (another export?)")


def _input_type(sess, name: str):
    """The input's element type (fp16 exports may take float16)."""
    try:
        kind = next(i.type for i in sess.session.get_inputs() if i.name == name)
    except (AttributeError, StopIteration):
        return np.float32
    return {"tensor(float16)": np.float16, "tensor(double)": np.float64}.get(kind, np.float32)


def _plane(a: np.ndarray) -> np.ndarray:
    """(1, [1,] H, W[, 1]) -> (H, W) float32."""
    a = np.asarray(a, np.float32)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise RuntimeError(f"unexpected depth output of shape {a.shape}")
    return a


def _to_photo(a: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """Whatever size the network's output has (an export may fix its last resize), at ``size``."""
    if a.shape[::-1] == tuple(size):
        return a
    return cv2.resize(np.ascontiguousarray(a), size, interpolation=interpolation)


def _to_z(pred: np.ndarray, kind: str) -> np.ndarray:
    """The network's output as photo3d's z-depth: disparity as the bundled net's (near 1 to
    far 20, ratios of inverse depth kept); depth up to scale with its ratios kept, its near
    end (2nd percentile) at 1; metric depth as it is."""
    from .net import NEAR, inverse_depth_to_z
    if kind == "disparity":
        return inverse_depth_to_z(pred)
    good = np.isfinite(pred) & (pred > 0)
    if not good.any():
        raise RuntimeError("the depth model returned no positive depth")
    far = float(pred[good].max())
    z = np.where(good, pred, far)
    if kind == "depth":
        z = z * (NEAR / max(float(np.percentile(z[good], 2)), 1e-12))
    return np.clip(z, 1e-3, 1e4).astype(np.float32)


@dataclass(frozen=True)
class DptPreprocess:
    """What transformers' ``DPTImageProcessor`` does to one image, in OpenCV and NumPy: resize
    (keeping the aspect ratio, each side scaled as little as possible, to a multiple of
    ``multiple``), x * rescale, (x - mean) / std, HWC -> NCHW."""
    size: tuple[int, int]
    keep_aspect_ratio: bool
    multiple: int
    interpolation: int
    do_resize: bool
    rescale: float | None
    mean: np.ndarray | None
    std: np.ndarray | None

    @classmethod
    def load(cls, folder: str, spec: OnnxSpec) -> DptPreprocess:
        cfg = dict(spec.defaults)
        try:
            with open(os.path.join(folder, "preprocessor_config.json"), encoding="utf-8") as f:
                cfg.update({k: v for k, v in json.load(f).items() if v is not None})
        except (OSError, ValueError):
            pass                    # no config in the repository: the export's documented values
        size = cfg["size"]
        if isinstance(size, (int, float)):
            size = {"height": size, "width": size}
        # PIL resampling codes (the config's "resample") -> OpenCV's
        inter = {0: cv2.INTER_NEAREST, 1: cv2.INTER_LANCZOS4, 2: cv2.INTER_LINEAR}.get(int(cfg.get("resample", 3)),
                                                                                      cv2.INTER_CUBIC)
        norm = bool(cfg.get("do_normalize", True))
        return cls((int(size["height"]), int(size["width"])), bool(cfg.get("keep_aspect_ratio", False)),
                   int(cfg.get("ensure_multiple_of", 1) or 1), inter, bool(cfg.get("do_resize", True)),
                   float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else None,
                   np.asarray(cfg.get("image_mean", IMAGENET_MEAN), np.float32) if norm else None,
                   np.asarray(cfg.get("image_std", IMAGENET_STD), np.float32) if norm else None)

    def target_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) as transformers' ``dpt.image_processing_dpt.get_resize_output_image_size``."""
        def multiple_of(v: float) -> int:
            m = self.multiple
            return max(m, int(round(v / m) * m))
        sh, sw = self.size[0] / h, self.size[1] / w
        if self.keep_aspect_ratio:
            if abs(1 - sw) < abs(1 - sh):       # scale as little as possible
                sh = sw
            else:
                sw = sh
        return multiple_of(sh * h), multiple_of(sw * w)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """(1, 3, H', W') float32 for a uint8 RGB image (h, w, 3)."""
        h, w = img.shape[:2]
        if self.do_resize:
            th, tw = self.target_size(h, w)
            if (th, tw) != (h, w):
                # PIL's filters widen their support when shrinking; OpenCV's area filter does that job
                inter = cv2.INTER_AREA if th * 1.5 < h and tw * 1.5 < w else self.interpolation
                img = cv2.resize(img, (tw, th), interpolation=inter)
        x = img.astype(np.float32)
        if self.rescale is not None:
            x = x * np.float32(self.rescale)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


# --- MoGe-2 ----------------------------------------------------------------------------------

def _run_moge(spec: OnnxSpec, sess, rgb: np.ndarray) -> tuple[np.ndarray, None, dict]:
    h, w = rgb.shape[:2]
    for want in ("image", "num_tokens"):
        if want not in sess.inputs:
            raise InputError(f"depth model {spec.name}: its inputs are {', '.join(sess.inputs)}, "
                             "not image and num_tokens (another export?)")
    tokens = int(np.clip(round(h * w / 14 ** 2), *spec.tokens))
    image = np.ascontiguousarray(np.clip(rgb, 0, 1).transpose(2, 0, 1)[None]).astype(_input_type(sess, "image"))
    out = sess.run({"image": image, "num_tokens": np.array(tokens, np.int64)})
    scale_name = next((n for n in ("metric_scale", "scale") if n in out), None)
    if "points" not in out or "mask" not in out or scale_name is None:
        raise InputError(f"depth model {spec.name}: its outputs are {', '.join(out)}, not points, mask and "
                         "metric_scale (another export?)")
    points = _to_photo(np.asarray(out["points"], np.float32)[0], (w, h), cv2.INTER_LINEAR)
    mask = _to_photo(_plane(out["mask"]), (w, h), cv2.INTER_NEAREST) > 0.5
    scale = float(np.asarray(out[scale_name], np.float32).reshape(-1)[0])
    depth, hfov = moge_depth(points, mask, scale if np.isfinite(scale) and scale > 0 else 1.0)
    return depth, None, ({"hfov_deg": hfov} if 0 < hfov < 180 else {})


def view_plane_uv(width: int, height: int) -> np.ndarray:
    """MoGe's image-plane coordinates (H, W, 2): the corners at (+-width, +-height) / diagonal
    (``normalized_view_plane_uv_numpy``)."""
    a = width / height
    span_x, span_y = a / math.sqrt(1 + a * a), 1 / math.sqrt(1 + a * a)
    u = np.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=np.float32)
    v = np.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=np.float32)
    return np.stack(np.meshgrid(u, v, indexing="xy"), axis=-1)


def recover_focal_shift(points: np.ndarray, mask: np.ndarray, samples: int = 64) -> tuple[float, float]:
    """(focal relative to half the image diagonal, z shift) that best project the affine point
    map onto the image plane: min |focal * xy / (z + shift) - uv|, Levenberg-Marquardt over the
    shift with the focal solved in closed form (``recover_focal_shift_numpy``), on a
    ``samples`` x ``samples`` grid of the valid pixels (MoGe resizes to 64 x 64 the same way)."""
    from scipy.optimize import least_squares
    h, w = points.shape[:2]
    ys = np.minimum(((np.arange(samples) + 0.5) * h / samples).astype(int), h - 1)
    xs = np.minimum(((np.arange(samples) + 0.5) * w / samples).astype(int), w - 1)
    grid = np.ix_(ys, xs)
    keep = mask[grid].reshape(-1)
    xyz = points[grid].reshape(-1, 3)[keep].astype(np.float64)
    uv = view_plane_uv(w, h)[grid].reshape(-1, 2)[keep].astype(np.float64)
    if len(xyz) < 2:
        return 1.0, 0.0
    xy, z = xyz[:, :2], xyz[:, 2]

    def focal_of(shift):
        proj = xy / (z + shift)[:, None]
        return proj, (proj * uv).sum() / max(np.square(proj).sum(), 1e-12)

    def residual(shift):
        proj, f = focal_of(shift[0])
        return (f * proj - uv).ravel()

    shift = float(least_squares(residual, x0=[0.0], ftol=1e-3, method="lm").x[0])
    return float(focal_of(shift)[1]), shift


def moge_depth(points: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """(metric z-depth, horizontal field of view in degrees) from MoGe's raw outputs, as
    ``MoGeModel.infer``: depth = (z + shift) * scale; pixels the model marks invalid (sky,
    no surface) or that land behind the camera sit at the farthest valid depth."""
    h, w = points.shape[:2]
    valid = mask & np.isfinite(points).all(axis=-1)
    focal, shift = recover_focal_shift(points, valid)
    depth = (points[..., 2] + shift) * scale
    valid &= np.isfinite(depth) & (depth > 0)
    if not valid.any():
        raise RuntimeError("the depth model found no surface in front of the camera")
    depth = np.where(valid, depth, float(depth[valid].max()))
    a = w / h
    fx = focal / 2 * math.sqrt(1 + a * a) / a           # normalised by the width (MoGe's intrinsics)
    hfov = math.degrees(2 * math.atan(0.5 / fx)) if fx > 0 else 0.0
    return np.clip(depth, 1e-3, 1e4).astype(np.float32), hfov
