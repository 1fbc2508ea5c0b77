"""photo3d's learned monocular depth network at inference time: ONNX through ONNX Runtime.

No torch and no bpy: the network (trained and exported by ``tools/train_depth``) is an
ONNX file run by the engine (``inference/engine.py``: the best execution provider for the
device setting, the CPU as the fallback).

The network's contract (see ``tools/train_depth/model.py``):

* input ``rgb``: float32 NCHW RGB in [0, 1], H and W multiples of 32 (the ImageNet
  normalisation is inside the network); the file declares H and W symbolic
  (``export.py --dynamic-size``): ONNX Runtime runs only the sizes a file declares;
* output ``inv_depth`` (N,1,H,W): positive *relative* inverse depth, known only up to an
  unknown scale and shift (affine-invariant, MiDaS-style);
* optional outputs ``normals`` (N,3,H,W, unit camera-space normals) and ``mask``
  (N,1,H,W, subject logits). A model whose outputs carry other names is read by
  order: the first output is the inverse depth, then a 3-channel one is the normals
  and another 1-channel one the subject logits.

:func:`run` resizes the photo so that its long side is ``long_side`` (320) keeping the
aspect, pads it (edge-reflected) to multiples of 32, runs the network, crops the padding
off and resizes the results back to the photo's resolution.

From relative inverse depth to z-depth (nominal metres), :func:`inverse_depth_to_z`:
the inverse depth is normalised robustly, its ``lo_pct`` percentile (2 %) mapped to
``1/far`` and its ``hi_pct`` percentile (98 %) to ``1/near``, values beyond those clipped;
then z = 1 / that. With the defaults ``near = 1`` and ``far = 20``: the nearest things
in the photo sit about 1 m from the camera, the farthest (sky included) about 20 m, and
ratios of inverse depth in between are kept. A flat prediction (no depth contrast)
gives a constant depth of sqrt(near * far).

Loaded networks are kept by the engine (``engine.onnx_session``: per file, its modification
time and size, and device; ``engine.release`` frees them), whose session runs one forward
pass at a time.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from .. import engine
from ..errors import InputError

__all__ = ["run", "load", "inverse_depth_to_z", "model_input_size", "DEFAULT_LONG_SIDE", "NEAR", "FAR"]

DEFAULT_LONG_SIDE = 320
NEAR, FAR = 1.0, 20.0
LO_PCT, HI_PCT = 2.0, 98.0
_MULTIPLE = 32
_KNOWN = ("inv_depth", "normals", "mask")


class _LoadedNet:
    def __init__(self, session: engine.OnnxSession):
        self.session = session
        if len(session.inputs) != 1:
            raise InputError(f"cannot load depth model {session.path}: it takes {len(session.inputs)} inputs, "
                             "not one RGB image")
        self.input = next(iter(session.inputs))
        names = list(session.outputs)
        known = [n for n in _KNOWN if n in names]
        self.out_names = known if "inv_depth" in known else names

    def fixed_size(self) -> tuple[int, int] | None:
        """(H, W) when the file declares a fixed input size (an export from before symbolic sizes)."""
        shape = self.session.inputs[self.input] or []
        dims = shape[2:4] if len(shape) == 4 else []
        return tuple(dims) if len(dims) == 2 and all(isinstance(d, int) and d > 0 for d in dims) else None

    def forward(self, blob: np.ndarray) -> dict:
        """{'inv_depth': (1,1,H,W), 'normals': (1,3,H,W) or absent, 'mask': ... or absent}."""
        named = self.session.run({self.input: blob})
        outs = [np.asarray(named[n], np.float32) for n in self.session.outputs]
        named = dict(zip(self.session.outputs, outs))
        if "inv_depth" in named:
            return {k: v for k, v in named.items() if k in _KNOWN}
        # unnamed outputs: the first is the inverse depth, then by channel count
        result = {"inv_depth": outs[0]}
        for o in outs[1:]:
            if o.ndim == 4 and o.shape[1] == 3 and "normals" not in result:
                result["normals"] = o
            elif o.ndim == 4 and o.shape[1] == 1 and "mask" not in result:
                result["mask"] = o
        return result


def load(path: str, device: str | None = None, name: str = "") -> _LoadedNet:
    """The network in ``path`` on ``device`` (None: the engine's device setting), its session
    loaded once by the engine (``engine.release`` frees it). InputError when it is missing or
    unreadable."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise InputError(f"depth model weights not found: {path}")
    if not os.path.isfile(path):
        raise InputError(f"depth model weights not found: {path} is not a file")
    try:
        # The engine's cache alone (by file, its time and size, and device): a second one here
        # kept sessions alive past engine.release(). The wrapper costs nothing to make again.
        session = engine.onnx_session(path, device, name=name or os.path.basename(path), role="depth model")
    except engine.ModelLoadError as e:
        raise InputError(f"cannot load depth model {path}: {e.reason}") from None
    return _LoadedNet(session)


def model_input_size(w: int, h: int, long_side: int = DEFAULT_LONG_SIDE) -> tuple[tuple[int, int], tuple[int, int]]:
    """((rw, rh) the photo is resized to, (pw, ph) padded to multiples of 32)."""
    s = long_side / max(w, h)
    rw, rh = max(1, int(round(w * s))), max(1, int(round(h * s)))

    def pad(v):
        return max(_MULTIPLE, -(-v // _MULTIPLE) * _MULTIPLE)

    return (rw, rh), (pad(rw), pad(rh))


def inverse_depth_to_z(inv: np.ndarray, near: float = NEAR, far: float = FAR,
                       lo_pct: float = LO_PCT, hi_pct: float = HI_PCT) -> np.ndarray:
    """Relative inverse depth -> positive z-depth in [near, far] (see the module doc)."""
    if not (0 < near < far):
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    inv = np.asarray(inv, np.float32)
    finite = np.isfinite(inv)
    vals = inv[finite]
    if vals.size == 0:
        return np.full(inv.shape, np.sqrt(near * far), np.float32)
    lo, hi = np.percentile(vals, [lo_pct, hi_pct])
    if not hi - lo > 1e-6 * max(1.0, abs(hi)):
        return np.full(inv.shape, np.sqrt(near * far), np.float32)
    t = np.clip((np.where(finite, inv, lo) - lo) / (hi - lo), 0.0, 1.0)
    disparity = 1.0 / far + t * (1.0 / near - 1.0 / far)
    return (1.0 / disparity).astype(np.float32)


def _smooth_keeping_edges(inv: np.ndarray) -> np.ndarray:
    """Bilateral smoothing of the network's inverse depth: the photo's texture leaves
    pixel-scale ripples in it that no one sees in 3D but that keep the adaptive mesh
    from merging flat blocks; steps in depth (occlusion edges) stay sharp."""
    inv = np.ascontiguousarray(inv, np.float32)
    lo, hi = np.percentile(inv, [2, 98])
    sigma = 0.04 * max(float(hi - lo), 1e-6)
    return cv2.bilateralFilter(inv, 7, sigma, 3.0)


def run(rgb: np.ndarray, weights: str, *, long_side: int = DEFAULT_LONG_SIDE,
        near: float = NEAR, far: float = FAR, flip: bool = True, smooth: bool = True,
        device: str | None = None, name: str = "", passes: dict | None = None):
    """Depth of a photo with the network in ``weights`` (``name``: what ``bench`` calls it;
    ``device``: auto, cpu, gpu, None for the engine's setting).

    rgb: float32 (H, W, 3) RGB in [0, 1]. Returns (z-depth float32 (H, W) in [near, far],
    subject probability float32 (H, W) in [0, 1] or None, unit normals float32 (H, W, 3)
    or None), all at the photo's resolution. ``passes``, when given, receives
    ``inv_depth``: the photo's and the mirrored photo's raw inverse depth (the network's
    resolution), whose gap tells how sure the depth is (confidence.py).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"depth model input must be an RGB image (H, W, 3), got shape {rgb.shape}")
    net = load(weights, device, name)
    h, w = rgb.shape[:2]
    img = np.clip(np.nan_to_num(rgb[..., :3].astype(np.float32)), 0.0, 1.0)
    (rw, rh), (pw, ph) = model_input_size(w, h, long_side)
    interp = cv2.INTER_AREA if rw < w else cv2.INTER_LINEAR
    small = cv2.resize(img, (rw, rh), interpolation=interp) if (rw, rh) != (w, h) else img
    border = cv2.BORDER_REFLECT_101 if min(rw, rh) > 1 else cv2.BORDER_REPLICATE
    small = cv2.copyMakeBorder(small, 0, ph - rh, 0, pw - rw, border)
    blob = np.ascontiguousarray(small.transpose(2, 0, 1)[None], np.float32)
    try:
        outs = net.forward(blob)
        if flip:
            # test-time augmentation: the mirrored photo's answer, mirrored back, averaged in
            # (normals' x flips sign). Steadier depth on real photos for a second pass.
            mirrored = net.forward(np.ascontiguousarray(blob[..., ::-1]))
            for k, o in mirrored.items():
                if k in outs and o.shape == outs[k].shape:
                    o = o[..., ::-1].copy()
                    if k == "normals":
                        o[:, 0] *= -1
                    if k == "inv_depth" and passes is not None:
                        passes[k] = (outs[k][0, 0, :rh, :rw], o[0, 0, :rh, :rw])
                    outs[k] = 0.5 * (outs[k] + o)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - ONNX Runtime's errors derive from Exception only
        fixed = net.fixed_size()
        hint = (f" (the file declares a fixed input size {fixed[1]}x{fixed[0]}: make it symbolic with "
                f"tools/train_depth/export.py --dynamic-size)" if fixed and fixed != (ph, pw) else "")
        raise InputError(f"depth model {os.path.abspath(weights)} failed to run: {engine.error_text(e)}{hint}") \
            from None

    def back(a):                       # (1,C,ph,pw) -> (h,w,C) at the photo's resolution
        a = a[0, :, :rh, :rw].transpose(1, 2, 0)
        a = cv2.resize(np.ascontiguousarray(a), (w, h), interpolation=cv2.INTER_LINEAR)
        return a.reshape(h, w, -1)

    inv = outs["inv_depth"]
    if inv.ndim != 4 or inv.shape[0] != 1 or inv.shape[2:] != (ph, pw):
        raise InputError(f"depth model {weights}: unexpected output shape {inv.shape} for input {blob.shape}")
    if smooth:
        inv = inv.copy()
        inv[0, 0] = _smooth_keeping_edges(inv[0, 0])
    depth = inverse_depth_to_z(back(inv[:, :1])[..., 0], near, far)

    subject = None
    if "mask" in outs:
        logits = np.clip(back(outs["mask"][:, :1])[..., 0], -60, 60)
        subject = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    normals = None
    if "normals" in outs:
        n = back(outs["normals"][:, :3])
        norm = np.linalg.norm(n, axis=2, keepdims=True)
        normals = np.where(norm > 1e-6, n / np.maximum(norm, 1e-6), np.float32([0, 0, 0])).astype(np.float32)
    return depth, subject, normals
