"""Contact sheet of the bundled depth network on real photos: photo | depth | normals | subject.

    .venv/bin/python tools/depth_sheet.py [--weights models/photo3d_depth.onnx] [--out docs/depth_net.jpg]
        [--compare classical] [PHOTO ...]

Photos given on the command line come first, then the real photographs that ship with
the packages in .venv and the repository's test photos: scikit-image's astronaut (portrait), coffee (still life),
rocket (outdoors) and the Middlebury motorcycle (interior, has stereo ground truth,
shown as a last column), and tests/data (portrait, cat). Depth is drawn as inverse depth
(near = bright), normals as RGB (x right, y up, z towards the viewer), the subject as
its probability. ``--compare NAME`` adds that registered model's depth as a column.
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(ROOT))


def default_photos():
    from skimage import data
    photos = [("astronaut", data.astronaut()), ("coffee", data.coffee()), ("rocket", data.rocket())]
    for name in ("cat.jpg",):                       # (tests/data/portrait.jpg is the astronaut)
        img = cv2.imread(os.path.join(ROOT, "tests", "data", name))
        if img is not None:
            photos.append((name.split(".")[0], img[..., ::-1]))
    left, _r, disp = data.stereo_motorcycle()
    photos.append(("motorcycle", left, disp))
    return photos


def _inv_depth_image(depth, lo=None, hi=None):
    inv = 1.0 / np.maximum(depth, 1e-6)
    lo = np.percentile(inv, 1) if lo is None else lo
    hi = np.percentile(inv, 99) if hi is None else hi
    t = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
    return cv2.applyColorMap((t * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)


def _label(img, text):
    img = img.copy()
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="*")
    ap.add_argument("--weights", default=os.path.join(ROOT, "models", "photo3d_depth.onnx"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "depth_net.jpg"))
    ap.add_argument("--compare", default="classical", help="registered model shown beside ('' for none)")
    ap.add_argument("--height", type=int, default=180, help="row height in pixels")
    ap.add_argument("--long-side", type=int, default=None, help="the network's working size (default: its own)")
    a = ap.parse_args(argv)
    from photo3d.inference import depth as models
    from photo3d.inference.depth import net as depth_net

    extra = [(os.path.basename(p).rsplit(".", 1)[0], cv2.imread(p)[..., ::-1]) for p in a.photos]
    photos = extra + default_photos()
    rows = []
    for item in photos:
        name, rgb8 = item[0], np.ascontiguousarray(item[1][..., :3])
        rgb = rgb8.astype(np.float32) / 255.0
        kw = {"long_side": a.long_side} if a.long_side else {}
        depth, subject, normals = depth_net.run(rgb, a.weights, **kw)
        h, w = rgb.shape[:2]
        cols = [_label(rgb8[..., ::-1], name), _label(_inv_depth_image(depth), "photo3d-net depth")]
        if normals is not None:
            cols.append(_label(((np.clip(normals, -1, 1) + 1) * 127.5).astype(np.uint8)[..., ::-1], "normals"))
        if subject is not None:
            cols.append(_label(cv2.cvtColor((subject * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR), "subject"))
        if a.compare:
            d = models.estimate(a.compare, rgb)[0]
            cols.append(_label(_inv_depth_image(cv2.resize(d, (w, h))), a.compare))
        if len(item) > 2:                                   # ground truth (disparity)
            disp = item[2]
            ok = np.isfinite(disp)
            gt = np.where(ok, 1.0 / np.where(ok, np.maximum(disp, 1e-6), 1.0), np.nan)
            img = _inv_depth_image(np.where(ok, gt, np.nanmax(gt)))
            img[~ok] = 0
            cols.append(_label(img, "stereo ground truth"))
        s = a.height / h
        cols = [cv2.resize(c, (int(round(w * s)), a.height), interpolation=cv2.INTER_AREA) for c in cols]
        rows.append(np.hstack(cols))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    cv2.imwrite(a.out, np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
