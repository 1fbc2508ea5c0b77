"""Reading the user's photo: any common format and bit depth, EXIF orientation, field of view.

Everything downstream works on a float32 RGB image in [0, 1] (sRGB-encoded, as stored),
at a bounded *working* resolution; the full-resolution pixels are kept for the texture.
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InputError

# Horizontal field of view used when the photo carries no focal length: a phone's main
# camera (26 mm equivalent, about 69 degrees) is the commonest source of photos today.
DEFAULT_HFOV_DEG = 65.0
# Above this the photo is refused (read from the file's header, before decoding): 200 MP
# of float32 RGB is already 2.4 GB. A user-supplied depth image is held to the same limit.
MAX_PIXELS = 200_000_000
# Texture size cap: GPUs commonly refuse textures over 16k; 8k keeps memory sane.
MAX_TEXTURE_SIDE = 8192

_EXIF_ORIENTATION = 0x0112
_EXIF_FOCAL_35MM = 0xA405
_EXIF_IFD = 0x8769


@dataclass
class Photo:
    rgb: np.ndarray            # float32 (H, W, 3) in [0, 1], sRGB-encoded, upright
    alpha: np.ndarray | None   # float32 (H, W) in [0, 1] when the file has transparency
    path: str
    hfov_from_exif: float | None

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.rgb.shape[:2]
        return w, h


_PIL_LIMIT_LOCK = threading.Lock()


def _pil_open(path: str):
    """Pillow's lazy image (header read, pixels not decoded). Pillow refuses headers above
    2 x ``Image.MAX_IMAGE_PIXELS`` (179 MP) as decompression bombs, below our own limit:
    such a header is read again with that check lifted, so that the size check applies."""
    from PIL import Image
    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        with _PIL_LIMIT_LOCK:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def _exif(path: str) -> tuple[int, float | None, tuple[int, int] | None]:
    """(orientation 1..8, 35 mm-equivalent focal length or None, (w, h) or None)."""
    try:
        import PIL  # noqa: F401
    except ImportError:  # Pillow is optional inside Blender: OpenCV still decodes
        return 1, None, None
    try:
        with _pil_open(path) as im:
            exif = im.getexif()
            orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
            f35 = None
            try:
                sub = exif.get_ifd(_EXIF_IFD)
                v = sub.get(_EXIF_FOCAL_35MM)
                if v:
                    f35 = float(v)
            except Exception:
                pass
            return orientation, f35, im.size
    except Exception:
        return 1, None, None


def _check_pixels(what: str, size: tuple[int, int] | None) -> None:
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise InputError(f"{what} is too large ({size[0]}x{size[1]}, {size[0] * size[1] / 1e6:.0f} megapixels); "
                         f"the limit is {MAX_PIXELS // 1_000_000} megapixels")


def _imdecode(buf: np.ndarray, flags: int, what: str) -> np.ndarray | None:
    """OpenCV's decoding, None where it cannot decode; its own size limit (1 GP), reached
    where Pillow could not read the header, is reported as the size it is."""
    if not buf.size:
        return None
    try:
        return cv2.imdecode(buf, flags)
    except cv2.error as e:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(e):
            raise InputError(f"{what} is too large (over {2**30 / 1e6:.0f} megapixels); "
                             f"the limit is {MAX_PIXELS // 1_000_000} megapixels") from None
        return None


def _pil_decode(path: str) -> np.ndarray | None:
    """The formats OpenCV cannot read (GIF: its first frame), decoded by Pillow into OpenCV's
    layout: grey (H, W), grey + alpha (H, W, 2), BGR or BGRA; None where Pillow cannot either."""
    try:
        with _pil_open(path) as im:
            im.seek(0)
            if im.mode == "P" or im.mode == "PA":
                im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
            elif im.mode not in ("L", "LA", "RGB", "RGBA", "I;16"):
                im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
            img = np.asarray(im)
    except Exception:  # noqa: BLE001 - unreadable here too: the caller's message says so
        return None
    if img.ndim == 3 and img.shape[2] >= 3:
        img = np.concatenate([img[:, :, 2::-1], img[:, :, 3:]], axis=2)
    return np.ascontiguousarray(img)


def hfov_from_focal_35mm(f35: float, width: int, height: int) -> float:
    """Horizontal FOV from a 35 mm-equivalent focal length (defined on the 43.3 mm diagonal)."""
    diag = math.hypot(width, height)
    sensor_w = 43.27 * width / diag
    return math.degrees(2 * math.atan(sensor_w / (2 * f35)))


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:
        return np.swapaxes(img, 0, 1)
    if orientation == 6:
        return np.swapaxes(img, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(img, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(img, 0, 1)[::-1]
    return img


def _to_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    img = img.astype(np.float32)
    return np.clip(np.nan_to_num(img), 0.0, 1.0)


def load_photo(path: str) -> Photo:
    """Read a photo: JPEG/PNG/TIFF/WebP/BMP/GIF/..., 8/16-bit/float, gray/RGB/RGBA, EXIF-upright.
    Of an animated GIF the first frame is used. Photos over ``MAX_PIXELS`` are refused."""
    if not os.path.exists(path):
        raise InputError(f"photo not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"photo is a folder, not an image file: {path}")
    orientation, f35, pil_size = _exif(path)
    _check_pixels("photo", pil_size)
    # IMREAD_UNCHANGED keeps 16-bit and alpha; it ignores EXIF orientation, applied below.
    buf = np.fromfile(path, dtype=np.uint8)  # also handles non-ASCII paths on Windows
    img = _imdecode(buf, cv2.IMREAD_UNCHANGED, "photo")
    if img is None and buf.size:
        img = _pil_decode(path)
    if img is None:
        raise InputError(f"cannot read {os.path.basename(path)}: not an image, or a corrupt/truncated file")
    _check_pixels("photo", (img.shape[1], img.shape[0]))     # where Pillow could not read the header
    if img.ndim == 2:
        img = img[:, :, None]
    if min(img.shape[:2]) < 16:
        raise InputError(f"photo is too small ({img.shape[1]}x{img.shape[0]}): at least 16x16 pixels are needed")
    _check_truncated(path, buf)
    img = _apply_orientation(img, orientation)
    f = _to_float(img)
    c = f.shape[2]
    alpha = None
    if c == 1:
        rgb = np.repeat(f, 3, axis=2)
    elif c == 2:  # gray + alpha
        rgb, alpha = np.repeat(f[:, :, :1], 3, axis=2), f[:, :, 1]
    else:
        rgb = f[:, :, 2::-1]  # OpenCV's BGR(A) -> RGB
        if c >= 4:
            alpha = f[:, :, 3]
    if alpha is not None and float(alpha.min()) >= 0.999:
        alpha = None
    h, w = rgb.shape[:2]
    hfov = hfov_from_focal_35mm(f35, w, h) if f35 else None
    return Photo(np.ascontiguousarray(rgb, dtype=np.float32),
                 None if alpha is None else np.ascontiguousarray(alpha), path, hfov)


def _check_truncated(path: str, buf: np.ndarray) -> None:
    """libjpeg decodes a truncated JPEG into grey padding with only a warning: refuse it."""
    head = bytes(buf[:3])
    if head == b"\xff\xd8\xff":
        tail = bytes(buf[-2048:]).rstrip(b"\x00")
        if not tail.endswith(b"\xff\xd9"):
            raise InputError(f"cannot read {os.path.basename(path)}: the JPEG file is truncated")


def working_size(w: int, h: int, long_side: int) -> tuple[int, int]:
    """(w, h) scaled so that the long side is at most ``long_side``, aspect kept."""
    s = min(1.0, long_side / max(w, h))
    return max(2, round(w * s)), max(2, round(h * s))


def resize(img: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    w, h = size
    if img.shape[1] == w and img.shape[0] == h:
        return img
    if nearest:
        interp = cv2.INTER_NEAREST
    elif w < img.shape[1]:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def load_depth_file(path: str, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Read a user-supplied depth: ``.npy`` z-depth, or an image of inverse depth (white = near).

    Returns (z-depth float32 at the file's resolution, metric?). The shape must match the
    photo's aspect ratio and resolution (``size`` = (w, h)); a mismatch is an error, since a
    depth map of another photo would silently produce nonsense.
    """
    if not os.path.exists(path):
        raise InputError(f"depth file not found: {path}")
    w, h = size
    name = os.path.basename(path)
    if path.lower().endswith(".npy"):
        d = _load_depth_array(path, name)
        if d.shape != (h, w):
            raise InputError(f"depth {name} is {d.shape[1]}x{d.shape[0]} but the photo is {w}x{h}")
        ok = np.isfinite(d) & (d > 0)
        if not ok.any():
            raise InputError(f"depth {name} has no positive finite values (all are NaN, infinite, zero or negative)")
        d = np.where(ok, d, float(d[ok].max())).astype(np.float32)
        return d, True
    _check_pixels(f"depth {name}", _exif(path)[2])     # from the header: a huge file is never decoded
    buf = np.fromfile(path, dtype=np.uint8)
    img = _imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE, f"depth {name}")
    if img is None:
        raise InputError(f"cannot read depth {name}: not an image or .npy file")
    if img.shape != (h, w):
        raise InputError(f"depth {name} is {img.shape[1]}x{img.shape[0]} but the photo is {w}x{h}")
    inv = _to_float(img) if img.dtype != np.float32 else img.astype(np.float32)
    return inverse_to_depth(inv), False


_DTYPE_KINDS = {"U": "text", "S": "bytes", "b": "true/false values", "c": "complex numbers",
               "V": "records", "M": "dates", "m": "time spans"}


def _load_depth_array(path: str, name: str) -> np.ndarray:
    """A ``.npy`` depth as float32 (H, W): a plain numeric array (never pickled objects)."""
    try:
        d = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise InputError(f"depth {name} holds Python objects; it must be a numeric array") from None
        raise InputError(f"cannot read depth {name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any decoding failure is the same user error
        raise InputError(f"cannot read depth {name}: {e}") from None
    if not isinstance(d, np.ndarray):     # an .npz archive under a .npy name
        raise InputError(f"depth {name} is not a single array (an .npz archive?); save one array with numpy.save")
    if not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)):
        kind = _DTYPE_KINDS.get(d.dtype.kind, "non-numeric values")
        raise InputError(f"depth {name} holds {kind} (dtype {d.dtype}); it must be a numeric array of depths in metres")
    d = np.squeeze(d)
    if d.ndim != 2:
        raise InputError(f"depth {name} must be a 2-D array, got shape {d.shape}")
    return d.astype(np.float32)


def inverse_to_depth(inv: np.ndarray, near: float = 1.0, far_ratio: float = 20.0) -> np.ndarray:
    """Relative inverse depth (any affine scale, white = near) -> z-depth in [near, near*far_ratio]."""
    lo, hi = np.percentile(inv, [0.5, 99.5])
    if hi - lo < 1e-6:
        return np.full(inv.shape, near * 3.0, np.float32)
    t = np.clip((inv - lo) / (hi - lo), 0.0, 1.0)
    disp = 1.0 / far_ratio + t * (1.0 - 1.0 / far_ratio)  # disparity in [1/far, 1]
    return (near / disp).astype(np.float32)
