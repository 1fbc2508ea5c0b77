"""The automatic camera path against the default one on real photos: reveal, travel, renders.

    PYTHONPATH=<folder holding photo3d> .venv/bin/python tools/auto_path.py \\
        [--sheet docs/auto_path.jpg] [--size 192] [--only coffee,china] [--cache DIR] [--also PHOTO,...]

For each photo of ``tools/real_photos.py`` the pipeline runs with the default settings;
then for the ``circle`` path (amplitude 1) and the ``auto`` path (the search of
``disocclusion.choose_auto`` at the default Max Reveal) it prints the estimated largest
revealed share of the frame, the part of it behind unsure edges (each gap weighted by
1 - confidence), the amplitude and direction. ``--cache`` keeps the pipeline's results
(pickled) to rerun the table without the pipeline. With ``--sheet`` it renders (Cycles,
emission only, few samples) each path's most revealing frame and the frame farthest from
it, beside the photo and its confidence, into one JPEG.
"""
import argparse
import os
import sys
import tempfile
import time
from types import SimpleNamespace

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from real_photos import (  # noqa: E402
    _grey_tile,
    _label,
    finish,
    real_photos,
    render_still,
    run_photo,
    scene_for_stills,
    sheet_arguments,
    tile_size,
)

PATHS = ("circle", "auto")


def plans(result, frames):
    """path name -> (camera.PathPlan, reveal behind unsure edges) at the default settings."""
    from photo3d.inference import disocclusion
    from photo3d.scene import camera
    from photo3d.settings import Options
    opts = Options()
    w, h = result.size
    render = SimpleNamespace(resolution_x=w, resolution_y=h)
    out = {}
    for name in PATHS:
        ps = camera.PathSettings(path=name, frames=frames, amplitude=opts.amplitude, max_reveal=opts.max_reveal,
                                 hfov=result.hfov_deg, photo_aspect=w / h, subject_depth=result.extent.subject_depth,
                                 near_depth=result.extent.near_depth, far_depth=result.extent.far_depth)
        plan = camera.plan_path(ps, render, result.edges)
        e = result.edges
        unsure = 0.0
        if e.confidence is not None:
            only = disocclusion.EdgeSamples(e.uv, e.z_near, e.z_far, e.normal, e.length, e.confidence)
            # weights 1 + k (1 - c) - 1 = k (1 - c): with k = 1, the gaps weighted by unsureness
            _, frac = disocclusion.reveal_fractions(only, plan.path, w / h, unsure_weight=1.0)
            _, plain = disocclusion.reveal_fractions(only, plan.path, w / h)
            unsure = float((frac - plain).max())
        # How much depth the move shows: the far plane's shift against the subject at the
        # widest sideways offset, as a share of the frame's width.
        side = np.linalg.norm(plan.path.matrices[:, :2, 3], axis=1).max()
        ex = result.extent
        parallax = side * (1 / ex.subject_depth - 1 / ex.far_depth) / (2 * np.tan(np.radians(result.hfov_deg) / 2))
        out[name] = (plan, unsure, float(parallax))
    return out


def _renders(result, size, frames, samples, tmp):

    from photo3d.scene import camera
    sc, edge_samples = scene_for_stills(result, size, frames, samples)
    out = []
    for preset in PATHS:
        sc.photo3d.path = preset
        plan = camera.reanimate(sc)
        assert edge_samples is None or plan.reveal is not None
        pos = plan.path.matrices[:, :3, 3]
        first = plan.reveal_frame or 0
        for frame, tag in ((first, "most revealed"), (int(np.argmax(np.linalg.norm(pos - pos[first], axis=1))),
                                                      "opposite")):
            image = render_still(sc, frame, os.path.join(tmp, f"{preset}_{frame}.png"))
            lines = [f"{preset} f{frame + 1} {tag}"]
            if tag == "most revealed":
                lines.append(f"reveal {100 * plan.reveal:.1f}%")
                if plan.auto is not None:
                    lines[-1] += f", {plan.auto.direction_deg:.0f} deg x{plan.auto.amplitude:.2f}"
            out.append(_label(image, lines))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheet", help="write the contact sheet here (JPEG)")
    sheet_arguments(ap, 192)
    ap.add_argument("--cache", help="folder for the pipeline's results (reused when present)")
    ap.add_argument("--also", help="comma list of more photo files (the project's own test photos)")
    a = ap.parse_args()

    photos = real_photos()
    for path in a.also.split(",") if a.also else ():
        photos[os.path.splitext(os.path.basename(path))[0]] = cv2.imread(path)[..., ::-1]
    if a.only:
        photos = {k: v for k, v in photos.items() if k in a.only.split(",")}
    tmp = tempfile.mkdtemp(prefix="photo3d_auto_")
    t0 = time.time()
    rows, sheet_rows = [], []
    if a.sheet:
        import photo3d
        photo3d.register()
    try:
        for name, rgb in photos.items():
            result = run_photo(name, rgb, tmp, a.depth_model, a.cache)
            p = plans(result, a.frames)
            conf = result.edges.confidence
            rows.append((name, len(result.edges), 1.0 if conf is None or not conf.size else float(conf.mean()), p))
            print(f"auto_path: {name} done at {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
            if a.sheet:
                size = tile_size(result, a.size)
                photo = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), size, interpolation=cv2.INTER_AREA)
                tiles = [_label(photo, [name]),
                         _label(_grey_tile(result.confidence, size), ["confidence"])]
                sheet_rows.append(np.concatenate(tiles + _renders(result, size, a.frames, a.samples, tmp), 1))
    finally:
        if a.sheet:
            photo3d.unregister()

    print("\n| photo | edge confidence | circle: reveal % | behind unsure % | parallax % "
          "| auto: reveal % | behind unsure % | parallax % | amplitude | direction |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, _, conf, p in rows:
        (cp, cu, cx), (ap_, au, ax) = p["circle"], p["auto"]
        # No occlusion edge (a plain recession): nothing to reveal, no search, the preset's own loop.
        choice = (f"{ap_.auto.amplitude:.2f} | {ap_.auto.direction_deg:.0f}" if ap_.auto is not None
                  else "- (no edge) | -")
        print(f"| {name} | {conf:.2f} | {100 * cp.reveal:.2f} | {100 * cu:.2f} | {100 * cx:.1f} "
              f"| {100 * ap_.reveal:.2f} | {100 * au:.2f} | {100 * ax:.1f} | {choice} |")
    finish(sheet_rows, a.sheet, "auto_path", t0)


if __name__ == "__main__":
    sys.exit(main())
