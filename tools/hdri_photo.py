"""A perspective photo cut from one of the photographic HDRIs that ship inside the bpy wheel
(Poly Haven, CC0): real photos with the sun in them, for the light-shaft and splash docs.

    .venv/bin/python tools/hdri_photo.py sunrise out/sunrise.jpg [--hfov 70] [--size 768x432]
        [--above 10] [--right 8] [--exposure 1.2]

--above / --right: where the sun lands, in degrees from the photo's centre. The HDRIs are
1K equirectangular, so a 70 degree crop holds about 200 source pixels across: soft photos.
"""
import argparse
import math
import os

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2  # noqa: E402
import numpy as np  # noqa: E402


def hdri_crop(hdri: str, size: tuple[int, int] = (768, 432), hfov: float = 70.0, above: float = 10.0,
              right: float = 8.0, exposure: float = 1.2) -> np.ndarray:
    """A perspective view (BGR uint8) of the ``hdri`` named, ``above`` and ``right`` degrees
    from the sun."""
    import bpy
    path = os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights", "world", f"{hdri}.exr")
    hdr = cv2.imread(path, cv2.IMREAD_UNCHANGED)[:, :, :3].astype(np.float32)
    hdr = np.nan_to_num(hdr, nan=0.0, posinf=1000.0).clip(0.0, 1000.0)
    H, W = hdr.shape[:2]
    lum = cv2.GaussianBlur(hdr.mean(2), (9, 9), 0)
    v0, u0 = np.unravel_index(np.argmax(lum), lum.shape)          # the sun
    lon0 = (u0 + 0.5) / W * 2 * math.pi - math.pi
    lat0 = math.pi / 2 - (v0 + 0.5) / H * math.pi
    w, h = size
    pitch, yaw = lat0 - math.radians(above), lon0 + math.radians(right)
    f = 0.5 * w / math.tan(math.radians(hfov) / 2)
    xs, ys = np.meshgrid(np.arange(w) + 0.5 - w / 2, -(np.arange(h) + 0.5 - h / 2))
    d = np.stack([xs, ys, -np.full_like(xs, f)], -1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    up = d[..., 1] * math.cos(pitch) - d[..., 2] * math.sin(pitch)
    fwd = -d[..., 1] * math.sin(pitch) - d[..., 2] * math.cos(pitch)
    lon = yaw + np.arctan2(d[..., 0], fwd)
    lat = np.arcsin(np.clip(up, -1, 1))
    mapx = ((lon + math.pi) / (2 * math.pi) * W - 0.5) % W
    mapy = (math.pi / 2 - lat) / math.pi * H - 0.5
    img = cv2.remap(hdr, mapx.astype(np.float32), mapy.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_WRAP) * exposure
    img = (img / (1 + img)) ** (1 / 2.2)                           # a soft shoulder, then display gamma
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hdri", help="city, courtyard, forest, interior, night, studio, sunrise, sunset")
    ap.add_argument("out")
    ap.add_argument("--hfov", type=float, default=70.0)
    ap.add_argument("--size", default="768x432")
    ap.add_argument("--above", type=float, default=10.0)
    ap.add_argument("--right", type=float, default=8.0)
    ap.add_argument("--exposure", type=float, default=1.2)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    img = hdri_crop(a.hdri, (w, h), a.hfov, a.above, a.right, a.exposure)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    cv2.imwrite(a.out, img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    os._exit(0)


if __name__ == "__main__":
    main()
