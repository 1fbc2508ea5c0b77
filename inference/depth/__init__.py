"""The depth estimators photo3d knows, by name, behind one call.

``classical`` is the built-in fallback (no learned model): scene-layout prior plus a
segmented subject placed in front; ``photo3d-net`` the bundled network. Downloadable models:
the ONNX exports (``onnx_models.py``: Depth Anything V2 and 3, MoGe-2) run through ONNX
Runtime with no PyTorch and take the plain names; PyTorch (``zoo.py``, transformers) remains
only for models without a verified ONNX export (Depth Pro, DPT-Hybrid) and model folders.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class DepthModel:
    name: str
    summary: str
    licence: str
    working_long_side: int               # resolution the estimator runs at
    # rgb -> (z-depth, subject or None) or (z-depth, subject, extras such as {"hfov_deg": ...})
    run: Callable[[np.ndarray], tuple]
    # MB to download; a callable where the device decides (an ONNX model's precision): asking
    # ONNX Runtime for its providers when the registry is built imported it, and an ONNX
    # Runtime GPU installed later in the session was then ignored until Blender restarted.
    download_mb: float | Callable[[], float] = 0.0
    is_cached: Callable[[], bool] | None = None   # None: built in
    metric: bool = False                 # depth in metres
    # Downloads the model if needed (report: zoo.DownloadStatus callback); None: on disk
    fetch: Callable[..., object] | None = None
    runtime: str = "builtin"             # what it runs on: "builtin", "onnx" (ONNX Runtime) or "torch"
    precision: Callable[[], str] | None = None   # the precision a run uses (ONNX models)
    # Its layout is guesswork on real photos: what stands behind the subject is pushed behind it
    # and flattened to a plane (depth/priors.py). A strong model's layout is left as it is.
    layout_priors: bool = False

    @property
    def size_mb(self) -> float:
        return self.download_mb() if callable(self.download_mb) else self.download_mb

    def cached(self) -> bool:
        return True if self.is_cached is None else self.is_cached()


def _classical(rgb):
    from . import classical
    return classical.estimate(rgb)


# The network the project trains itself (tools/train_depth), shipped in models/.
NET_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "models",
                           "photo3d_depth.onnx")


def _net(rgb):
    from . import confidence, net
    passes = {}
    depth, subject, normals = net.run(rgb, NET_WEIGHTS, name="photo3d-net", passes=passes)
    # The photo's and the mirrored photo's answers differ where the network guesses.
    extras = {"flip_gap": confidence.relative_gap(*passes["inv_depth"])} if "inv_depth" in passes else {}
    if normals is not None:
        extras["normals"] = normals          # the ground's prior (priors.py) finds the floor by them
    return depth, subject, extras


MODELS: dict[str, DepthModel] = {
    "classical": DepthModel(
        "classical",
        "classical fallback: scene-layout prior + face-guided subject segmentation (no learned model)",
        "GPL-3.0-or-later (photo3d)", 512, _classical),
}
if os.path.exists(NET_WEIGHTS):
    MODELS["photo3d-net"] = DepthModel(
        "photo3d-net",
        "photo3d's own small U-Net (depth, normals, subject), trained on rendered scenes; see models/README.md",
        "GPL-3.0-or-later (photo3d)", 512, _net, os.path.getsize(NET_WEIGHTS) / 1e6,
        precision=lambda: "fp32 (fp16 weights)", layout_priors=True)
# The project's own network when it is there (it always is in a release); the classical
# fallback stays selectable by name.
DEFAULT_MODEL = "photo3d-net" if "photo3d-net" in MODELS else "classical"


def _zoo_model(name: str, summary: str, licence: str, size_mb: float, metric: bool = False) -> DepthModel:
    from . import zoo
    return DepthModel(name, summary, licence, 518, lambda rgb: zoo.run(name, rgb), size_mb,
                      is_cached=lambda: zoo.cached(name), metric=metric,
                      fetch=lambda report=None: zoo.local_folder(name, report), runtime="torch")


def _onnx_model(name: str) -> DepthModel:
    from . import onnx_models
    s = onnx_models.SPECS[name]
    return DepthModel(name, s.summary + " (downloaded on first use; ONNX, no PyTorch)", s.licence,
                      s.working_long_side, lambda rgb: onnx_models.run(name, rgb),
                      lambda: onnx_models.download_mb(name),
                      is_cached=lambda: onnx_models.cached(name), metric=s.metric,
                      fetch=lambda report=None: onnx_models.fetch(name, report), runtime="onnx",
                      precision=lambda: onnx_models.pick_precision(s))


def _register_downloads():
    from .onnx_models import SPECS
    from .zoo import ZOO
    for name in SPECS:
        MODELS[name] = _onnx_model(name)
    for m in ZOO.values():                 # PyTorch only where no ONNX export is registered
        if m.name not in MODELS:
            MODELS[m.name] = _zoo_model(m.name, m.summary + " (downloaded on first use; PyTorch)", m.licence,
                                        m.size_mb, metric=m.name == "depth-pro")


_register_downloads()


def cache_stamp() -> tuple[tuple[str, int], ...]:
    """The downloadable models' cache folders and their modification times: cheap (a stat each), and
    changed when a download is marked complete or forgotten (its manifest is written or
    removed there), so that what is cached need not be checked again until then."""
    from . import onnx_models, zoo

    def mtime(path: str) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return 0
    repos = [s.repo for s in onnx_models.SPECS.values()] + [m.repo for m in zoo.ZOO.values()]
    return tuple((path, mtime(path)) for path in map(zoo.repo_dir, repos))


# transformers' model types whose depth is in metres (Depth Pro; ZoeDepth's metric heads).
METRIC_MODEL_TYPES = {"depth_pro", "zoedepth"}


def _metric_folder(folder: str) -> bool:
    """A model folder holds a metric model (its config's ``model_type``), so that a local
    Depth Pro sizes the scene in metres as the zoo's does."""
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("model_type") in METRIC_MODEL_TYPES
    except (OSError, ValueError, AttributeError):
        return False


def get_model(name: str | None) -> DepthModel:
    name = name or DEFAULT_MODEL
    if name in MODELS:
        return MODELS[name]
    if os.path.isdir(name):                # a folder written by transformers' save_pretrained
        return _zoo_model(name, f"local model {name}", "see the model's own licence", 0.0,
                          metric=_metric_folder(name))
    raise InputError(f"unknown depth model {name!r}; available: {', '.join(MODELS)} or a model folder")


def estimate_with_info(name: str | None, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(z-depth, subject probability or None, extras) at ``rgb``'s resolution; extras may
    hold ``hfov_deg`` (a model's estimate of the field of view), ``flip_gap`` (how far
    the photo's and the mirrored photo's passes differ, at the model's own resolution) and
    ``normals`` (unit camera-space normals, (H, W, 3))."""
    model = get_model(name)
    out = model.run(rgb)
    depth, subject = out[0], out[1]
    extras = dict(out[2]) if len(out) > 2 else {}
    depth = np.asarray(depth, np.float32)
    if depth.shape != rgb.shape[:2] or not np.isfinite(depth).all() or (depth <= 0).any():
        raise RuntimeError(f"depth model {model.name} returned an invalid depth map")
    return depth, subject, extras


def estimate(name: str | None, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(z-depth, subject probability or None) at ``rgb``'s resolution."""
    depth, subject, _ = estimate_with_info(name, rgb)
    return depth, subject
