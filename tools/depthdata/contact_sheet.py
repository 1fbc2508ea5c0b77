#!/usr/bin/env python
"""Contact sheet of generated samples: rgb | inverse depth | normals | mask, one row each.

    .venv/bin/python tools/depthdata/contact_sheet.py DIR [--out sheet.png] [--n 8] [--scale 2]
"""
import argparse
import glob
import os

import cv2
import numpy as np


def row(d):
    rgb = d["rgb"]
    inv = 1.0 / np.maximum(d["depth"], 1e-3)
    v = inv[d["valid"]] if d["valid"].any() else inv.ravel()
    lo, hi = np.percentile(v, 1), np.percentile(v, 99)
    inv = np.clip((inv - lo) / max(hi - lo, 1e-6), 0, 1)
    invc = cv2.applyColorMap((inv * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    invc[~d["valid"]] = (0, 40, 90)  # beyond max depth / sky: dark blue
    n = d["normal"].astype(np.float32)
    nc = ((n * 0.5 + 0.5) * 255).astype(np.uint8)
    m = d["mask"].astype(bool)
    mc = (rgb * 0.35).astype(np.uint8)
    col = (255, 60, 60) if int(d["mask_kind"]) == 1 else (60, 200, 255)
    mc[m] = col
    return np.concatenate([rgb, invc, nc, mc], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--out", default="/tmp/depthdata_sheet.png")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--scale", type=int, default=2)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.dir, "*.npz")))[: a.n]
    rows = []
    for f in files:
        d = np.load(f)
        r = row(d)
        label = f"{os.path.basename(f)[:-4]} {d['scene']} {d['subject']} hfov={np.degrees(d['hfov']):.0f}"
        r = cv2.resize(r, None, fx=a.scale, fy=a.scale, interpolation=cv2.INTER_NEAREST)
        cv2.putText(r, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(r)
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(a.out, sheet[..., ::-1])
    print(a.out, sheet.shape)


if __name__ == "__main__":
    main()
