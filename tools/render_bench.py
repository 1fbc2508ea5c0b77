"""Render speed against quality on the demo scene: seconds a frame and PSNR against a
high-sample reference, for Cycles and Eevee at several sample counts (docs/performance.md).

    PYTHONPATH=... python tools/render_bench.py [--size 512] [--engines cycles,eevee]

One frame of the circle path (a quarter of the way round), the portrait of tests/data.
Each setting renders once untimed (building the BVH or compiling Eevee's shaders, which a
clip pays once), then --repeat times; the median counts.
"""
import argparse
import math
import os
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default=os.path.join(ROOT, "tests", "data", "portrait.jpg"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--engines", default="cycles,eevee")
    ap.add_argument("--cycles", default="1,2,4,8,16", help="sample counts")
    ap.add_argument("--cycles-ref", type=int, default=64)
    ap.add_argument("--eevee", default="1,4,16")
    ap.add_argument("--eevee-ref", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=1, help="timed renders per setting (the median counts)")
    ap.add_argument("--adaptive", default="0.01,0.05,0.1", help="Cycles: adaptive thresholds tried at 16 samples")
    a = ap.parse_args()

    import bpy

    from photo3d.inference import pipeline
    from photo3d.scene import build, render
    from photo3d.settings import Options

    result = pipeline.run(a.photo, pipeline.Settings())
    tmp = tempfile.mkdtemp(prefix="photo3d-render-bench-")

    def shoot(scene, tag, repeat=a.repeat + 1):
        path = os.path.join(tmp, tag + ".png")
        render.set_png_output(scene, path)
        scene.render.use_file_extension = False
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            bpy.ops.render.render(write_still=True, scene=scene.name)
            times.append(time.perf_counter() - t)
        return float(np.median(times[1:] or times)), cv2.imread(path)

    print(f"# {os.path.basename(a.photo)}, {a.size}x{a.size}, circle path frame 24 of 96, bpy {bpy.app.version_string}")
    print("engine\tsetting\ts/frame\tPSNR dB")
    for eng in a.engines.split(","):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        build.build_scene(scene, result, Options(engine=eng, size=(a.size, a.size), path="circle", frames=96))
        scene.frame_set(24)
        counts = [int(c) for c in (a.cycles if eng == "cycles" else a.eevee).split(",")]
        ref_n = a.cycles_ref if eng == "cycles" else a.eevee_ref

        def set_samples(n, threshold=0.0, eng=eng, scene=scene):
            if eng == "cycles":
                scene.cycles.samples = n
                scene.cycles.use_adaptive_sampling = threshold > 0
                scene.cycles.adaptive_threshold = threshold
            else:
                scene.eevee.taa_render_samples = n

        set_samples(ref_n)
        t_ref, ref = shoot(scene, f"{eng}_ref", repeat=1)
        print(f"{eng}\t{ref_n} samples (reference)\t{t_ref:.2f}\t-", flush=True)
        rows = [(f"{n} samples", dict(n=n)) for n in counts]
        if eng == "cycles":
            rows += [(f"16 samples, adaptive {float(th):g}", dict(n=16, threshold=float(th)))
                     for th in a.adaptive.split(",") if th]
        for label, kw in rows:
            set_samples(kw["n"], kw.get("threshold", 0.0))
            dt, img = shoot(scene, f"{eng}_{label.replace(' ', '_').replace(',', '')}")
            print(f"{eng}\t{label}\t{dt:.2f}\t{psnr(img, ref):.1f}", flush=True)
    print(f"# images in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
