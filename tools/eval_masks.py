"""Subject-mask quality on ../shared/eval's scenes: IoU and boundary F-score.

    .venv/bin/python tools/eval_masks.py [--depth-model NAME]

The reference mask of each scene is its nearest object(s): the near layer that photo3d's
own layering finds in the *true* depth. The predicted mask is what `make` writes as
mask.png (subject + near layer from the model's depth). Boundary F: precision and recall
of outline pixels within 2 px of the other outline.
"""
import argparse
import glob
import os
import sys
import tempfile

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL = os.path.join(os.path.dirname(ROOT), "shared", "eval", "scenes")


def _outline(m):
    return m & ~(cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)


def boundary_f(pred, ref, tol=2):
    bp, br = _outline(pred), _outline(ref)
    if not bp.any() or not br.any():
        return float(bp.any() == br.any())
    k = np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)
    near_r = cv2.dilate(br.astype(np.uint8), k) > 0
    near_p = cv2.dilate(bp.astype(np.uint8), k) > 0
    precision, recall = (bp & near_r).sum() / bp.sum(), (br & near_p).sum() / br.sum()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth-model", default=None)
    ap.add_argument("--scenes", default=EVAL)
    a = ap.parse_args()
    from photo3d.inference import layers, pipeline
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(glob.glob(os.path.join(a.scenes, "*.npz"))):
            z = np.load(path)
            photo = os.path.join(tmp, "photo.png")
            cv2.imwrite(photo, cv2.cvtColor(z["rgb"], cv2.COLOR_RGB2BGR))
            ref = layers.split_layers(z["depth"].astype(np.float32), 8).near
            r = pipeline.run(photo, pipeline.Settings(depth_model=a.depth_model, hfov_deg=float(z["hfov"])))
            pred = cv2.resize(r.mask.astype(np.uint8), ref.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
            iou = (pred & ref).sum() / max(1, (pred | ref).sum())
            scores.append((iou, boundary_f(pred, ref)))
            print(f"{os.path.basename(path)}  IoU {iou:.3f}  boundary F {scores[-1][1]:.3f}")
    s = np.mean(scores, 0)
    print(f"mean  IoU {s[0]:.3f}  boundary F {s[1]:.3f}  ({len(scores)} scenes, model {a.depth_model or 'default'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
