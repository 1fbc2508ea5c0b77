"""Render time of each effect against the plain frame, in one run (Eevee by default).

    .venv/bin/python tools/effects_bench.py [--photo P] [--size 1280x720] [--samples 16] [--out DIR]
        [--cases plain,fog,fog+splashes+dust+dof,plain_again]

Prints seconds per frame for: plain, each effect alone, all together, and their ratios to
plain (with a photo that shows a light, fog comes with and without its shafts); writes
the frames (PNG) into --out for looking at. The first render of each scene compiles its
shaders (on a CPU, for minutes): each scene is first rendered once at 1 sample, then the
timed frame at --samples, which is what each frame of an animation costs. Both wall and
process CPU seconds are printed: on a shared machine the CPU seconds (all render threads)
move less with the load than the wall clock. The plain frame is rendered again last, to
show the drift over the run.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# "noshafts": fog without its light shafts (with a photo that shows a light, "fog" has them);
# "motion_blur": the Effects panel's Motion Blur (Eevee's, one step).
OPTIONS = ("noshafts", "motion_blur")
CASES = [(), ("fog", "noshafts"), ("fog",), ("rain",), ("splashes",), ("dust",), ("snow",), ("fireflies",),
         ("dof",), ("motion_blur",), ("fog", "splashes", "dust", "dof"),
         ("fog", "splashes", "dust", "dof", "motion_blur"), ("again",)]


def _name(fx) -> str:
    return "plain_again" if fx == ("again",) else "+".join(fx) or "plain"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default=os.path.join(ROOT, "tests", "data", "portrait.jpg"))
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--engine", default="eevee")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "effects"))
    ap.add_argument("--cases", default="", help="comma list of the rows to run (names as printed; plain first); "
                                                "default: all")
    a = ap.parse_args()
    cases = CASES
    if a.cases:
        names = [c.strip() for c in a.cases.split(",") if c.strip()]
        known = {_name(fx): fx for fx in CASES}
        if names[0] != "plain" or any(n not in known for n in names):
            ap.error(f"--cases: plain first, then any of {', '.join(known)}")
        cases = [known[n] for n in names]
    w, h = (int(v) for v in a.size.lower().split("x"))
    import bpy

    import photo3d
    from photo3d.inference import pipeline
    from photo3d.scene import build, render
    from photo3d.settings import Options
    os.makedirs(a.out, exist_ok=True)
    result = pipeline.run(a.photo)
    photo3d.register()
    times, cpu = {}, {}
    try:
        for fx in cases:
            bpy.ops.wm.read_factory_settings(use_empty=True)
            sc = bpy.context.scene
            build.build_scene(sc, result, Options(path="swing", frames=48, engine=a.engine, size=(w, h),
                                                             samples=a.samples,
                                                             effects=tuple(e for e in fx
                                                                           if e not in OPTIONS + ("again",))))
            if "noshafts" in fx:
                sc.photo3d.fog_shafts = False
            if "motion_blur" in fx:
                sc.photo3d.motion_blur = True
            render.set_png_output(sc, "")
            sc.render.use_file_extension = False
            sc.frame_set(13)
            name = _name(fx)
            sc.render.filepath = os.path.join(a.out, f"{name}.png")
            samples = sc.eevee.taa_render_samples
            sc.eevee.taa_render_samples = 1          # the first render of each scene compiles its shaders
            bpy.ops.render.render(write_still=False)
            sc.eevee.taa_render_samples = samples
            t, c = time.perf_counter(), time.process_time()
            bpy.ops.render.render(write_still=True)
            times[name], cpu[name] = time.perf_counter() - t, time.process_time() - c
            print(f"{name:44s} {times[name]:7.2f} s  x{times[name] / times['plain']:.2f}   "
                  f"cpu {cpu[name]:7.2f} s  x{cpu[name] / cpu['plain']:.2f}", flush=True)
    finally:
        photo3d.unregister()
    import cv2
    import numpy as np
    tiles = []
    for fx in [c for c in cases if c != ("again",)]:
        name = _name(fx)
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
