#!/usr/bin/env python3
"""The bundled depth network through ONNX Runtime against OpenCV's DNN module, in one run.

    .venv/bin/python tools/engine_bench.py [PHOTO] [--repeats 9] [--sizes 512,1MP]

For each photo size: ``net.run`` as photo3d runs it (resize, pad, the network on the photo
and on its mirror, smoothing, back to the photo's size), once through the engine (ONNX
Runtime, CPU) and once through ``cv2.dnn``, interleaved, repeats after a warm-up, the
median; then one forward pass of each at the network's input size; and the largest
difference between their depths. PHOTO: an image, or an ``.npz`` with ``rgb`` (uint8)
such as ``../shared/eval/real/scene_moto.npz``; default tests/data/portrait.jpg.

OpenCV infers every shape when it reads a model and cannot read the shipped file, whose
height and width are symbolic (ONNX Runtime needs that): this tool gives OpenCV a copy with
the export size fixed (needs the ``onnx`` package, as tools/train_depth does). Both engines
get the same threads (PHOTO3D_THREADS, else all cores).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(ROOT))


def fixed_size_copy(src: str, dst: str, h: int = 288, w: int = 384):
    import onnx
    g = onnx.load(src)
    for v in [*g.graph.input, *g.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[2].dim_value, dims[3].dim_value = h, w
    onnx.save(g, dst)


class Cv2Net:
    """cv2.dnn behind the interface ``net.run`` uses (``forward(blob) -> dict``)."""

    def __init__(self, path: str):
        self.net = cv2.dnn.readNetFromONNX(path)
        self.names = ["inv_depth", "normals", "mask"]

    def forward(self, blob):
        self.net.setInput(blob)
        return dict(zip(self.names, (np.asarray(o, np.float32) for o in self.net.forward(self.names))))


def load_rgb(path: str) -> np.ndarray:
    if path.endswith(".npz"):
        rgb = np.load(path)["rgb"]
    else:
        rgb = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(rgb, np.float32) / 255.0


def sized(rgb: np.ndarray, spec: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = (float(spec[:-2]) * 1e6 / (w * h)) ** 0.5 if spec.upper().endswith("MP") else int(spec) / max(w, h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photo", nargs="?", default=os.path.join(ROOT, "tests", "data", "portrait.jpg"))
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--sizes", default="512,1MP", help="long sides in pixels or megapixels (1MP)")
    args = ap.parse_args(argv)

    from photo3d.inference import engine
    from photo3d.inference.depth import NET_WEIGHTS, net

    threads = int(os.environ.get("PHOTO3D_THREADS", "0") or 0) or os.cpu_count() or 1
    os.environ["PHOTO3D_THREADS"] = str(threads)
    cv2.setNumThreads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        fixed = os.path.join(tmp, "fixed.onnx")
        fixed_size_copy(NET_WEIGHTS, fixed)
        cv = Cv2Net(fixed)
        ort = net.load(NET_WEIGHTS, "cpu")
    print(f"# {engine.onnx_summary()}; OpenCV {cv2.__version__}; {threads} threads; "
          f"{args.repeats} repeats after a warm-up, median (min)")
    print("photo\tnet input\tengine\tnet.run ms\tforward ms\tmax |depth diff| m")
    base = load_rgb(args.photo)
    real_load = net.load
    try:
        for spec in args.sizes.split(","):
            rgb = sized(base, spec.strip())
            h, w = rgb.shape[:2]
            (_, _), (pw, ph) = net.model_input_size(w, h)
            blob = np.random.default_rng(0).random((1, 3, ph, pw), dtype=np.float32)
            runners = {"onnxruntime": ort, "cv2.dnn": cv}
            times = {k: [] for k in runners}
            fwd = {k: [] for k in runners}
            depth = {}
            for i in range(args.repeats + 1):
                for k, r in runners.items():
                    net.load = lambda *a, r=r, **kw: r
                    t = time.perf_counter()
                    d = net.run(rgb, NET_WEIGHTS)[0]
                    dt = time.perf_counter() - t
                    t = time.perf_counter()
                    r.forward(blob)
                    df = time.perf_counter() - t
                    if i:                       # the first round warms up
                        times[k].append(dt)
                        fwd[k].append(df)
                    depth[k] = d
            diff = float(np.abs(depth["onnxruntime"] - depth["cv2.dnn"]).max())
            for k in runners:
                print(f"{w}x{h}\t{pw}x{ph}\t{k}\t{statistics.median(times[k]) * 1e3:.1f} "
                      f"({min(times[k]) * 1e3:.1f})\t{statistics.median(fwd[k]) * 1e3:.1f} "
                      f"({min(fwd[k]) * 1e3:.1f})\t{diff:.2e}")
    finally:
        net.load = real_load
    return 0


if __name__ == "__main__":
    sys.exit(main())
