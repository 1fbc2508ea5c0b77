"""The depth estimators photo3d knows, by name, behind one call.

``classical`` is the built-in fallback (no learned model): scene-layout prior plus a
segmented subject placed in front. Learned models register here as they arrive.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class DepthModel:
    name: str
    summary: str
    licence: str
    working_long_side: int               # resolution the estimator runs at
    run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    size_mb: float = 0.0

    def cached(self) -> bool:
        return True                      # built in: nothing to download


def _classical(rgb):
    from . import depth_classical
    return depth_classical.estimate(rgb)


# The network the project trains itself (tools/train_depth), shipped in models/.
NET_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                           "photo3d_depth.onnx")


def _net(rgb):
    from . import depth_net
    depth, subject, _normals = depth_net.run(rgb, NET_WEIGHTS)
    return depth, subject


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
        "GPL-3.0-or-later (photo3d)", 512, _net, os.path.getsize(NET_WEIGHTS) / 1e6)
DEFAULT_MODEL = "classical"


def get_model(name: str | None) -> DepthModel:
    name = name or DEFAULT_MODEL
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"unknown depth model {name!r}; available: {', '.join(MODELS)}") from None


def estimate(name: str | None, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(z-depth, subject probability or None) at ``rgb``'s resolution."""
    model = get_model(name)
    depth, subject = model.run(rgb)
    depth = np.asarray(depth, np.float32)
    if depth.shape != rgb.shape[:2] or not np.isfinite(depth).all() or (depth <= 0).any():
        raise RuntimeError(f"depth model {model.name} returned an invalid depth map")
    return depth, subject
