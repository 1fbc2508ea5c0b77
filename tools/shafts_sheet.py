"""Light shafts on a real photo, for looking at: the plain frame and the frame with fog and
shafts at one end of a swing, and the shafts at its centre and its other end (the rays
follow the light's place in the frame).

    .venv/bin/python tools/hdri_photo.py forest out/photos/forest.jpg
    .venv/bin/python tools/shafts_sheet.py out/photos/forest.jpg docs/shafts.jpg [--size 640x360]
        [--samples 8] [--frames 48]

Writes a 2x2 sheet (JPEG) and the frames (PNG) beside it in out/shafts/.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photo")
    ap.add_argument("out")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--work", default=os.path.join(ROOT, "out", "shafts"))
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    import bpy
    import cv2
    import numpy as np

    import photo3d
    from photo3d.inference import pipeline
    from photo3d.scene import build, render
    from photo3d.settings import Options
    os.makedirs(a.work, exist_ok=True)
    result = pipeline.run(a.photo)
    photo3d.register()
    # A swing: x = sin(2 pi t); one end at a quarter of the clip, the centre at its start.
    end, centre, other = 1 + a.frames // 4, 1, 1 + 3 * a.frames // 4
    tiles = []
    try:
        for label, fx, frame in (("plain", (), end), ("fog + light shafts", ("fog",), end),
                                 ("shafts, swing centre", ("fog",), centre),
                                 ("shafts, swing's other end", ("fog",), other)):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            sc = bpy.context.scene
            build.build_scene(sc, result, Options(path="swing", frames=a.frames, size=(w, h),
                                                             samples=a.samples, effects=fx))
            if fx and not sc.photo3d.has_light_source:
                print("no light found in the photo: no shafts", file=sys.stderr)
            render.set_png_output(sc, "")
            sc.render.use_file_extension = False
            sc.frame_set(frame)
            path = os.path.join(a.work, f"f{frame}_{'shafts' if fx else 'plain'}.png")
            sc.render.filepath = path
            bpy.ops.render.render(write_still=True)
            im = cv2.imread(path)
            for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
                cv2.putText(im, f"{label} (frame {frame})", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, thick,
                            cv2.LINE_AA)
            tiles.append(im)
    finally:
        photo3d.unregister()
    sheet = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    cv2.imwrite(a.out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 88])
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
