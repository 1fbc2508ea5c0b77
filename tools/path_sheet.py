"""Contact sheet of every camera preset's extreme frames on a real photo.

    .venv/bin/python tools/path_sheet.py [--photo tests/data/portrait.jpg] [--out docs/paths.png]

Runs the pipeline once, builds the scene, then for each preset renders (Cycles, emission
only, fast on a CPU) the frame that reveals the most behind the subject and the frame
farthest from it along the path. Each tile is labelled with the preset and the estimated
reveal. For looking at: stretched streaks, cracks and halos show up at these extremes.
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
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "paths.png"))
    ap.add_argument("--size", type=int, default=256, help="long side of each tile")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--depth-model", default=None)
    a = ap.parse_args()

    import bpy

    import photo3d
    from photo3d.inference import camera_path, pipeline
    from photo3d.scene import build, camera, render
    from photo3d.settings import Options

    t0 = time.time()
    result = pipeline.run(a.photo, pipeline.Settings(depth_model=a.depth_model))
    w, h = result.size
    s = a.size / max(w, h)
    size = (int(round(w * s / 2)) * 2, int(round(h * s / 2)) * 2)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    photo3d.register()
    try:
        sc = bpy.context.scene
        build.build_scene(sc, result, Options(path="circle", frames=a.frames, engine="cycles",
                                                         size=size, samples=8))
        sc.cycles.max_bounces = 0
        sc.render.use_persistent_data = True
        render.set_png_output(sc, "")
        sc.render.use_file_extension = False
        samples = camera.edge_samples_of(build.find_collection(sc))
        tiles = []
        tmp = tempfile.mkdtemp(prefix="photo3d_sheet_")
        for preset in camera_path.PRESETS:
            sc.photo3d.path = preset
            plan = camera.plan_path(sc.photo3d, sc.render, samples)
            pos = plan.path.matrices[:, :3, 3]
            far = int(np.argmax(np.linalg.norm(pos - pos[plan.reveal_frame], axis=1)))
            for frame, tag in ((plan.reveal_frame, "most revealed"), (far, "opposite")):
                sc.frame_set(sc.frame_start + frame)
                sc.render.filepath = os.path.join(tmp, f"{preset}_{frame}.png")
                bpy.ops.render.render(write_still=True)
                img = cv2.imread(sc.render.filepath)
                lines = [f"{preset} f{frame + 1} {tag}"]
                if tag == "most revealed":
                    lines[0] += f" {100 * plan.reveal:.1f}%"
                    if plan.auto is not None:
                        lines.append(f"chose {plan.auto.direction_deg:.0f} deg, amplitude {plan.auto.amplitude:.2f}")
                for i, text in enumerate(lines):
                    for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
                        cv2.putText(img, text, (4, 14 + 14 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, thick,
                                    cv2.LINE_AA)
                tiles.append(img)
    finally:
        photo3d.unregister()
    rows = [np.concatenate(tiles[i:i + 4], 1) for i in range(0, len(tiles), 4)]
    if rows[-1].shape[1] < rows[0].shape[1]:
        rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)))
    sheet = np.concatenate(rows, 0)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    cv2.imwrite(a.out, sheet)
    print(f"path_sheet: {a.out} ({len(tiles)} frames) in {time.time() - t0:.0f} s", flush=True)
    os._exit(0)   # bpy 4.5 can hang at interpreter exit (BLENDER-NOTES)


if __name__ == "__main__":
    sys.exit(main())
