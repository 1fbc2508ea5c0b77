"""Render time of each effect against the plain frame, in one run (Eevee by default).

    .venv/bin/python tools/effects_bench.py [--photo P] [--size 1280x720] [--samples 16] [--out DIR]

Prints seconds per frame for: plain, each effect alone, all together, and their ratios to
plain (with a photo that shows a light, fog comes with and without its shafts); writes
the frames (PNG) into --out for looking at. The first render of each scene compiles its
shaders (on a CPU, for minutes): every frame is rendered twice and the
second time counts, which is what each frame of an animation costs.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# "noshafts": fog without its light shafts (with a photo that shows a light, "fog" has them).
CASES = [(), ("fog", "noshafts"), ("fog",), ("rain",), ("splashes",), ("dust",), ("snow",), ("fireflies",),
         ("dof",), ("fog", "splashes", "dust", "dof")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default=os.path.join(ROOT, "tests", "data", "portrait.jpg"))
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--engine", default="eevee")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "effects"))
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    import bpy
    import photo3d
    from photo3d.inference import pipeline
    from photo3d.scene import build, render
    os.makedirs(a.out, exist_ok=True)
    result = pipeline.run(a.photo)
    photo3d.register()
    times = {}
    try:
        for i, fx in enumerate(CASES):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            sc = bpy.context.scene
            build.build_scene(sc, result, build.BuildOptions(path="swing", frames=48, engine=a.engine, size=(w, h),
                                                             samples=a.samples,
                                                             effects=tuple(e for e in fx if e != "noshafts")))
            if "noshafts" in fx:
                sc.photo3d.fog_shafts = False
            render.set_png_output(sc, "")
            sc.render.use_file_extension = False
            sc.frame_set(13)
            name = "+".join(fx) or "plain"
            sc.render.filepath = os.path.join(a.out, f"{name}.png")
            for _ in range(2):                       # the first render of each scene compiles its shaders
                t = time.perf_counter()
                bpy.ops.render.render(write_still=True)
                times[name] = time.perf_counter() - t
            print(f"{name:28s} {times[name]:7.2f} s  x{times[name] / times['plain']:.2f}", flush=True)
    finally:
        photo3d.unregister()
    import cv2
    import numpy as np
    tiles = []
    for fx in CASES:
        name = "+".join(fx) or "plain"
        im = cv2.imread(os.path.join(a.out, f"{name}.png"))
        im = cv2.resize(im, (480, int(round(480 * im.shape[0] / im.shape[1]))), interpolation=cv2.INTER_AREA)
        for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(im, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thick, cv2.LINE_AA)
        tiles.append(im)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 4)
    rows = [np.concatenate(tiles[i:i + 4], 1) for i in range(0, len(tiles), 4)]
    cv2.imwrite(os.path.join(a.out, "sheet.jpg"), np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 85])
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
