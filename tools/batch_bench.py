"""Photos per minute of ``python -m photo3d batch`` with 1 and 2 local workers, without and with
a short render, in one run: the real photos that ship with scikit-image, each batch into a fresh
folder, timed from the command's start to its end (cluster start-up included).

    python tools/batch_bench.py [--photos 8] [--side 480] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "cat", "retina", "motorcycle_left", "motorcycle_right")


def photos(folder: str, count: int, side: int) -> list[str]:
    from skimage import data
    paths = []
    for k in range(count):
        name = SKIMAGE_PHOTOS[k % len(SKIMAGE_PHOTOS)]
        try:
            rgb = np.asarray(getattr(data, name)())
        except Exception:  # noqa: BLE001 - a photo skimage cannot load offline: the next one
            continue
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        h, w = rgb.shape[:2]
        s = side / max(h, w)
        img = cv2.resize(rgb[:, :, :3], (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        path = os.path.join(folder, f"{k:02d}-{name}.jpg")
        cv2.imwrite(path, img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths


def run(paths: list[str], out: str, workers: int, extra: list[str]) -> dict:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "photo3d", "batch", *paths, "--out", out, "--workers", str(workers),
                        *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"batch failed: {p.stderr.strip().splitlines()[-1:]}")
    s = json.load(open(os.path.join(out, "batch.json")))
    tasks = [e["seconds"] for e in s["photos"] if e["status"] == "done"]
    return {"wall": wall, "done": s["counts"]["done"], "per_min": 60 * s["counts"]["done"] / wall,
            "task_median": float(np.median(tasks))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--side", type=int, default=480, help="long side of each photo in pixels")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--render", default="--frames 12 --size 160x120 --engine cycles --samples 4",
                    help="the short render's options")
    args = ap.parse_args()
    short = args.render.split()
    modes = [("--no-render", ["--no-render"], args.workers), (f"render ({args.render})", short, args.workers),
             ("same render, --frames-per-task 6", [*short, "--frames-per-task", "6"],
              [w for w in args.workers if w > 1])]
    with tempfile.TemporaryDirectory() as tmp:
        paths = photos(tmp, args.photos, args.side)
        print(f"# {len(paths)} photos, {args.side} px long side; {os.cpu_count()} CPUs; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        print("| mode | workers | photos | wall s | photos/min | median task s |")
        print("|---|---|---|---|---|---|")
        for k, (mode, extra, workers) in enumerate(modes):
            for w in workers:
                r = run(paths, os.path.join(tmp, f"out-{k}-{w}"), w, extra)
                print(f"| {mode} | {w} | {r['done']} | {r['wall']:.1f} | {r['per_min']:.1f} | "
                      f"{r['task_median']:.1f} |", flush=True)
        print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
