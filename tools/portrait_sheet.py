"""Before/after sheet of portrait refinement: the same photo from two side views.

    .venv/bin/python tools/portrait_sheet.py [--photo P] [--out docs/portrait.png]

Rows: portrait refinement off (the depth model alone), on (person segmentation, face
relief, soft alpha edges). Columns: the swing path's left and right extremes, and a
close-up of the head at the right extreme, where hair edges and face volume show.
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default=os.path.join(ROOT, "tests", "data", "portrait.jpg"))
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "portrait.png"))
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--amplitude", type=float, default=1.5)
    a = ap.parse_args()

    import bpy

    import photo3d
    from photo3d.inference import pipeline, portrait
    from photo3d.scene import build, render
    from photo3d.settings import Options

    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="photo3d_portrait_")
    rows, face_box = [], None
    photo3d.register()
    try:
        for on in (False, True):
            result = pipeline.run(a.photo, pipeline.Settings(portrait=on))
            if face_box is None:
                faces = portrait.faces_in(result.texture)
                s = a.size / max(result.texture.shape[:2])
                face_box = [v * s for v in faces[0]] if faces else None
            w, h = result.size
            s = a.size / max(w, h)
            size = (int(round(w * s / 2)) * 2, int(round(h * s / 2)) * 2)
            bpy.ops.wm.read_factory_settings(use_empty=True)
            sc = bpy.context.scene
            build.build_scene(sc, result, Options(path="swing", frames=40, amplitude=a.amplitude,
                                                             engine="cycles", size=size, samples=16))
            sc.cycles.max_bounces = 0
            render.set_png_output(sc, "")
            sc.render.use_file_extension = False
            tiles = []
            for frame in (11, 31):                        # the swing's extremes (phase 1/4, 3/4)
                sc.frame_set(frame)
                sc.render.filepath = os.path.join(tmp, f"{on}_{frame}.png")
                bpy.ops.render.render(write_still=True)
                tiles.append(cv2.imread(sc.render.filepath))
            if face_box is not None:
                x, y, fw, fh = face_box
                cx, cy, r = x + fw / 2, y + fh / 2, 0.9 * fw
                crop = tiles[1][max(0, int(cy - r)):int(cy + r), max(0, int(cx - r)):int(cx + r)]
                tiles.append(cv2.resize(crop, (size[1], size[1]), interpolation=cv2.INTER_CUBIC))
            label = "portrait refinement on" if on else "portrait refinement off"
            if on:
                label += f" ({result.faces} face relief)"
            cv2.putText(tiles[0], label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tiles[0], label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            rows.append(np.concatenate(tiles, 1))
    finally:
        photo3d.unregister()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    cv2.imwrite(a.out, np.concatenate(rows, 0))
    print(f"portrait_sheet: {a.out} in {time.time() - t0:.0f} s", flush=True)
    os._exit(0)   # bpy 4.5 can hang at interpreter exit (BLENDER-NOTES)


if __name__ == "__main__":
    sys.exit(main())
