"""`make demo`: a 3D photo of a real portrait, rendered into out/demo/.

Uses Cycles for the video because on a CPU-only machine it renders these emission-only
scenes ~10x faster than Eevee; scene.blend keeps Eevee-ready settings for users with a GPU
(switch the engine back in Render Properties, or pass --engine eevee to the CLI).
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "demo"))
    ap.add_argument("--photo", default=os.path.join(ROOT, "tests", "data", "portrait.jpg"))
    ap.add_argument("--engine", default="cycles")
    ap.add_argument("--frames", default="60")
    ap.add_argument("--size", default="512x512")
    ap.add_argument("--path", default="circle")
    a = ap.parse_args()
    cmd = [sys.executable, "-m", "photo3d", "make", a.photo, "--out", a.out, "--path", a.path,
           "--frames", a.frames, "--size", a.size, "--engine", a.engine]
    print("$", " ".join(cmd), flush=True)
    t = time.time()
    rc = subprocess.call(cmd)
    if rc != 0:
        sys.exit(rc)
    # A few stills for looking at without a video player: first, quarter and half way.
    still = [sys.executable, "-c", f"""
import bpy, sys
bpy.ops.wm.open_mainfile(filepath={os.path.join(a.out, 'scene.blend')!r})
sc = bpy.context.scene
sc.render.engine = 'CYCLES'; sc.cycles.samples = 16; sc.cycles.max_bounces = 0
sc.render.use_persistent_data = True
s = sc.render.image_settings
if hasattr(s, 'media_type'): s.media_type = 'IMAGE'
s.file_format = 'PNG'; s.color_mode = 'RGB'
n = sc.frame_end - sc.frame_start + 1
for i, f in enumerate((sc.frame_start, sc.frame_start + n // 4, sc.frame_start + n // 2)):
    sc.frame_set(f); sc.render.filepath = {os.path.join(a.out, 'frame_')!r} + str(i) + '.png'
    bpy.ops.render.render(write_still=True)
"""]
    subprocess.check_call(still, stdout=subprocess.DEVNULL)
    print(f"demo: done in {time.time() - t:.0f} s: {a.out}/video.mp4, frame_0..2.png, scene.blend")


if __name__ == "__main__":
    main()
