"""Depth scores on ../shared/eval's scenes (never used for training), per model.

    .venv/bin/python tools/eval_depth.py [--models classical,photo3d-net] [--weights FILE.onnx]

Prints AbsRel and delta1 (affine-invariant in disparity, ../shared/eval/depth_metrics.py)
per scene and their means, beside a plain vertical ramp as the floor to beat; then the
same on one real photograph with measured depth: the Middlebury "motorcycle" stereo pair
that scikit-image ships (left view, ground truth from its disparity map; an indoor scene
no model here was trained on).
"""
import argparse
import glob
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL = os.path.join(os.path.dirname(ROOT), "shared", "eval")


def _metrics():
    spec = importlib.util.spec_from_file_location("depth_metrics", os.path.join(EVAL, "depth_metrics.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.ssi_metrics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=None, help="comma list (default: every registered model)")
    ap.add_argument("--weights", default=None, help="score this ONNX file as 'net' too")
    ap.add_argument("--scenes", default=os.path.join(EVAL, "scenes"))
    a = ap.parse_args()
    from photo3d.inference import depth as models
    from photo3d.inference.depth import net as depth_net
    from photo3d.inference.photo import resize, working_size
    ssi = _metrics()
    # by default every registered model that runs offline (downloadable ones once cached)
    names = a.models.split(",") if a.models else [n for n, m in models.MODELS.items() if m.cached()]
    runs = {n: (lambda rgb, n=n: models.estimate(n, rgb)[0]) for n in names}
    if a.weights:
        runs["net:" + os.path.basename(a.weights)] = lambda rgb: depth_net.run(rgb, a.weights)[0]
    runs["vertical ramp"] = lambda rgb: np.repeat(np.linspace(10.0, 1.0, rgb.shape[0])[:, None], rgb.shape[1], 1)
    scores = {n: [] for n in runs}
    for f in sorted(glob.glob(os.path.join(a.scenes, "scene_*.npz"))):
        z = np.load(f)
        rgb = z["rgb"].astype(np.float32) / 255.0
        h, w = rgb.shape[:2]
        for name, run in runs.items():
            small = resize(rgb, working_size(w, h, 512))
            d = run(small)
            d = resize(np.asarray(d, np.float32), (w, h))
            scores[name].append(ssi(1.0 / d, z["depth"]))
    real = _real_photo_scores(runs, ssi, resize, working_size)
    print(f"{'model':<28} {'AbsRel':>8} {'delta1':>8}   (mean of {len(scores[names[0]])} scenes)"
          f"   {'real AbsRel':>11} {'real delta1':>11}   (Middlebury motorcycle)")
    for name, s in scores.items():
        s = np.array(s)
        r = real.get(name, (float("nan"), float("nan")))
        print(f"{name:<28} {s[:, 0].mean():8.3f} {s[:, 1].mean():8.3f}   {r[0]:11.3f} {r[1]:11.3f}")


def _real_photo_scores(runs, ssi, resize, working_size):
    """{model: (AbsRel, delta1)} on the Middlebury motorcycle (skimage.data), or {}."""
    try:
        from skimage.data import stereo_motorcycle
        left, _right, disp = stereo_motorcycle()
    except Exception as exc:                      # scikit-image missing or too old
        print(f"(no real-photo score: {exc})")
        return {}
    rgb = left.astype(np.float32) / 255.0
    h, w = rgb.shape[:2]
    valid = np.isfinite(disp) & (disp > 0)
    gt = np.where(valid, 1.0 / np.where(valid, disp, 1.0), np.inf)
    out = {}
    for name, run in runs.items():
        d = resize(np.asarray(run(resize(rgb, working_size(w, h, 512))), np.float32), (w, h))
        out[name] = ssi(1.0 / d, gt, valid)
    return out


if __name__ == "__main__":
    sys.exit(main())
