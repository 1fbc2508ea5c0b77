"""Depth upsampling at depth edges: bicubic vs joint bilateral (../shared/eval scenes).

    .venv/bin/python tools/eval_upsampling.py [--factor 4]

Each scene's true depth is downsampled (area, in disparity) by --factor, brought back to
full size by each method, and compared with the truth: AbsRel over all pixels and within
2 pixels of the true depth edges, and the share of edge pixels more than 5 % off.
"""
import argparse
import glob
import os
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL = os.path.join(os.path.dirname(ROOT), "shared", "eval", "scenes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--scenes", default=EVAL)
    a = ap.parse_args()
    from photo3d.inference.depth.upsample import joint_bilateral_upsample
    rows = {"bicubic": [], "joint bilateral": []}
    for path in sorted(glob.glob(os.path.join(a.scenes, "*.npz"))):
        z = np.load(path)
        depth, rgb = z["depth"].astype(np.float32), z["rgb"].astype(np.float32) / 255
        H, W = depth.shape
        disp = 1 / depth
        low = 1 / cv2.resize(disp, (W // a.factor, H // a.factor), interpolation=cv2.INTER_AREA)
        gy, gx = np.gradient(np.log(depth))
        edges = cv2.dilate((np.hypot(gx, gy) > 0.05).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        ups = {"bicubic": 1 / np.maximum(cv2.resize(1 / low, (W, H), interpolation=cv2.INTER_CUBIC), 1e-6),
               "joint bilateral": joint_bilateral_upsample(low, rgb)}
        for name, up in ups.items():
            rel = np.abs(up - depth) / depth
            rows[name].append((rel.mean(), rel[edges].mean(), (rel[edges] > 0.05).mean()))
    print(f"factor {a.factor}, {len(rows['bicubic'])} scenes: AbsRel all / at edges / edge pixels off > 5 %")
    for name, r in rows.items():
        r = np.array(r).mean(0)
        print(f"{name:16s} {r[0]:.4f}  {r[1]:.4f}  {100 * r[2]:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
